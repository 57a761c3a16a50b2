"""The worker: take spooled messages in order and process each exactly once.

A batch is one transaction; each message in it has a savepoint. Its effects (subscriber
changes, queued replies) and the mark "done" commit together, so a crash at any point
repeats nothing visible: the message is either untouched (and processed after restart)
or done with all its effects. A message whose processing raises is retried, then shunted
with its evidence kept (style.md 2).
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

BATCH = 64
RETRY_AFTER_ERROR = 1.0

ContextSource = Callable[[], Context]


def process_batch(engine: sa.Engine, ctx: Context, rows: list[spool.Spooled]) -> int:
    """Process rows in one transaction; returns how many were done. Thread context."""
    failed: list[tuple[int, str]] = []
    done = 0
    with engine.begin() as conn:
        for row in rows:
            try:
                with conn.begin_nested():
                    state, outcome = dispatch(conn, ctx, row)
                    if spool.take(conn, row.id, state, outcome):
                        done += 1
                    else:
                        raise _AlreadyTaken
            except _AlreadyTaken:
                continue
            except Exception as exc:  # a bug or a message we cannot read: keep it, go on
                log.exception("inbound#%d: processing failed", row.id)
                failed.append((row.id, f"{type(exc).__name__}: {exc}"))
    for spool_id, error in failed:
        state = spool.record_failure(engine, spool_id, error)
        log.warning("inbound#%d: attempt failed, now %s", spool_id, state)
    return done


class _AlreadyTaken(Exception):
    """Another worker processed the row first: roll back this savepoint's effects."""


async def run(
    engine: sa.Engine,
    ctx_of: ContextSource,
    wake: asyncio.Event,
    processed: asyncio.Event,
    poll: float = 0.5,
) -> None:
    """Forever: process what is new, then wait for the next put or the poll interval."""
    while True:
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll)
