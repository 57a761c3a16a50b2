"""The sender task: claim due rows in batches, deliver, record the results in batches.

4xx replies and connection failures are retried with exponential backoff for a bounded
number of attempts (then `failed`); 5xx replies are recorded as `bounced` (design.md
reliability promises: never a silent drop). With a smarthost, `pool.Pool` delivers over
several reused, pipelining connections, paced per destination domain (`pacing.py`);
without one, mail goes to the maildir.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..clock import utcnow
from ..registry.model import Delivery
from ..store import heartbeats, queue
from ..store.states import MessageKind, QueueState
from . import maildir
from .pacing import Limits
from .pool import Pool, Sendable
from .sharing import LOCAL, Sharing, for_engine

log = logging.getLogger(__name__)

BATCH = 100
"""Rows per claim for the maildir."""

OnBounced = Callable[[sa.Connection, list[tuple[queue.Claimed, str]]], None]
"""Told of 5xx replies (row, reply) inside the transaction that records them: service.py
wires in the bounce score (bounces/record.py), which stands above this module."""


@dataclass(frozen=True)
class SendSettings:
    smarthost: tuple[str, int] | None
    maildir: Path
    retry_base: float = 60.0  # seconds before the first retry; doubles each time
    retry_cap: float = 3600.0
    max_attempts: int = 30  # about a day and a half with the cap: then `failed`
    timeout: float = 30.0
    batch: int = 1000
    """Rows per claim with a smarthost. What a crash repeats does not depend on it: at
    most two chains per connection (chains.repeat_bound), since a connection hands a chain
    over only once its previous one is committed."""
    pace_scale: float = 1.0
    """Tests only: per-minute limits run this many times faster."""


def _retry(settings: SendSettings, row: queue.Claimed, error: str) -> queue.Result:
    if row.attempts + 1 >= settings.max_attempts:
        return queue.Result(row.id, QueueState.FAILED, error)
    delay = min(settings.retry_base * (2**row.attempts), settings.retry_cap)
    return queue.Result(row.id, QueueState.QUEUED, error, utcnow() + dt.timedelta(seconds=delay))


def _data(row: queue.Claimed) -> bytes:
    return (row.headers or b"") + row.raw


def _classify(settings: SendSettings, row: queue.Claimed, code: int, text: str) -> queue.Result:
    error = f"{code} {text}"[:500]
    if 500 <= code < 600:
        return queue.Result(row.id, QueueState.BOUNCED, error)
    return _retry(settings, row, error)


def _send_maildir(settings: SendSettings, rows: list[queue.Claimed]) -> list[queue.Result]:
    maildir.ensure(settings.maildir)
    results = []
    for row in rows:
        maildir.deliver(settings.maildir, row.mail_from, row.rcpt, _data(row), sync_dir=False)
        results.append(queue.Result(row.id, QueueState.SENT))
    maildir.sync(settings.maildir)  # before the rows are marked sent
    return results


async def send_batch(
    engine: sa.Engine,
    settings: SendSettings,
    kinds: frozenset[MessageKind] | None = None,
    *,
    claims: queue.Claims | None = None,
    unsettled: list[queue.Result] | None = None,
) -> int:
    """Deliver one batch into the maildir (of `kinds` only, if given: an outage).

    The caller's `claims` and `unsettled` carry what a database error left over to the
    next call: a claim whose answer was lost, results that could not be written. The
    next call writes those first, so no row stays `sending` once the database is back."""
    claims = claims or queue.Claims(engine)
    unsettled = [] if unsettled is None else unsettled
    if unsettled:
        await asyncio.to_thread(queue.settle, engine, unsettled)
        unsettled.clear()
    rows = await asyncio.to_thread(claims.claim, BATCH, kinds=kinds)
    if not rows:
        return 0
    try:
        results = await asyncio.to_thread(_send_maildir, settings, rows)
    except BaseException:
        # a full disk, a cancelled task: the rows go back to the queue untried, never
        # stranded as `sending` until a restart
        back = [queue.Result.untried(r.id) for r in rows]
        try:
            await asyncio.to_thread(queue.settle, engine, back)
        except sa.exc.SQLAlchemyError:
            unsettled.extend(back)
        raise
    try:
        await asyncio.to_thread(queue.settle, engine, results)
    except BaseException:
        unsettled.extend(results)  # delivered: written by the next call, not repeated
        raise
    for r in results:
        if r.state != QueueState.SENT:
            # the reply may quote an address: the log filter marks it (redact.py)
            log.info("outbound#%d: %s (%s)", r.id, r.state, r.error or "")
    return len(rows)


async def run(
    engine: sa.Engine,
    settings: SendSettings,
    wake: asyncio.Event,
    poll: float = 1.0,
    delivery: Callable[[], Delivery] = Delivery,
    on_bounced: OnBounced | None = None,
    sendable: Sendable = lambda: None,
) -> None:
    """`sendable` says which kinds of mail may go out now (None: all); service.py wires in
    the outages in force (operations/outages.py, 第9条), which stand above this module."""
    await asyncio.to_thread(heartbeats.heartbeat, engine)
    # `mine`: this task holds no claims yet, so any under our id are an earlier run's
    # (supervision.supervised restarts it) whose results could not be written
    await asyncio.to_thread(heartbeats.recover, engine, mine=True)
    sendable = _logged(sendable)
    if settings.smarthost:
        await _run_pool(engine, settings, wake, poll, delivery, on_bounced, sendable)
    else:
        await _run_maildir(engine, settings, wake, poll, sendable)


def _logged(sendable: Sendable) -> Sendable:
    """The same answers, with a log line when an outage hold starts or ends."""
    last: list[frozenset[MessageKind] | None] = [None]

    def look() -> frozenset[MessageKind] | None:
        now = sendable()
        if now != last[0]:
            if now is None:
                log.info("sender: outage over, all mail goes out again (第9条)")
            else:
                log.info("sender: outage in force, only %s mail goes out (第9条)", sorted(now))
            last[0] = now
        return now

    return look


RATE_WINDOW = 10.0
"""Seconds over which a sender's own rate is told in its heartbeat (`haishin status`)."""


