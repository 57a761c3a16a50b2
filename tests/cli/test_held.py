"""`haishin held show` and `held list` print what the post path and the holds recorded
(posting/path/, posting/holds/), on a real store (SQLite and PostgreSQL): posts made by
the router in process, a hold recorded by the release task, read back by the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from haishin.cli import cli
from haishin.clock import utcnow
from haishin.context import Context
from haishin.directory import Directory
from haishin.operations.post_progress import follow
from haishin.posting import decisions
from haishin.posting.release import ReleaseSettings, release_due
from haishin.registry import load_valid
from haishin.router.worker import process_batch
from haishin.store import open_store, posts, queue, spool, subscribers
from haishin.store.schema import outbound
from haishin.store.states import QueueState
from haishin.tokens import Keyring
from support.helpers import CONFIG, DOMAIN

SLUG = "gomi-recycle"
SENDER = "genryo@city.kawasaki.example.jp"
KEY = Keyring(b"k" * 32)
OUTAGE_TIME = dt.datetime(2026, 12, 13, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
OUTAGE_NOTE = "held: outage R8-12-maintenance in force (第9条)"


@pytest.fixture
def store(db_url: str) -> Iterator[sa.Engine]:
    engine = open_store(db_url)
    yield engine
    engine.dispose()


def _arrive(engine: sa.Engine, subject: str, body: str = "本文です。\n") -> int:
    ctx = Context(Directory(load_valid(CONFIG), KEY), KEY, "https://w.example.jp/")
    raw = (
        f"From: {SENDER}\r\nTo: {SLUG}@{DOMAIN}\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()
    spool.put(engine, raw, SENDER, [f"{SLUG}@{DOMAIN}"], "smtp")
    assert process_batch(engine, ctx, spool.fetch_new(engine, 10)) == 1
    with engine.connect() as conn:
        return max(p.id for p in posts.listing(conn))


def _held(db_url: str, *args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["held", *args, "--db", db_url])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_show_prints_the_walk_of_a_refused_post(store: sa.Engine, db_url: str) -> None:
    post_id = _arrive(store, "")  # no subject: 第3条(2)
    shown = _held(db_url, "show", str(post_id))
    assert "state: refused" in shown
    path = [line for line in shown if line.startswith("path: ")]
    assert path[0] == "path: sender: pass 登録された配信者です（第5条）"
    assert any(line.startswith("path: subject: refuse 件名がありません") for line in path)
    assert path[-1].startswith("path: schedule: pass")  # no approval is asked of a refusal
    assert "hold: -" in shown


def test_show_and_list_print_the_hold_in_force(store: sa.Engine, db_url: str) -> None:
    ctx = Context(Directory(load_valid(CONFIG), KEY), KEY, "https://w.example.jp/")
    post_id = _arrive(store, "お知らせ")
    scheduled = _arrive(store, "予定", "配信日時: 2030-01-01 09:00\n\n本文\n")
    with store.begin() as conn:
        for n in (post_id, scheduled):
            done = decisions.approve(conn, ctx, n, approver=SENDER, method="test")
            assert done is decisions.Decided.DONE
    release_due(store, ctx, ReleaseSettings(), now=OUTAGE_TIME)

    shown = _held(db_url, "show", str(post_id))
    assert "state: approved" in shown and f"note: {OUTAGE_NOTE}" in shown
    assert "path: approval: hold 配信者本人の確認を待ちます（confirm, 第5条）" in shown
    assert f"hold recorded: {OUTAGE_TIME.isoformat()} outage: {OUTAGE_NOTE}" in shown
    assert shown[shown.index(f"hold: outage: {OUTAGE_NOTE}") + 1] == ""  # then the text

    listed = [line.split("\t") for line in _held(db_url, "list")]
    holds = {int(cols[0]): cols[4] for cols in listed}
    assert holds == {post_id: "outage", scheduled: "send-at"}
    shown = _held(db_url, "show", str(scheduled))
    assert "hold: send-at: held: to be sent at 2030-01-01 09:00 JST (第5条4)" in shown

    # the outage ends: the post goes out, its record stays, and nothing holds it
    assert release_due(store, ctx, ReleaseSettings()) == 1
    shown = _held(db_url, "show", str(post_id))
    assert "state: sent" in shown and "hold: -" in shown
    assert f"hold recorded: {OUTAGE_TIME.isoformat()} outage: {OUTAGE_NOTE}" in shown
    assert [cols[4] for cols in (line.split("\t") for line in _held(db_url, "list"))] == ["send-at"]


def _settle(engine: sa.Engine, message: int, sent: int, deferred: int, bounced: int) -> None:
    rows = [r for r in queue.claim(engine, 100) if r.message_id == message]
    later = utcnow() + dt.timedelta(hours=1)
    results = [queue.Result(r.id, QueueState.SENT) for r in rows[:sent]]
    results += [
        queue.Result(r.id, QueueState.QUEUED, "451 later", later)
        for r in rows[sent : sent + deferred]
    ]
    results += [
        queue.Result(r.id, QueueState.BOUNCED, "550 no")
        for r in rows[sent + deferred : sent + deferred + bounced]
    ]
    results += [
        queue.Result(r.id, QueueState.QUEUED, None, utcnow(), attempted=False)
        for r in rows[sent + deferred + bounced :]
    ]
    queue.settle(engine, results)


def test_show_counts_the_delivery_and_says_sent_only_when_no_row_waits(
    store: sa.Engine, db_url: str
) -> None:
    """Issue 16 item 3: `held show` has the delivery counts, and a post whose fan-out is
    done but whose rows wait is `delivering`, never `sent`; `status --message` takes the
    same id as `held`."""
    ctx = Context(Directory(load_valid(CONFIG), KEY), KEY, "https://w.example.jp/")
    with store.begin() as conn:
        for i in range(10):
            subscribers.activate(conn, SLUG, f"s{i}@example.jp", method="t", evidence="t")
    post_id = _arrive(store, "お知らせ")
    with store.begin() as conn:
        decisions.approve(conn, ctx, post_id, approver=SENDER, method="test")
    assert release_due(store, ctx, ReleaseSettings()) == 1
    with store.connect() as conn:
        post = posts.get(conn, post_id)
    assert post is not None and post.outbound_message is not None

    shown = _held(db_url, "show", str(post_id))
    assert "state: delivering" in shown and "state: sent" not in shown
    assert (
        "delivery: queued 10, sent 0, deferred 0, failed 0 (rows 10 of 10 recipient(s) queued)"
        in shown
    )
    listed = {
        int(c[0]): c[2] for c in (line.split("\t") for line in _held(db_url, "list", "--all"))
    }
    assert listed[post_id] == "delivering"

    _settle(store, post.outbound_message, sent=6, deferred=2, bounced=1)
    shown = _held(db_url, "show", str(post_id))
    assert "state: delivering" in shown
    assert (
        "delivery: queued 1, sent 6, deferred 2, failed 1 (rows 10 of 10 recipient(s) queued)"
        in shown
    )
    status = CliRunner().invoke(cli, ["status", "--db", db_url, "--message", str(post_id)])
    assert status.exit_code == 0, status.output
    assert f"post#{post_id} {SLUG} delivering: 宛先 10 件" in status.output
    assert "送信済み 6、送信待ち 1、再送・ペース待ち 2、失敗 1" in status.output
    assert "速度 0.1 通/秒、残り 約 30 秒" in status.output  # six in the last minute

    with store.begin() as conn:  # the rest go out
        conn.execute(
            outbound.update()
            .where(outbound.c.message_id == post.outbound_message, outbound.c.state == "queued")
            .values(state="sent", done_at=utcnow())
        )
    shown = _held(db_url, "show", str(post_id))
    assert "state: sent" in shown
    assert (
        "delivery: queued 0, sent 9, deferred 0, failed 1 (rows 10 of 10 recipient(s) queued)"
        in shown
    )
    done = CliRunner().invoke(
        cli, ["status", "--db", db_url, "--message", str(post_id), "--follow"]
    )
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [f"post#{post_id} sent: 送信済み 9 / 10、失敗 1、完了"]
    missing = CliRunner().invoke(cli, ["status", "--db", db_url, "--message", "999999"])
    assert missing.exit_code == 1 and "post#999999 はありません" in missing.output


def test_follow_of_a_post_that_ends_unsent_says_so_and_stops(store: sa.Engine, db_url: str) -> None:
    """`status --follow` waits through a held post (nothing queued yet) and stops when it
    ends without going out; the lines say which."""
    ctx = Context(Directory(load_valid(CONFIG), KEY), KEY, "https://w.example.jp/")
    post_id = _arrive(store, "お知らせ")
    lines: list[str] = []

    def withdraw_after_two_looks(_: float) -> None:
        if len(lines) == 2:
            with store.begin() as conn:
                decisions.withdraw(conn, ctx, post_id, by="t", method="t")

    ended = follow(store, post_id, lines.append, interval=0, sleep=withdraw_after_two_looks)
    assert ended is not None and ended.done
    assert lines == [
        f"post#{post_id} held: まだ配信を始めていません",
        f"post#{post_id} held: まだ配信を始めていません",
        f"post#{post_id} withdrawn: 送信済み 0 / 0（終了: withdrawn）",
    ]
