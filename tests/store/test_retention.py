"""第4条(3): personal data past its retention is gone from every table; the consent record
stays (特定電子メール法), findable by hashing the address with the service's key."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.registry.model import Limits
from haishin.store import confirmations, queue, spool, subscribers
from haishin.store.engine import open_store
from haishin.store.retention import pseudonym, purge
from haishin.store.schema import metadata
from support import helpers

KEY = b"k" * 32
NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def _dump(engine: sa.Engine) -> bytes:
    """Every value of every row, as bytes, to search for an address anywhere."""
    out = bytearray()
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode()
                    out += b"\n"
    return bytes(out)


def test_purge(db_url: str) -> None:
    engine = open_store(db_url)
    gone, stays, recent = "gone@example.jp", "stays@example.jp", "recent@example.jp"
    spool.put_many(
        engine,
        [(f"From: {gone}\r\n\r\n".encode(), gone, ["gomi-recycle-subscribe@x"], "smtp")],
        [None],
    )
    with engine.begin() as conn:
        for address in (gone, stays, recent):
            subscribers.activate(
                conn,
                "gomi-recycle",
                address,
                method="mail-reply",
                evidence=f"inbound#1 from {address}",
            )
            confirmations.create(
                conn,
                "gomi-recycle",
                address,
                confirmations.Action.SUBSCRIBE,
                dt.timedelta(hours=72),
                "t",
            )
        queue.enqueue(conn, f"To: {gone}\r\n\r\nwelcome\r\n".encode(), "", [gone], kind="reply")
        sub = subscribers.find(conn, "gomi-recycle", gone)
        assert sub is not None
        subscribers.unsubscribe(conn, sub.id, method="one-click")
        later = subscribers.find(conn, "gomi-recycle", recent)
        assert later is not None
        subscribers.unsubscribe(conn, later.id, method="one-click")
    old = NOW - dt.timedelta(days=400)
    with engine.begin() as conn:
        # age everything of `gone` (and the shared rows) past both retentions
        t = metadata.tables
        conn.execute(
            t["subscribers"]
            .update()
            .where(t["subscribers"].c.address == gone)
            .values(unsubscribed_at=old)
        )
        conn.execute(
            t["subscribers"]
            .update()
            .where(t["subscribers"].c.address == recent)
            .values(unsubscribed_at=NOW - dt.timedelta(days=10))
        )
        conn.execute(t["confirmations"].update().values(expires_at=old))
        conn.execute(t["inbound"].update().values(received_at=old, state="done"))
        conn.execute(t["outbound"].update().values(created_at=old, state="sent"))
        conn.execute(t["outbound_messages"].update().values(created_at=old))
    assert gone.encode() in _dump(engine)

    done = purge(engine, KEY, Limits(), NOW)
    assert (done.subscribers, done.inbound, done.outbound) == (1, 1, 1)
    dump = _dump(engine)
    assert gone.encode() not in dump
    assert stays.encode() in dump and recent.encode() in dump  # active, or not yet due
    with engine.connect() as conn:
        record = subscribers.find(conn, "gomi-recycle", pseudonym(KEY, gone))
    assert record is not None  # the consent record, found again by the keyed hash
    assert record.consent_method == "mail-reply" and record.confirmed_at is not None
    assert record.unsubscribe_method == "one-click"
    assert purge(engine, KEY, Limits(), NOW).subscribers == 0  # idempotent
    engine.dispose()


def test_sqlite_database_is_owner_only(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'var' / 'haishin.db'}")
    with engine.begin() as conn:
        subscribers.activate(conn, "gomi-recycle", "a@example.jp", method="t", evidence="t")
    for name in ("haishin.db", "haishin.db-wal"):
        path = tmp_path / "var" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    engine.dispose()


def test_the_daemon_purges_by_itself(tmp_path: Path, sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        sub = subscribers.activate(
            conn, "gomi-recycle", "left@example.jp", method="t", evidence="t"
        )
        subscribers.unsubscribe(conn, sub.id, method="one-click")
        t = metadata.tables["subscribers"]
        conn.execute(t.update().values(unsubscribed_at=utcnow() - dt.timedelta(days=400)))
    d = helpers.start(tmp_path, sqlite_url, extra=["--housekeeping-after", "0.2"])
    try:
        helpers.wait_until(lambda: b"left@example.jp" not in _dump(engine), what="the purge")
    finally:
        assert d.stop() == 0
    engine.dispose()


def test_never_confirmed_subscriptions_are_removed(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        subscribers.ensure_pending(conn, "gomi-recycle", "typed-by-someone@example.jp")
        subscribers.ensure_pending(conn, "gomi-recycle", "fresh@example.jp")
        t = metadata.tables["subscribers"]
        conn.execute(
            t.update()
            .where(t.c.address == "typed-by-someone@example.jp")
            .values(created_at=NOW - dt.timedelta(days=5))
        )
    assert purge(engine, KEY, Limits(), NOW).pending == 1
    dump = _dump(engine)
    assert b"typed-by-someone@example.jp" not in dump and b"fresh@example.jp" in dump
    engine.dispose()


def test_disabled_addresses_are_purged_too(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        subscribers.activate(conn, "gomi-recycle", "bounced@example.jp", method="t", evidence="t")
        t = metadata.tables["subscribers"]
        conn.execute(t.update().values(status="disabled", updated_at=NOW - dt.timedelta(days=400)))
    assert purge(engine, KEY, Limits(), NOW).subscribers == 1
    assert b"bounced@example.jp" not in _dump(engine)
    engine.dispose()


def test_mypage_links_and_unconfirmed_moves_are_forgotten(sqlite_url: str) -> None:
    """Issue 14: an expired link's address and a change of address never confirmed (a
    stranger's address may have been typed in) go; a confirmed change stays (consent)."""
    from haishin.store import mypage

    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        old = mypage.create_link(conn, "old-link@example.jp", dt.timedelta(hours=1))
        mypage.create_link(conn, "fresh-link@example.jp", dt.timedelta(days=400))
        mypage.create_move(conn, old.id, "a@example.jp", "typed@example.jp", dt.timedelta(0), None)
        done = mypage.create_move(
            conn, old.id, "b@example.jp", "moved-to@example.jp", dt.timedelta(0), None
        )
        mypage.use_move(conn, done.id, "web button")
        for table in ("mypage_links", "address_moves"):
            t = metadata.tables[table]
            conn.execute(
                t.update()
                .where(t.c.expires_at < utcnow() + dt.timedelta(days=2))
                .values(expires_at=NOW - dt.timedelta(days=60))
            )
    purge(engine, KEY, Limits(), NOW)
    dump = _dump(engine)
    for gone in (b"old-link@example.jp", b"a@example.jp", b"typed@example.jp"):
        assert gone not in dump, gone
    for kept in (b"fresh-link@example.jp", b"b@example.jp", b"moved-to@example.jp"):
        assert kept in dump, kept
    engine.dispose()