class _Alive:
    """Heartbeat every HEARTBEAT_EVERY: alive, with the rate over the last RATE_WINDOW;
    renews this sender's connection leases (sharing.py), and is on the lookout for rows
    a dead sender had claimed."""

    def __init__(
        self, engine: sa.Engine, sent: Callable[[], int], sharing: Sharing = LOCAL
    ) -> None:
        self.engine = engine
        self.sent = sent
        self.sharing = sharing
        self.loop = asyncio.get_running_loop()
        self.beat = self.loop.time()
        self.samples: deque[tuple[float, int]] = deque([(self.beat, sent())])

    def rate(self) -> float:
        now, sent = self.loop.time(), self.sent()
        self.samples.append((now, sent))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW:
            self.samples.popleft()  # the first sample left is the last one a window old
        then, before = self.samples[0]
        return (sent - before) / (now - then) if now > then else 0.0

    async def tick(self) -> None:
        if self.loop.time() - self.beat >= heartbeats.HEARTBEAT_EVERY.total_seconds():
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                await asyncio.to_thread(heartbeats.heartbeat, self.engine, self.rate())
                await self.sharing.renew()
                await asyncio.to_thread(heartbeats.recover, self.engine)
            self.beat = self.loop.time()


def _check_cancelled() -> None:
    me = asyncio.current_task()
    if me is not None and me.cancelling():
        # a library below may swallow the CancelledError; the stop request still stands
        raise asyncio.CancelledError


async def _wait(event: asyncio.Event, seconds: float) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
    # that arrives as the event is set, and the daemon then never stops (seen in tests)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


async def _run_maildir(
    engine: sa.Engine,
    settings: SendSettings,
    wake: asyncio.Event,
    poll: float,
    sendable: Sendable,
) -> None:
    total = [0]
    alive = _Alive(engine, lambda: total[0])
    claims = queue.Claims(engine)
    unsettled: list[queue.Result] = []
    while True:
        await alive.tick()
        _check_cancelled()
        wake.clear()
        try:
            sent = await send_batch(
                engine, settings, sendable(), claims=claims, unsettled=unsettled
            )
        except sa.exc.SQLAlchemyError:
            log.exception("sender: database error; retrying")
            sent = 0
        total[0] += sent
        if not sent:
            await _wait(wake, poll)


HORIZON = 30.0
"""Seconds of a throttled domain's pace held in memory; later rows wait in the queue."""

