"""The worker: take spooled messages in order and process each exactly once.

A batch is one transaction: the messages' effects (subscriber changes, queued replies)
and their mark "done" commit together, so a crash at any point repeats nothing visible:
a message is either untouched (and processed after restart) or done with all its
effects. If one message of a batch raises, the batch is redone message by message; a
message whose processing keeps raising is shunted with its evidence kept (style.md 2).

No message stalls the others (issue 11 item 4). Python cannot stop a thread, so the bound
comes first from `mailtext.limits`: a message over them is not parsed (answered as
unreadable or dropped, `router.unreadable`), and within them reading is linear and small
(measured worst case 0.02 s to read; the bounce classifier reads at most 100 recipients
and 128 KB of each part of a report, `bounces.classify.mail`, so its worst case under
`max_message_kb` is about 0.3 s where 40,000 recipient lines took 5-7 s before).
Then a measured budget between steps: a message whose reading took longer than
`budget_seconds` is set aside (state failed, the raw kept, the reason recorded) before any
command runs; a row whose whole handling overran says so in its recorded outcome; and a
batch takes no further message once it has used the budget and commits, so a row waits
behind at most the budget plus one row's bounded handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

import sqlalchemy as sa

from ..context import Context
from ..mailtext.incoming import Incoming, read
from ..mailtext.limits import LIMITS, MimeLimits, Unreadable
from ..outbound import ratelimit
from ..outbound.ratelimit import client_network
from ..store import deferred, spool, subscribers
from ..store.engine import gave_way
from ..store.states import SpoolState
from . import unreadable
from .dispatch import dispatch

log = logging.getLogger(__name__)

BATCH = 32
"""Rows per batch on SQLite, where the batch's transaction holds the one write lock that
the spool's group commit (every session's 250) waits for."""
BATCH_POSTGRESQL = 128
"""On PostgreSQL a batch shares no lock with the spool, and costs about a dozen round
trips whatever its size (store.deferred): paired runs of bench/inbound_subscribe.py,
128 against 32, 1.3-1.5x requests/s end to end (on SQLite 128 was not faster). With
several daemons, the answer limits may overshoot by a batch per daemon (ratelimit.py)."""
OVER_BUDGET = "over budget ({took:.2f} s of {budget:.2f} s)"
"""Prefixed to the recorded outcome of a row whose whole handling overran the budget."""
RETRY_AFTER_ERROR = 1.0

ContextSource = Callable[[], Context]


class _AlreadyTaken(Exception):
    """Another worker processed the row first: roll back this transaction's effects."""


@dataclasses.dataclass(frozen=True)
class Read:
    """A row's message as read, and how long the reading took."""

    incoming: Incoming
    took: float


def read_row(row: spool.Spooled, limits: MimeLimits = LIMITS) -> Read:
    """Read within the limits; over the budget, the message counts as unreadable."""
    started = time.monotonic()
    incoming = read(row.raw, row.mail_from, limits)
    took = time.monotonic() - started
    if incoming.unreadable is None and took > limits.budget_seconds:
        incoming = dataclasses.replace(incoming, unreadable=Unreadable.OVER_BUDGET)
    return Read(incoming, took)


def handle(
    conn: sa.Connection,
    ctx: Context,
    row: spool.Spooled,
    limits: MimeLimits = LIMITS,
    done: Read | None = None,
) -> tuple[SpoolState, str]:
    """One message: read within the limits and the budget (unless `done` already), then
    dispatch."""
    if done is None:
        done = read_row(row, limits)
    incoming, took = done.incoming, done.took
    if incoming.unreadable is Unreadable.OVER_BUDGET:
        # set aside before any command runs; the raw stays in the row as evidence
        log.warning("inbound#%d: set aside: reading took %.2f s", row.id, took)
        return SpoolState.FAILED, f"set aside: {Unreadable.OVER_BUDGET} ({took:.2f} s)"
    if incoming.unreadable is not None:
        return unreadable.handle(conn, ctx, row.id, row.rcpts, row.mail_from, incoming)
    started = time.monotonic()
    state, outcome = dispatch(conn, ctx, row, incoming)
    took += time.monotonic() - started
    if took > limits.budget_seconds:
        # the budget covers the whole row, reading and dispatch: its effects are done and
        # stay (undoing half of a command would be worse), but the row says it overran,
        # and the batch takes no further row (process_batch)
        log.warning(
            "inbound#%d: processing took %.2f s (budget %.2f s)",
            row.id,
            took,
            limits.budget_seconds,
        )
        outcome = f"{OVER_BUDGET.format(took=took, budget=limits.budget_seconds)}: {outcome}"
    return state, outcome


