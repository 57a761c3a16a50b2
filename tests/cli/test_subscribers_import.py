"""`haishin subscribers import` tells the staff member what became of each line (issue 15
item 8), in process on a real store (SQLite and PostgreSQL): the refused lines with their
numbers and reasons on stderr, a summary on stdout, one confirmation per mailbox in the
outbound queue, and an audit record without addresses."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from haishin.cli import cli
from haishin.cli.importing import Refusal, Refused
from haishin.store import confirmations, open_store, subscribers
from haishin.store.audit import entries
from haishin.store.confirmations import Action
from haishin.store.schema import outbound
from haishin.store.subscribers import Status
from support.helpers import CONFIG

SLUG = "gomi-recycle"
PAUSED = "sports-event"  # paused in the sample registry (第3条5)
SECRET = "test-secret-0123456789abcdef"

LISTING = """\
# 旧システムからの移行分
a1@example.jp
not-an-address

A1@example.jp
Active@Example.jp
b2@example.jp,山田
"""


@pytest.fixture
def store(db_url: str) -> Iterator[sa.Engine]:
    engine = open_store(db_url)
    yield engine
    engine.dispose()


def _import(db_url: str, listing: Path, slug: str = SLUG) -> Result:
    args = ["subscribers", "import", slug, str(listing), "--config", str(CONFIG), "--db", db_url]
    return CliRunner().invoke(cli, args, env={"HAISHIN_SECRET": SECRET})


def _queued(engine: sa.Engine) -> Counter[str]:
    """Confirmation mails in the outbound queue, per recipient as queued."""
    with engine.connect() as conn:
        return Counter(conn.execute(sa.select(outbound.c.rcpt)).scalars())


def _listing(tmp_path: Path, text: str, name: str = "import.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_each_refused_line_is_told_and_each_mailbox_asked_once(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    with store.begin() as conn:
        subscribers.activate(conn, SLUG, "active@example.jp", method="test", evidence="test")
    listing = _listing(tmp_path, LISTING)

    result = _import(db_url, listing)

    assert result.stderr.splitlines() == [
        f"{listing}:3: メールアドレスの形式が正しくありません: not-an-address",
        f"{listing}:5: 2 行目と同じアドレスです（大文字・小文字の違いは同じとみなします）"
        ": A1@example.jp",
        f"{listing}:6: 既に登録されています: Active@Example.jp",
    ]
    assert result.stdout.splitlines() == [
        "確認メール 2 件を送信待ちにしました。"
        "受け付けなかった行 3 件（形式の誤り 1、ファイル内の重複 1、登録済み 1）。"
    ]
    assert result.exit_code == 1  # the malformed line is for the staff member to correct
    # one confirmation per mailbox; the active subscriber is not mailed at all
    assert _queued(store) == {"a1@example.jp": 1, "b2@example.jp": 1}
    with store.connect() as conn:
        a1 = subscribers.find(conn, SLUG, "A1@EXAMPLE.JP")
        assert a1 is not None and a1.status is Status.PENDING
        assert a1.address == "a1@example.jp"  # as its first line wrote it
        assert subscribers.count(conn, SLUG)[Status.PENDING] == 2
    (audit,) = [e for e in entries(store) if e.action == "subscribers.import"]
    assert audit.target == SLUG
    assert audit.detail == (
        "confirmation-sent 2, malformed 1, duplicate 1, subscribed 1; refused lines 3,5,6"
    )


def test_an_import_run_again_asks_nobody_twice(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    listing = _listing(tmp_path, "a1@example.jp\nb2@example.jp\n")
    first = _import(db_url, listing)
    assert (first.exit_code, first.stderr) == (0, "")
    assert first.stdout == "確認メール 2 件を送信待ちにしました。\n"

    again = _listing(tmp_path, "B2@example.jp\nA1@example.jp\n", "again.txt")
    result = _import(db_url, again)

    reason = "確認メールを送信済みで、本人の確認を待っています"
    assert result.stderr.splitlines() == [
        f"{again}:1: {reason}: B2@example.jp",
        f"{again}:2: {reason}: A1@example.jp",
    ]
    assert result.stdout.splitlines() == [
        "確認メール 0 件を送信待ちにしました。受け付けなかった行 2 件（確認待ち 2）。"
    ]
    assert result.exit_code == 0  # nothing left to do: both are waiting for the citizen
    assert _queued(store) == {"a1@example.jp": 1, "b2@example.jp": 1}


def test_a_request_that_has_expired_is_asked_again(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    with store.begin() as conn:
        subscribers.add_pending(conn, SLUG, "late@example.jp")
        confirmations.create(conn, SLUG, "late@example.jp", Action.SUBSCRIBE, -dt.timedelta(1), "x")
    result = _import(db_url, _listing(tmp_path, "Late@example.jp\n"))
    assert (result.exit_code, result.stderr) == (0, "")
    assert _queued(store) == {"Late@example.jp": 1}
    with store.connect() as conn:
        assert subscribers.count(conn, SLUG)[Status.PENDING] == 1  # the row it had


def test_a_line_over_the_rate_limit_is_to_be_imported_again(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    # service.yaml: 3 confirmation mails per address in 24 hours, whatever they were for
    with store.begin() as conn:
        for _ in range(3):
            confirmations.create(
                conn, SLUG, "busy@example.jp", Action.UNSUBSCRIBE, dt.timedelta(hours=1), "x"
            )
    listing = _listing(tmp_path, "busy@example.jp\nfree@example.jp\n")
    result = _import(db_url, listing)
    assert result.stderr.splitlines() == [
        f"{listing}:1: 送信数の上限に達したため確認メールを送れませんでした"
        "（後で取り込み直してください）: busy@example.jp"
    ]
    assert result.exit_code == 1
    assert _queued(store) == {"free@example.jp": 1}
    with store.connect() as conn:
        assert subscribers.find(conn, SLUG, "busy@example.jp") is None  # nothing kept


def test_a_paused_channel_takes_nobody_and_mails_nobody(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    listing = _listing(tmp_path, "c3@example.jp\n")
    result = _import(db_url, listing, PAUSED)
    assert result.stderr.splitlines() == [
        f"{listing}:1: チャンネルが現在登録を受け付けていません（第3条5）: c3@example.jp"
    ]
    assert result.exit_code == 1
    assert _queued(store) == {}


def test_a_line_cannot_drive_the_terminal(tmp_path: Path, db_url: str, store: sa.Engine) -> None:
    # and a line separator inside a line does not shift the numbers of the lines after it
    listing = _listing(tmp_path, "\x1b[2Jx@\u2028y\nbad\n")
    result = _import(db_url, listing)
    malformed = "メールアドレスの形式が正しくありません"
    assert result.stderr.split("\n") == [
        f"{listing}:1: {malformed}: \\x1b[2Jx@\\u2028y",
        f"{listing}:2: {malformed}: bad",
        "",
    ]


def test_excels_csv_utf8_is_read_and_a_full_width_slip_is_named(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    listing = tmp_path / "import.csv"
    listing.write_bytes("\ufeffd4@example.jp,田中\nｅ５＠example.jp,佐藤\n".encode())
    result = _import(db_url, listing)
    assert result.stderr.splitlines() == [
        f"{listing}:2: メールアドレスの形式が正しくありません（全角文字が含まれています）"
        ": ｅ５＠example.jp,佐藤"
    ]
    assert _queued(store) == {"d4@example.jp": 1}  # the BOM is not part of the address


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_sent(
    tmp_path: Path, db_url: str, store: sa.Engine
) -> None:
    listing = tmp_path / "import.csv"
    listing.write_bytes("f6@example.jp\ng7@example.jp,鈴木\n".encode("shift_jis"))
    result = _import(db_url, listing)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 2 行目が UTF-8 ではありません。UTF-8 で保存し直してください"
        "（Excel では「CSV UTF-8（コンマ区切り）」）\n"
    )
    assert _queued(store) == {}
    assert not [e for e in entries(store) if e.action == "subscribers.import"]


def test_a_long_refused_line_is_shown_cut() -> None:
    """A 50 MB line is refused without echoing it whole to the staff member's terminal."""
    line = Refused(1, "a" * 1_000_000, Refusal.MALFORMED).line("big.txt")
    assert len(line) < 400 and line.endswith("（1000000 文字のうち 200 文字）")
