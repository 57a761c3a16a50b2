"""The worker: take spooled messages in order and process each exactly once.

A batch is one transaction: the messages' effects (subscriber changes, queued replies)
and their mark "done" commit together, so a crash at any point repeats nothing visible:
a message is either untouched (and processed after restart) or done with all its
effects. If one message of a batch raises, the batch is redone message by message; a
message whose processing keeps raising is shunted with its evidence kept (style.md 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import sqlalchemy as sa

from ..commands.context import Context
from ..store import spool
from .dispatch import dispatch

log = logging.getLogger(__name__)

BATCH = 32
RETRY_AFTER_ERROR = 1.0

ContextSource = Callable[[], Context]


class _AlreadyTaken(Exception):
    """Another worker processed the row first: roll back this transaction's effects."""


def process_batch(engine: sa.Engine, ctx: Context, rows: list[spool.Spooled]) -> int:
    """Process rows in one transaction; returns how many were done. Thread context.

    If any row raises, the whole batch is rolled back and each row is then processed in
    its own transaction, so one bad message costs its batch a retry, never a loss.
    """
    try:
        with engine.begin() as conn:
            taken = [(row.id, *dispatch(conn, ctx, row)) for row in rows]
            if not spool.take_many(conn, taken):
                raise _AlreadyTaken  # someone else took one: sort it out row by row
            return len(taken)
    except sa.exc.OperationalError:
        raise  # the database itself: the caller retries the batch later
    except Exception:
        log.info("batch of %d failed; processing one by one", len(rows))
    done = 0
    for row in rows:
        try:
            with engine.begin() as conn:
                done += _process(conn, ctx, row)
        except _AlreadyTaken:
            continue  # its effects were rolled back with the transaction
        except sa.exc.OperationalError:
            raise
        except Exception as exc:  # a bug or a message we cannot read: keep it, go on
            log.exception("inbound#%d: processing failed", row.id)
            state = spool.record_failure(engine, row.id, f"{type(exc).__name__}: {exc}")
            log.warning("inbound#%d: attempt failed, now %s", row.id, state)
    return done


def _process(conn: sa.Connection, ctx: Context, row: spool.Spooled) -> int:
    # the effects and "done" commit together; if another worker took the row first, the
    # update finds no new row and raising rolls this row's effects back
    state, outcome = dispatch(conn, ctx, row)
    if not spool.take(conn, row.id, state, outcome):
        raise _AlreadyTaken(row.id)
    return 1


async def run(
    engine: sa.Engine,
    ctx_of: ContextSource,
    wake: asyncio.Event,
    processed: asyncio.Event,
    poll: float = 0.5,
) -> None:
    """Forever: process what is new, then wait for the next put or the poll interval."""
    me = asyncio.current_task()
    while True:
        if me is not None and me.cancelling():
            # a library below (aiosmtplib, on a cancelled send) may swallow the
            # CancelledError; the stop request still stands
            raise asyncio.CancelledError
        wake.clear()
        try:
            rows = await asyncio.to_thread(spool.fetch_new, engine, BATCH)
        except sa.exc.SQLAlchemyError:
            log.exception("worker: database error; retrying")
            await asyncio.sleep(RETRY_AFTER_ERROR)
            continue
        if rows:
            try:
                await asyncio.to_thread(process_batch, engine, ctx_of(), rows)
            except sa.exc.SQLAlchemyError:
                # the database is away (disk full, PostgreSQL restarting): nothing was
                # committed, so the batch is simply tried again
                log.exception("worker: database error; retrying")
                await asyncio.sleep(RETRY_AFTER_ERROR)
            processed.set()
            continue
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
        # that arrives as the event is set, and the daemon then never stops (seen in tests)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll):
                await wake.wait()