FLUSH_EVERY = 0.25
"""Seconds between result writes while a batch is being sent."""

REFILL = 0.05
"""Seconds between claims once a claim found fewer due rows than a batch: a signed
fan-out queues its rows a chunk at a time, and every chain's commit woke the sender to
claim the few queued since; those claims' transactions took a quarter of the daemon's
time (issue 16's profile). At most this much later, the rows queued meanwhile are
claimed together; a full claim is followed at once."""


async def _run_pool(
    engine: sa.Engine,
    settings: SendSettings,
    wake: asyncio.Event,
    poll: float,
    delivery: Callable[[], Delivery],
    on_bounced: OnBounced | None,
    sendable: Sendable,
) -> None:
    assert settings.smarthost is not None
    current = delivery()
    sharing = for_engine(engine)  # the limits hold for all daemons of one database
    # 5xx replies, and a 4xx that ends the retries, wait here until their results are
    # written, then go through the bounce classifier in that transaction (the bounce and
    # the row's state commit together, or neither); a 4xx that will be retried is not a
    # verdict yet (issue 12 item 1: a reply given up on is "expired", temporary)
    bounced: dict[int, tuple[queue.Claimed, str]] = {}

    def classify(row: queue.Claimed, code: int, text: str) -> queue.Result:
        result = _classify(settings, row, code, text)
        if result.state in (QueueState.BOUNCED, QueueState.FAILED) and on_bounced is not None:
            bounced[row.id] = (row, result.error or "")
        return result

    def then(results: list[queue.Result]) -> Callable[[sa.Connection], None] | None:
        # read, not taken: if this write fails it is tried again, and asked again
        mine = [bounced[r.id] for r in results if r.id in bounced]
        if not mine or on_bounced is None:
            return None
        return lambda conn: on_bounced(conn, mine)

    def settled(results: list[queue.Result]) -> None:
        for r in results:
            bounced.pop(r.id, None)

    pool = Pool(
        engine,
        Limits(current, settings.pace_scale),
        settings.smarthost,
        classify=classify,
        on_settle=then,
        on_settled=settled,
        retry=lambda row, error: _retry(settings, row, error),
        batch=settings.batch,
        timeout=settings.timeout,
        rate=current.messages_per_second,
        horizon=HORIZON / settings.pace_scale,
        changed=wake,
        sendable=sendable,
        sharing=sharing,
    )
    alive = _Alive(engine, lambda: pool.stats.sent, sharing)
    loop = asyncio.get_running_loop()
    flushed = loop.time()
    short = -REFILL  # when the last claim found fewer due rows than it asked for
    try:
        while True:
            await alive.tick()
            _check_cancelled()
            if delivery() is not current:  # the registry was reloaded
                current = delivery()
                pool.reconfigure(Limits(current, settings.pace_scale))
            wake.clear()
            pool.check_hold()  # an outage (第9条) may have started or ended
            again = False  # something was done: look again before waiting
            try:
                pending = pool.pending
                if pending and (
                    pool.waiting  # a connection waits for its chain to be on disk
                    or pending >= pool.batch // 2
                    or pending >= pool.in_flight
                    or loop.time() - flushed >= FLUSH_EVERY
                ):
                    await pool.flush()
                    flushed = loop.time()
                    again = True  # more results may have arrived meanwhile
                skipped = False
                if pool.wants_more():
                    if loop.time() - short < REFILL:
                        skipped = True  # claimed short a moment ago: let rows gather
                    else:
                        got = await pool.fill()
                        again = again or got > 0
                        short = loop.time() if got < pool.batch else -REFILL
            except sa.exc.SQLAlchemyError:
                log.exception("sender: database error; retrying")
                await _wait(asyncio.Event(), poll)
                continue
            pool.spawn()
            if again:
                continue
            wait = FLUSH_EVERY if pool.in_flight else poll
            if skipped:  # a claim is due once the moment is over
                wait = min(wait, max(0.0, short + REFILL - loop.time()))
            await _wait(wake, wait)
    finally:
        await pool.close()
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            await pool.flush()  # what was sent is recorded, what was not goes back
        log.info(
            "sender: %d sent over %d connection(s), %.1f s waited for commits",
            pool.stats.sent,
            pool.stats.connections_opened,
            pool.commits.waited,
        )
