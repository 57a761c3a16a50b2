"""Release and fan-out against a real SQLite file, without the daemon: batches, resume
after a crash, holds, the archive export, and the small decisions around them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.commands import post as post_command
from haishin.context import Context
from haishin.delivery import fanout
from haishin.directory import Directory
from haishin.mailtext.incoming import read
from haishin.posting import archive, decisions, release
from haishin.posting.holds import HoldKind, hold_of
from haishin.posting.release import ReleaseSettings, release_due
from haishin.registry import load_valid
from haishin.store import open_store, posts
from haishin.store import subscribers as subs
from haishin.store.posts import PostState
from haishin.tokens import Keyring, Purpose

CONFIG = Path(__file__).resolve().parents[2] / "config"
SLUG = "gomi-recycle"
SENDER = "genryo@city.kawasaki.example.jp"
KEY = Keyring(b"k" * 32)


@pytest.fixture
def ctx() -> Context:
    return Context(Directory(load_valid(CONFIG), KEY), KEY, "https://w.example.jp/")


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'h.db'}")


def _post(engine: sa.Engine, ctx: Context, state: PostState = PostState.APPROVED) -> int:
    with engine.begin() as conn:
        made = posts.create(
            conn,
            channel=SLUG,
            spool_id=None,
            sender=SENDER,
            subject="お知らせ",
            text="# 見出しではない\n1. 番号ではない\n<b>タグ</b>\n",
            html=None,
            message_id=None,
            state=state,
            approval="confirm",
            findings=[],
            send_at=None,
            ttl=ctx.post_ttl,
        )
    return made.id


def _subscribe(engine: sa.Engine, n: int) -> list[str]:
    addresses = [f"user{i}@example.jp" for i in range(n)]
    with engine.begin() as conn:
        for a in addresses:
            subs.activate(conn, SLUG, a, method="test", evidence="test")
    return addresses


def _rows(engine: sa.Engine) -> list[tuple[str, str, bytes]]:
    with engine.connect() as c:
        return [
            (r.rcpt, r.mail_from, bytes(r.headers))
            for r in c.execute(sa.text("SELECT rcpt, mail_from, headers FROM outbound"))
        ]


def test_fan_out_in_batches_resumes_after_a_crash_each_once(
    engine: sa.Engine, ctx: Context
) -> None:
    addresses = _subscribe(engine, 7)
    post_id = _post(engine, ctx)
    with engine.begin() as conn:
        post = posts.get(conn, post_id)
        assert post is not None
        assert fanout.start(conn, ctx, post, ()) is not None
    assert fanout.next_batch(engine, ctx, post_id, (), batch_size=3)
    # "crash": a new process picks the sending post up and continues from the cursor
    assert release_due(engine, ctx, ReleaseSettings()) == 1
    rows = _rows(engine)
    assert sorted(r for r, _, _ in rows) == sorted(addresses)  # each once
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM outbound_messages")).scalar() == 1
    for rcpt, mail_from, headers in rows:
        token = mail_from.split("+")[1].split("@")[0]
        assert len(mail_from.split("@")[0]) <= 64
        opened = ctx.keyring.open(Purpose.VERP, token, dt.datetime.now(dt.UTC))
        with engine.connect() as c:
            sub = subs.by_id(c, opened.ident)
        assert sub is not None and sub.address == rcpt
        assert headers.startswith(b"To: " + rcpt.encode())
    with engine.connect() as c:
        post = posts.get(c, post_id)
    assert post is not None and post.state is PostState.SENT and post.recipients == 7


def test_only_active_subscribers(engine: sa.Engine, ctx: Context) -> None:
    [active] = _subscribe(engine, 1)
    with engine.begin() as conn:
        subs.ensure_pending(conn, SLUG, "pending@example.jp")
        gone = subs.activate(conn, SLUG, "gone@example.jp", method="t", evidence="t")
        subs.unsubscribe(conn, gone.id, method="t")
        subs.activate(conn, SLUG, "off@example.jp", method="t", evidence="t")
        subs.remove(conn, SLUG, "off@example.jp")
        subs.activate(conn, "recycle-market", "other@example.jp", method="t", evidence="t")
    _post(engine, ctx)
    release_due(engine, ctx, ReleaseSettings())
    assert [r for r, _, _ in _rows(engine)] == [active]


def test_pause_and_outage_hold(engine: sa.Engine, ctx: Context) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        post = posts.get(conn, _post(engine, ctx))
    assert post is not None
    assert hold_of(ctx, post, now) is None
    paused = hold_of(ctx, dataclasses.replace(post, channel="sports-event"), now)
    assert paused is not None and paused.kind is HoldKind.PAUSE and "paused" in paused.note
    outage_time = dt.datetime(2026, 12, 13, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    outage = hold_of(ctx, post, outage_time)
    assert outage is not None and outage.kind is HoldKind.OUTAGE
    assert "R8-12-maintenance" in outage.note


def test_archive_export_is_plain_text_in_markdown(
    engine: sa.Engine, ctx: Context, tmp_path: Path
) -> None:
    _subscribe(engine, 1)
    post_id = _post(engine, ctx)
    folder = tmp_path / "archive"
    release_due(engine, ctx, ReleaseSettings())
    assert archive.export_store(engine, folder) == 1  # what `haishin site build --db` reads
    with engine.connect() as c:
        post = posts.get(c, post_id)
        row = c.execute(sa.text("SELECT * FROM archive")).mappings().one()
    assert post is not None and row["slug"] == post.archive_slug and row["public"]
    text = (folder / SLUG / f"{post.archive_slug}.md").read_text()
    assert text.startswith("Title: お知らせ\nDate: ")
    assert "\\# 見出しではない" in text and "\\1. 番号ではない" in text
    assert "&lt;b&gt;タグ&lt;/b&gt;" in text
    assert not list((folder / SLUG).glob(".*.tmp"))  # no temporary file left
    assert "user0" not in text
    # when it went out, for the site's 最終配信日 (site/archive.py last_sent)
    assert post.sent_at is not None
    last = dt.datetime.fromisoformat((folder / SLUG / ".last-sent").read_text().strip())
    assert last == post.sent_at.replace(second=0, microsecond=0)


def test_private_archive_is_not_exported_only_its_last_sent_time(
    engine: sa.Engine, ctx: Context, tmp_path: Path
) -> None:
    out = archive.markdown("件名", "本文\n", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert out == "Title: 件名\nDate: 2026-12-01 09:00\n\n本文  \n"
    with engine.begin() as conn:
        made = posts.create(
            conn,
            channel="kaigo-yobou",  # archive: private
            spool_id=None,
            sender="kenko@city.kawasaki.example.jp",
            subject="s",
            text="t\n",
            html=None,
            message_id=None,
            state=PostState.APPROVED,
            approval="confirm",
            findings=[],
            send_at=None,
            ttl=ctx.post_ttl,
        )
    release_due(engine, ctx, ReleaseSettings())
    with engine.connect() as c:
        post = posts.get(c, made.id)
        kept = c.execute(sa.text("SELECT public FROM archive")).scalar_one()
    assert post is not None and post.state is PostState.SENT and not kept
    assert post.sent_at is not None
    assert archive.export_store(engine, tmp_path / "a") == 0
    # nothing of the post; only when it went out, for the site's 最終配信日 (第5条4)
    assert [p.name for p in (tmp_path / "a" / "kaigo-yobou").iterdir()] == [".last-sent"]
    last = (tmp_path / "a" / "kaigo-yobou" / ".last-sent").read_text()
    assert dt.datetime.fromisoformat(last.strip()) == post.sent_at.replace(second=0, microsecond=0)


def test_decisions_are_compare_and_set(engine: sa.Engine, ctx: Context) -> None:
    post_id = _post(engine, ctx, PostState.HELD)
    with engine.begin() as conn:
        assert decisions.withdraw(conn, ctx, post_id, by="t", method="t") is decisions.Decided.DONE
        again = decisions.approve(conn, ctx, post_id, approver="t", method="t")
        assert again is decisions.Decided.TOO_LATE
        assert decisions.approve(conn, ctx, 999, approver="t", method="t") is (
            decisions.Decided.UNKNOWN
        )


@pytest.mark.parametrize(
    ("subject", "body", "withdraw"),
    [
        ("RE: 【川崎市】投稿の確認", "", False),
        ("RE: 【川崎市】投稿の確認", "> 取消と書いて返信\n", False),  # only quoted
        ("RE: 取消", "", True),
        ("RE: 【川崎市】投稿の確認", "取り消し\n> 元のメール", True),
        ("Re: WITHDRAW", "", True),
        ("RE: x", "お願いします\n取消", False),  # not the first line the replier wrote
    ],
)
def test_asks_withdraw(subject: str, body: str, withdraw: bool) -> None:
    raw = f"From: a@example.jp\r\nSubject: {subject}\r\n\r\n{body}".encode()
    incoming = read(raw, "a@example.jp")
    assert post_command.asks_withdraw(incoming) is withdraw


def test_a_batch_queued_by_another_worker_is_not_queued_again(
    engine: sa.Engine, ctx: Context
) -> None:
    _subscribe(engine, 2)
    post_id = _post(engine, ctx)
    with engine.begin() as conn:
        post = posts.get(conn, post_id)
        assert post is not None and fanout.start(conn, ctx, post, ()) is not None
    # another daemon moved the cursor past subscriber 1 after this one read it at 0
    with engine.begin() as conn:
        assert posts.advance(conn, post_id, 0, 1, 1)
        assert not posts.advance(conn, post_id, 0, 1, 1)  # the stale copy is refused
    assert fanout.next_batch(engine, ctx, post_id, ())
    assert not fanout.next_batch(engine, ctx, post_id, ())
    assert [r for r, _, _ in _rows(engine)] == ["user1@example.jp"]


def test_a_stopping_daemon_leaves_the_fan_out_to_resume(engine: sa.Engine, ctx: Context) -> None:
    addresses = _subscribe(engine, 3)
    post_id = _post(engine, ctx)
    settings = ReleaseSettings()
    assert release_due(engine, ctx, settings, stopping=lambda: True) == 0
    with engine.connect() as c:
        post = posts.get(c, post_id)
    assert post is not None and post.state is PostState.SENDING and post.cursor == 0
    assert release_due(engine, ctx, settings) == 1
    assert sorted(r for r, _, _ in _rows(engine)) == sorted(addresses)


def test_one_daemon_at_a_time_releases_a_post_and_a_dead_ones_lease_passes_on(
    db_url: str, ctx: Context
) -> None:
    """Issue 16 item 2: the release lease. While daemon A holds a sending post's lease,
    daemon B leaves the post alone (no row, no error); once A's lease ran out (A died
    without renewing it), B takes the post over, goes on from A's last committed batch,
    and ends it once: one archive row, the lease cleared, and A cannot renew any more."""
    engine = open_store(db_url)
    addresses = _subscribe(engine, 5)
    post_id = _post(engine, ctx)
    a = ReleaseSettings(owner="daemon-a")
    b = ReleaseSettings(owner="daemon-b")
    with engine.begin() as conn:  # A took the post and queued its first batch, then died
        assert posts.lease_release(conn, post_id, "daemon-a", utcnow(), a.lease)
        post = posts.get(conn, post_id)
        assert post is not None and fanout.start(conn, ctx, post, ()) is not None
    assert fanout.next_batch(engine, ctx, post_id, (), batch_size=2)

    assert release_due(engine, ctx, b) == 0  # A's lease still runs
    with engine.connect() as c:
        post = posts.get(c, post_id)
    assert post is not None and post.state is PostState.SENDING and post.cursor > 0
    assert len(_rows(engine)) == 2 and post.release_owner == "daemon-a"

    with engine.begin() as conn:  # time passes: A's lease runs out
        conn.execute(
            sa.text("UPDATE posts SET release_until = :t WHERE id = :i"),
            {"t": utcnow() - dt.timedelta(seconds=1), "i": post_id},
        )
    assert release_due(engine, ctx, b) == 1
    assert sorted(r for r, _, _ in _rows(engine)) == sorted(addresses)  # each once
    with engine.begin() as conn:
        post = posts.get(conn, post_id)
        kept = conn.execute(sa.text("SELECT count(*) FROM archive")).scalar_one()
        assert not posts.lease_release(conn, post_id, "daemon-a", utcnow(), a.lease)
    assert post is not None and post.state is PostState.SENT and kept == 1
    assert post.release_owner is None and post.release_until is None
    assert release_due(engine, ctx, a) == 0  # nothing left for anyone
    engine.dispose()


def test_a_start_that_lost_its_post_keeps_nothing(db_url: str, ctx: Context) -> None:
    """A post withdrawn between the look for due posts and its start: the body rendered
    for it is not kept, the lease is given back, and nothing is queued."""
    engine = open_store(db_url)
    _subscribe(engine, 2)
    post_id = _post(engine, ctx)
    with engine.connect() as c:
        (post,) = posts.due(c, utcnow())
    with engine.begin() as conn:
        assert posts.transition(conn, post_id, posts.PENDING, state=PostState.WITHDRAWN)
    settings = ReleaseSettings()
    assert not release._start(engine, ctx, post, ())
    release._let_go(engine, post_id, settings)
    with engine.connect() as c:
        bodies = c.execute(sa.text("SELECT count(*) FROM outbound_messages")).scalar_one()
        after = posts.get(c, post_id)
    assert bodies == 0 and not _rows(engine)
    assert after is not None and after.state is PostState.WITHDRAWN and after.release_owner is None
    engine.dispose()