def process_batch(
    engine: sa.Engine, ctx: Context, rows: list[spool.Spooled], limits: MimeLimits = LIMITS
) -> int:
    """Process rows in one transaction; returns how many were done. Thread context.

    If any row raises, the whole batch is rolled back and each row is then processed in
    its own transaction, so one bad message costs its batch a retry, never a loss. Once
    the batch has used `limits.budget_seconds`, the rest wait for the next batch.

    The messages are read before the transaction: reading needs no database, and on
    SQLite the transaction holds the one write lock, for which the spool writer's group
    commit (and so every session's 250) waits (bench/inbound_subscribe.py). The budget
    counts the reading and the time in the transaction, not the wait for the lock.
    """
    try:
        reads: list[Read] = []
        started = time.monotonic()
        for row in rows:
            reads.append(read_row(row, limits))
            if time.monotonic() - started > limits.budget_seconds:
                break  # the others are read by a later batch
        rows = rows[: len(reads)]
        reading = time.monotonic() - started
        with engine.begin() as conn:
            started = time.monotonic()
            settings = ctx.service.limits.client_networks
            taken: list[tuple[int, str, str]] = []
            # the batch's inserts leave as one statement per table at the block's end, in
            # this transaction (store.deferred: one round trip each on PostgreSQL)
            with deferred.batched(conn):
                senders = {r.incoming.sender for r in reads if r.incoming.sender is not None}
                networks = {client_network(r.source, r.client_address, settings) for r in rows}
                ratelimit.prefetch(conn, ctx, networks, senders)
                subscribers.read_ahead(conn, _channels(ctx, rows), senders)
                for row, was_read in zip(rows, reads, strict=True):
                    taken.append((row.id, *handle(conn, ctx, row, limits, was_read)))
                    if reading + time.monotonic() - started > limits.budget_seconds:
                        break  # commit what is done: the others are not kept waiting longer
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
                done += _process(conn, ctx, row, limits)
        except _AlreadyTaken:
            continue  # its effects were rolled back with the transaction
        except sa.exc.OperationalError:
            raise
        except Exception as exc:  # a bug or a message we cannot read: keep it, go on
            log.exception("inbound#%d: processing failed", row.id)
            state = spool.record_failure(engine, row.id, f"{type(exc).__name__}: {exc}")
            log.warning("inbound#%d: attempt failed, now %s", row.id, state)
    return done


def _channels(ctx: Context, rows: list[spool.Spooled]) -> set[str]:
    """The channels the batch's messages are addressed to."""
    targets = (ctx.directory.parse(rcpt) for row in rows for rcpt in row.rcpts)
    return {t.slug for t in targets if t is not None and t.slug is not None}


def _process(conn: sa.Connection, ctx: Context, row: spool.Spooled, limits: MimeLimits) -> int:
    # the effects and "done" commit together; if another worker took the row first, the
    # update finds no new row and raising rolls this row's effects back
    state, outcome = handle(conn, ctx, row, limits)
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
    batch = BATCH_POSTGRESQL if engine.dialect.name == "postgresql" else BATCH
    while True:
        if me is not None and me.cancelling():
            # a library below (aiosmtplib, on a cancelled send) may swallow the
            # CancelledError; the stop request still stands
            raise asyncio.CancelledError
        wake.clear()
        try:
            rows = await asyncio.to_thread(spool.fetch_new, engine, batch)
        except sa.exc.SQLAlchemyError:
            log.exception("worker: database error; retrying")
            await asyncio.sleep(RETRY_AFTER_ERROR)
            continue
        if rows:
            try:
                await asyncio.to_thread(process_batch, engine, ctx_of(), rows)
            except sa.exc.SQLAlchemyError as exc:
                if gave_way(exc):
                    # PostgreSQL chose this batch to give way to another transaction
                    # (a deadlock with a web page or another daemon): nothing was
                    # committed, and the batch goes again now
                    state = getattr(getattr(exc, "orig", None), "sqlstate", "")
                    log.warning("worker: batch rolled back by the database (%s); again", state)
                    continue
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
