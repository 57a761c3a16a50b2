"""The output formats of `check` and `plan` (cli/formats.py), each apart from the commands,
and `haishin check --format` on a registry that fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from haishin.cli import formats
from haishin.registry import Pos, Problem, Severity

SAMPLE = Path(__file__).resolve().parents[2] / "config"

# a message with a newline, a colon, a comma and a percent sign, at a path with a comma
AWKWARD = Problem(
    Pos("config/channels/a,b.yaml", 3, 7),
    "yaml-syntax",
    "YAML の書き方に誤りがあります: 100% 確かな\nつづき,終わり\r",
)
WARNING = Problem(Pos("config/service.yaml", 1, 1), "sender-domain", "警告です", Severity.WARNING)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_github_escapes_the_message_and_the_properties(in_tmp: Path) -> None:
    assert formats.github([AWKWARD, WARNING]) == [
        "::error file=config/channels/a%2Cb.yaml,line=3,col=7,title=yaml-syntax::"
        "YAML の書き方に誤りがあります: 100%25 確かな%0Aつづき,終わり%0D",
        "::warning file=config/service.yaml,line=1,col=1,title=sender-domain::警告です",
    ]


def test_github_paths_are_relative_to_the_current_directory(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute = Problem(Pos(str(in_tmp / "config" / "x.yaml"), 2, 1), "k", "m")
    assert formats.github([absolute]) == ["::error file=config/x.yaml,line=2,col=1,title=k::m"]
    (in_tmp / "sub").mkdir()
    monkeypatch.chdir(in_tmp / "sub")
    assert formats.github([absolute])[0].startswith("::error file=../config/x.yaml,")


def test_json_is_one_array_of_findings(in_tmp: Path) -> None:
    assert json.loads(formats.as_json([AWKWARD, WARNING])) == [
        {
            "path": "config/channels/a,b.yaml",
            "line": 3,
            "col": 7,
            "severity": "error",
            "key": "yaml-syntax",
            "message": "YAML の書き方に誤りがあります: 100% 確かな\nつづき,終わり\r",
        },
        {
            "path": "config/service.yaml",
            "line": 1,
            "col": 1,
            "severity": "warning",
            "key": "sender-domain",
            "message": "警告です",
        },
    ]
    assert json.loads(formats.as_json([])) == []


def test_markdown_plan_names_each_mark() -> None:
    lines = ["+ 申請 R8-0010: kaigo_yobou の利用停止", "~ a: 配信頻度 「*」 → 「x」", "- b: 削除"]
    assert formats.markdown_plan(lines, "origin/main", "HEAD").splitlines() == [
        "## 登録情報の変更（haishin plan: `origin/main` → `HEAD`）",
        "",
        r"- **追加** 申請 R8-0010: kaigo\_yobou の利用停止",
        r"- **変更** a: 配信頻度 「\*」 → 「x」",
        "- **削除** b: 削除",
    ]
    assert formats.markdown_plan([], "HEAD", ".").splitlines()[-1] == "変更なし"
    assert "作業中のファイル" in formats.markdown_plan([], "HEAD", ".")


def test_markdown_refusal_keeps_the_findings_in_a_fence() -> None:
    text = formats.markdown_refusal(
        "版 HEAD の登録情報に誤りがあります:\na:1:1: ```x``` [k]", "b", "c"
    )
    assert text.splitlines()[2:] == [
        "**変更の内容を示せません。** 版 HEAD の登録情報に誤りがあります:",
        "",
        "````text",
        "a:1:1: ```x``` [k]",
        "````",
    ]


def haishin(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haishin", *args], cwd=cwd, capture_output=True, text=True
    )


def test_check_formats_on_a_broken_registry(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "config")
    channel = tmp_path / "config" / "channels" / "gomi-recycle.yaml"
    channel.write_text(channel.read_text("utf-8").replace("category: kankyo", "category: x"))
    where = "config/channels/gomi-recycle.yaml"

    text = haishin(tmp_path, "check", "config")
    assert (text.returncode, text.stdout) == (
        1,
        f"{where}:8:11: 分類 'x' は登録されていません [unknown-reference]\n",
    )
    annotated = haishin(tmp_path, "check", "--format", "github", "config")
    assert (annotated.returncode, annotated.stdout) == (
        1,
        f"::error file={where},line=8,col=11,title=unknown-reference::"
        "分類 'x' は登録されていません\n",
    )
    found = haishin(tmp_path / "config", "check", "--format", "json", ".")
    assert found.returncode == 1
    assert [(f["path"], f["line"], f["col"]) for f in json.loads(found.stdout)] == [
        ("channels/gomi-recycle.yaml", 8, 11)
    ]


def test_check_formats_on_the_sample() -> None:
    for fmt, out in (("github", ""), ("json", "[]\n")):
        done = haishin(SAMPLE.parent, "check", "--format", fmt)
        assert (done.returncode, done.stdout) == (0, out), done.stderr
    assert haishin(SAMPLE.parent, "check").stdout.startswith("OK: チャネル")
