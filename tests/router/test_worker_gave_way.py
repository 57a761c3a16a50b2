"""A worker batch that PostgreSQL rolls back to break a deadlock (another daemon or a
/me/ page holding what the batch needs, and needing what it holds) is done again at
once, with one warning and no traceback: nothing of it was committed, and nothing is
lost. A real deadlock on a real PostgreSQL, not a simulated error."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
import sqlalchemy as sa

from haishin.outbound.ratelimit import _lock_id
from haishin.router import worker
from haishin.store import spool
from haishin.store.engine import gave_way
from haishin.store.states import Intake, MessageKind
from haishin.store.subscribers import address_key
from support import helpers
from support.inprocess import inprocess

DOMAIN = "mail.city.kawasaki.example.jp"
SENDER = "deadlock@example.jp"


def _waiting(engine: sa.Engine) -> bool:
    """Some transaction in this test's database waits for another's lock."""
    with engine.connect() as c:
        return bool(
            c.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE NOT l.granted AND a.datname = current_database()"
                )
            ).scalar()
        )


def test_a_batch_rolled_back_for_a_deadlock_goes_again_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    caplog.set_level(logging.INFO)
    raw = f"From: {SENDER}\r\nSubject: \r\nMessage-ID: <d1@x.example>\r\n\r\n".encode()
    with helpers.pg_database() as url, inprocess(url) as h:
        spool.put_many(
            h.engine,
            [(raw, SENDER, [f"gomi-recycle-subscribe@{DOMAIN}"], Intake.SMTP, "127.0.0.9")],
        )
        (row,) = spool.fetch_new(h.engine, 1)
        # the other party: holds the spool row the batch will mark done ...
        other = h.engine.connect()
        tx = other.begin()
        other.execute(sa.text("UPDATE inbound SET state = state WHERE id = :i"), {"i": row.id})

        async def main() -> None:
            wake, processed = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(worker.run(h.engine, lambda: h.ctx, wake, processed, 0.05))
            try:
                # ... and once the batch waits for that row (it holds the sender's answer
                # lock by then), asks for the lock the batch holds: a deadlock
                await asyncio.to_thread(helpers.wait_until, lambda: _waiting(h.engine), 10)
                lock = sa.select(sa.func.pg_advisory_xact_lock(_lock_id(address_key(SENDER))))
                started = time.monotonic()
                got: list[BaseException] = []

                def take() -> None:
                    try:
                        other.execute(lock)
                    except sa.exc.SQLAlchemyError as exc:
                        got.append(exc)

                taker = threading.Thread(target=take)
                taker.start()
                await asyncio.to_thread(taker.join, 15)
                # PostgreSQL broke the circle by rolling one side back: the batch, which
                # waited first (its deadlock check ran first), so this side got its lock
                assert not got, got
                assert time.monotonic() - started < 10
                tx.rollback()
                await asyncio.to_thread(
                    helpers.wait_until, lambda: h.queued(kind=MessageKind.CONFIRM), 10
                )
            finally:
                if tx.is_active:  # the batch's thread must not wait on it for ever
                    tx.rollback()
                other.close()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        asyncio.run(main())
        assert [q.rcpt for q in h.queued(kind=MessageKind.CONFIRM)] == [SENDER]  # once
    rolled = [r for r in caplog.records if "rolled back by the database" in r.getMessage()]
    assert rolled and "40P01" in rolled[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_gave_way_knows_only_the_databases_own_rollbacks() -> None:
    """The classification the worker uses, on real errors: a deadlock's is a retry, a
    syntax error is not."""
    if not helpers.pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with helpers.pg_database() as url:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as c, pytest.raises(sa.exc.SQLAlchemyError) as bad:
                c.execute(sa.text("SELEC 1"))
            assert not gave_way(bad.value)
            with engine.connect() as c, pytest.raises(sa.exc.SQLAlchemyError) as rolled:
                c.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$"))
            assert gave_way(rolled.value)
        finally:
            engine.dispose()
