"""The monthly report's figures (`haishin report --format csv`) against a store with known
events (known.py), on SQLite and PostgreSQL: exact for the month in JST, no address."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from click.testing import CliRunner

from haishin.cli import cli
from haishin.store import open_store
from support.helpers import CONFIG

from . import known


def _csv(db_url: str, *args: str) -> list[dict[str, str]]:
    result = CliRunner().invoke(
        cli, ["report", "--config", str(CONFIG), "--db", db_url, "--format", "csv", *args]
    )
    assert result.exit_code == 0, result.output
    raw = result.stdout_bytes
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: a spreadsheet reads the Japanese
    assert known.ADDRESS_DOMAIN.encode() not in raw
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_figures_are_exact_for_the_month_in_jst(db_url: str) -> None:
    engine = open_store(db_url)
    known.build(engine)
    engine.dispose()

    rows = {r["チャネル"]: r for r in _csv(db_url, "--month", "2026-11")}
    gomi = rows[known.GOMI]
    assert {k: gomi[k] for k in known.GOMI_NOVEMBER} == known.GOMI_NOVEMBER
    assert gomi["月"] == "2026-11" and gomi["所属"] == "環境局 生活環境部 減量推進課"
    kosodate = rows[known.KOSODATE]
    assert (kosodate["新規登録"], kosodate["月末の登録者数"], kosodate["配信回数"]) == (
        "1",
        "1",
        "0",
    )
    assert kosodate["最終配信日"] == "2026-06-01"

    department = _csv(db_url, "--month", "2026-10", "--department", "kankyo-genryo")
    assert {r["所属"] for r in department} == {"環境局 生活環境部 減量推進課"}
    (october,) = [r for r in department if r["チャネル"] == known.GOMI]
    assert {k: october[k] for k in known.GOMI_OCTOBER} == known.GOMI_OCTOBER
    assert october["エラー（恒久的エラー）"] == "1"  # 10/31 only


def test_bad_month_and_department_are_answered_in_japanese(sqlite_url: str) -> None:
    open_store(sqlite_url).dispose()
    base = ["report", "--config", str(CONFIG), "--db", sqlite_url]
    for args, words in (
        (["--month", "2026-13"], "YYYY-MM"),
        (["--month", "11/2026"], "YYYY-MM"),
        (["--month", "２０２６-１１"], "YYYY-MM"),
        (["--month", "9999-12"], "YYYY-MM"),
        (["--month", "0001-01"], "YYYY-MM"),
        (["--month", "2026-00"], "YYYY-MM"),
        (["--department", "nowhere"], "所属 'nowhere' はありません"),
    ):
        result = CliRunner().invoke(cli, [*base, *args])
        assert result.exit_code == 2 if "month" in args[0] else 1, result.output
        assert words in result.output
        assert "Traceback" not in result.output


def test_an_unwritable_output_is_answered_in_japanese(sqlite_url: str, tmp_path: Path) -> None:
    open_store(sqlite_url).dispose()
    target = tmp_path / "missing-folder" / "report.html"
    result = CliRunner().invoke(
        cli,
        ["report", "--config", str(CONFIG), "--db", sqlite_url, "--output", str(target)],
    )
    assert result.exit_code == 1 and "に書き込めません" in result.output
    assert "Traceback" not in result.output
    # a folder, a missing folder, a file in the way: the reason in Japanese, not the OS's
    # English (click's own 'is a directory' too)
    (tmp_path / "file").write_text("")
    for output, why in [
        (tmp_path, "フォルダです"),
        (target, "フォルダまたはファイルがありません"),
        (tmp_path / "file" / "report.html", "フォルダでないもの"),
    ]:
        result = CliRunner().invoke(
            cli, ["report", "--config", str(CONFIG), "--db", sqlite_url, "--output", str(output)]
        )
        assert result.exit_code == 1 and why in result.output, result.output
        assert "directory" not in result.output.lower(), result.output
