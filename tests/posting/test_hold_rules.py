"""The holds (posting/holds/): one test per rule, the table's order, and the hold
recorded with the post (note and finding) by approval and by release, on a real SQLite
store, then cleared when the hold ends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.context import Context
from haishin.directory import Directory
from haishin.posting import decisions
from haishin.posting.holds import HOLDS, HoldKind, current, hold_of, outage, pause, send_at
from haishin.posting.release import ReleaseSettings, release_due
from haishin.registry import load_valid
from haishin.store import open_store, posts
from haishin.store import subscribers as subs
from haishin.store.posts import Post, PostState
from haishin.tokens import Keyring

CONFIG = Path(__file__).resolve().parents[2] / "config"
SLUG = "gomi-recycle"
PAUSED = "sports-event"  # paused in the sample registry (第3条5)
SENDER = "genryo@city.kawasaki.example.jp"
KEY = Keyring(b"k" * 32)
JST = dt.timezone(dt.timedelta(hours=9))
OUTAGE_TIME = dt.datetime(2026, 12, 13, 2, 0, tzinfo=JST)  # R8-12-maintenance (第9条)
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


@pytest.fixture
def ctx() -> Context:
    return Context(Directory(load_valid(CONFIG), KEY), KEY, "https://w.example.jp/")


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'h.db'}")


def _post(
    engine: sa.Engine, ctx: Context, state: PostState, send_at: dt.datetime | None = None
) -> Post:
    with engine.begin() as conn:
        subs.activate(conn, SLUG, "user@example.jp", method="test", evidence="test")
        return posts.create(
            conn,
            channel=SLUG,
            spool_id=None,
            sender=SENDER,
            subject="お知らせ",
            text="本文\n",
            html=None,
            message_id=None,
            state=state,
            approval="confirm",
            findings=[{"rule": "approval", "verdict": "hold", "message": "確認待ち"}],
            send_at=send_at,
            ttl=ctx.post_ttl,
        )


def _get(engine: sa.Engine, post_id: int) -> Post:
    with engine.connect() as conn:
        post = posts.get(conn, post_id)
    assert post is not None
    return post


# --- one test per rule -----------------------------------------------------------------


def test_outage_holds_while_one_is_in_force(engine: sa.Engine, ctx: Context) -> None:
    post = _post(engine, ctx, PostState.APPROVED)
    assert outage.check(ctx, post, NOW) is None
    hold = outage.check(ctx, post, OUTAGE_TIME)
    assert hold is not None and hold.kind is HoldKind.OUTAGE
    assert hold.note == "held: outage R8-12-maintenance in force (第9条)"


def test_pause_holds_a_paused_or_unlisted_channel(engine: sa.Engine, ctx: Context) -> None:
    post = _post(engine, ctx, PostState.APPROVED)
    assert pause.check(ctx, post, NOW) is None
    paused = pause.check(ctx, dataclasses.replace(post, channel=PAUSED), NOW)
    assert paused is not None and paused.kind is HoldKind.PAUSE
    assert paused.note.startswith("held: channel paused (第3条5): ")
    gone = pause.check(ctx, dataclasses.replace(post, channel="no-such-channel"), NOW)
    assert gone is not None and "no longer in the registry" in gone.note


def test_send_at_holds_until_the_time(engine: sa.Engine, ctx: Context) -> None:
    at = NOW + dt.timedelta(hours=1)
    post = _post(engine, ctx, PostState.SCHEDULED, send_at=at)
    hold = send_at.check(ctx, post, NOW)
    assert hold is not None and hold.kind is HoldKind.SEND_AT
    assert "2026-11-25 22:00 JST" in hold.note
    assert send_at.check(ctx, post, at) is None
    assert send_at.check(ctx, dataclasses.replace(post, send_at=None), NOW) is None


# --- the table -------------------------------------------------------------------------


def test_the_table_orders_outage_pause_send_at(engine: sa.Engine, ctx: Context) -> None:
    assert (outage.check, pause.check, send_at.check) == HOLDS
    later = OUTAGE_TIME + dt.timedelta(days=1)
    post = dataclasses.replace(
        _post(engine, ctx, PostState.SCHEDULED, send_at=later), channel=PAUSED
    )
    kinds = []
    for now in (OUTAGE_TIME, NOW):  # everything holds, then all but the outage
        hold = hold_of(ctx, post, now)
        assert hold is not None
        kinds.append(hold.kind)
    unpaused = hold_of(ctx, dataclasses.replace(post, channel=SLUG), NOW)
    assert unpaused is not None
    assert [*kinds, unpaused.kind] == [HoldKind.OUTAGE, HoldKind.PAUSE, HoldKind.SEND_AT]
    assert hold_of(ctx, dataclasses.replace(post, channel=SLUG), later) is None


# --- recorded with the post ------------------------------------------------------------


def test_release_records_the_hold_and_clears_it_when_it_ends(
    engine: sa.Engine, ctx: Context
) -> None:
    post = _post(engine, ctx, PostState.APPROVED)
    settings = ReleaseSettings()
    assert release_due(engine, ctx, settings, now=OUTAGE_TIME) == 0
    assert release_due(engine, ctx, settings, now=OUTAGE_TIME) == 0  # recorded once
    held = _get(engine, post.id)
    assert held.state is PostState.APPROVED
    assert held.note == "held: outage R8-12-maintenance in force (第9条)"
    *path, hold = held.findings
    assert path == post.findings  # the post path's record is kept, the hold appended
    assert (hold["rule"], hold["verdict"], hold["message"]) == ("outage", "hold", held.note)
    assert dt.datetime.fromisoformat(hold["at"]) == OUTAGE_TIME
    found = current(held)
    assert found is not None and found.kind is HoldKind.OUTAGE

    assert release_due(engine, ctx, settings) == 1  # the outage is over
    sent = _get(engine, post.id)
    assert sent.state is PostState.SENT and sent.note is None and current(sent) is None
    assert sent.findings == held.findings  # the history stays


def test_approval_records_the_send_time_hold(engine: sa.Engine, ctx: Context) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    post = _post(engine, ctx, PostState.HELD, send_at=at)
    with engine.begin() as conn:
        done = decisions.approve(conn, ctx, post.id, approver=SENDER, method="test")
    assert done is decisions.Decided.DONE
    scheduled = _get(engine, post.id)
    found = current(scheduled)
    assert scheduled.state is PostState.SCHEDULED
    assert found is not None and found.kind is HoldKind.SEND_AT and scheduled.note == found.note
    assert scheduled.findings[-1]["rule"] == "send-at"
    # the 情報管理者 moves it to now: nothing holds it any more
    with engine.begin() as conn:
        decisions.approve(
            conn,
            ctx,
            post.id,
            approver="cli",
            method="cli",
            send_at=dt.datetime.now(dt.UTC),
            reschedule=True,
        )
    moved = _get(engine, post.id)
    assert moved.state is PostState.APPROVED and moved.note is None and current(moved) is None


def test_approval_during_an_outage_records_the_hold_release_will_see(
    engine: sa.Engine, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / "outages" / "now.yaml").write_text(
        "id: now\nkind: emergency\nstopped_by: cloud_admin\nreason: テスト\n"
        "start: 2026-01-01 00:00:00+09:00\n"
    )
    ctx = Context(Directory(load_valid(config), KEY), KEY, "https://w.example.jp/")
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    now_post = _post(engine, ctx, PostState.HELD)
    timed_post = _post(engine, ctx, PostState.HELD, send_at=at)
    with engine.begin() as conn:
        for post in (now_post, timed_post):
            decisions.approve(conn, ctx, post.id, approver=SENDER, method="test")
    # due at once: release looks at it every time, so the outage is its hold
    assert _get(engine, now_post.id).note == "held: outage now in force (第9条)"
    # not due until its time, when release looks again: its time is its hold until then
    found = current(_get(engine, timed_post.id))
    assert found is not None and found.kind is HoldKind.SEND_AT
