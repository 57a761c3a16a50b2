"""The delivery pool: claimed rows sorted into lanes by destination domain, each lane
served by its own reused SMTP connections at its own pace.

The dispatcher claims rows in large batches. A connection sends one chain of at most
CHAIN messages at a time and hands each chain's results to the next flush; it sends the
following chain while that flush commits, but waits for it before handing over the
chain after. The flushes are group commits (one transaction for every chain whose replies
arrived meanwhile, never one per recipient), and a crash can repeat only what was
delivered and not yet committed: at most two chains per connection, `repeat_bound`
(design.md: at most the in-flight batch is repeated; what is in flight is the
connections' chains, not the claim batch). Rows of a throttled domain beyond what
its pace sends soon go back to the queue with a later `next_try` instead of waiting in
memory, so they neither block other domains nor hold claims a dead daemon would strand.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..clock import utcnow
from ..store import queue
from ..store.states import MessageKind, QueueState
from .client import Connection, Outgoing, SMTPError, stuff
from .pacing import DEFAULT, Limit, Limits, TokenBucket

log = logging.getLogger(__name__)

CHAIN = 16
"""Messages one connection takes from an unpaced lane at a time."""

UNRECORDED_CHAINS = 2
"""Chains per connection that may be delivered and not yet committed: the one whose
results are being written, and the one being sent meanwhile."""


def repeat_bound(connections: int) -> int:
    """The most messages one SIGKILL can make go out twice: per connection, the chains
    the smarthost took (or was taking) whose results were not yet committed."""
    return connections * UNRECORDED_CHAINS * CHAIN


Classify = Callable[[queue.Claimed, int, str], queue.Result]
OnSettle = Callable[[list[queue.Result]], Callable[[sa.Connection], None] | None]
"""Given the results about to be written, what to run in the same transaction."""
Retry = Callable[[queue.Claimed, str], queue.Result]
Sendable = Callable[[], frozenset[MessageKind] | None]
"""The kinds of mail that may go out now; None for all (an outage holds the rest, 第9条)."""


@dataclass
class Lane:
    limit: Limit
    rows: deque[queue.Claimed] = field(default_factory=deque)
    bucket: TokenBucket | None = None
    connections: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Stats:
    connections_opened: int = 0
    sent: int = 0


class Pool:
    """One sender's lanes, connections and pending results."""

    def __init__(
        self,
        engine: sa.Engine,
        limits: Limits,
        smarthost: tuple[str, int],
        *,
        classify: Classify,
        retry: Retry,
        batch: int = 500,
        timeout: float = 30.0,
        idle: float = 5.0,
        rate: float | None = None,
        horizon: float = 30.0,
        changed: asyncio.Event | None = None,
        on_settle: OnSettle | None = None,
        on_settled: Callable[[list[queue.Result]], None] | None = None,
        sendable: Sendable = lambda: None,
    ) -> None:
        self.engine = engine
        self.claims = queue.Claims(engine)
        self.sendable = sendable
        self._kinds: frozenset[MessageKind] | None = None
        """What `sendable` said last; a change to a hold sends the lanes' rows back."""
        self.on_settle = on_settle
        self.on_settled = on_settled
        """Told which results were written, after their transaction committed (a failed
        write is tried again, and `on_settle` asked again for it)."""
        self._closing = False
        self.limits = limits
        self.smarthost = smarthost
        self.classify = classify
        self.retry = retry
        self.batch = batch
        self.timeout = timeout
        self.idle = idle
        self.horizon = horizon
        """Seconds of a throttled lane's pace kept in memory; the rest goes back."""
        self.global_bucket = TokenBucket(rate, burst=rate / 10) if rate else None
        self.lanes: dict[str, Lane] = {}
        self.results: list[queue.Result] = []
        self.in_flight = 0
        """Rows claimed and not yet settled."""
        self.total_connections = 0
        self.stats = Stats()
        self.bodies: dict[int, bytes] = {}
        self._stuffed: dict[int, tuple[bytes, bool]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._blocked = 0
        """Connections that cannot hand over their next chain until a flush commits."""
        """Connections waiting for their chain's results to be committed."""
        self._settling = asyncio.Lock()
        self.changed = changed or asyncio.Event()
        """Set when results wait to be written or a connection ended."""

    def reconfigure(self, limits: Limits) -> None:
        """New limits from a reloaded registry; rows already in lanes stay."""
        self.limits = limits
        for key, lane in self.lanes.items():
            lane.limit = limits.limit(key) if limits.has(key) else limits.limit("")
            rate = lane.limit.per_second
            lane.bucket = TokenBucket(rate) if rate else None

    # -- claiming ----------------------------------------------------------------------

    def wants_more(self) -> bool:
        return self.in_flight < self.batch

    def check_hold(self) -> None:
        """When an outage starts (第9条), rows waiting in the lanes go back to the queue
        untried: the next claims take only the kinds that may go out. Chains already
        being sent finish."""
        kinds = self.sendable()
        if kinds is not None and kinds != self._kinds:
            untried = [r for lane in self.lanes.values() for r in lane.rows]
            for lane in self.lanes.values():
                lane.rows.clear()
            if untried:
                log.info("sender: %d row(s) back to the queue for the outage", len(untried))
                self.done([queue.Result.untried(r.id) for r in untried])
        self._kinds = kinds

    async def fill(self) -> int:
        """Claim one batch and sort it into lanes; returns the rows claimed."""
        # through `claims`: a claim the database committed but whose answer the broken
        # connection lost is released before the next one, not stranded as `sending`
        rows = await asyncio.to_thread(
            self.claims.claim, self.batch, self.bodies, kinds=self._kinds
        )
        if not rows:
            return 0
        if len(self.bodies) > 64:  # old posts' bodies: drop them, the next claim refetches
            keep = {r.message_id for r in rows}
            self.bodies = {k: v for k, v in self.bodies.items() if k in keep}
            self._stuffed = {k: v for k, v in self._stuffed.items() if k in keep}
        self.in_flight += len(rows)
        back: list[queue.Result] = []
        now = utcnow()
        for row in rows:
            lane = self._lane(self.limits.lane_of(row.rcpt))
            if lane.bucket is not None:
                # keep only what this lane's pace sends within the horizon
                wait = lane.bucket.backlog_seconds(len(lane.rows))
                if wait > self.horizon:
                    later = now + dt.timedelta(seconds=wait)
                    back.append(queue.Result.untried(row.id, later))
                    continue
            lane.rows.append(row)
        for lane in self.lanes.values():
            if lane.rows:
                lane.more.set()
        if back:
            self.done(back)
        self.spawn()
        return len(rows)

    def _lane(self, key: str) -> Lane:
        lane = self.lanes.get(key)
        if lane is None:
            limit = self.limits.limit(key)
            bucket = TokenBucket(limit.per_second) if limit.per_second else None
            lane = self.lanes[key] = Lane(limit, bucket=bucket)
        return lane

    # -- connections -------------------------------------------------------------------

    def spawn(self) -> None:
        """Open connections where rows wait, within each lane's and the overall limit."""
        overall = self.limits.delivery.connections
        # limited lanes first: they need few connections, and must not wait for the
        # default lane's long-lived ones to go idle
        for lane in sorted(self.lanes.values(), key=lambda ln: ln.limit.key == DEFAULT):
            while (
                lane.rows
                and lane.connections < lane.limit.connections
                and lane.connections < len(lane.rows)
                and self.total_connections < overall
            ):
                lane.connections += 1
                self.total_connections += 1
                task = asyncio.create_task(self._connection(lane))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _connection(self, lane: Lane) -> None:
        try:
            await self._serve(lane)
        finally:
            lane.connections -= 1
            self.total_connections -= 1
            self.changed.set()

    async def _serve(self, lane: Lane) -> None:
        host, port = self.smarthost
        try:
            conn = await Connection.open(host, port, timeout=self.timeout)
        except (SMTPError, OSError, TimeoutError) as exc:
            # the smarthost is unreachable: everything waiting for it is retried later
            failed = list(lane.rows)
            lane.rows.clear()
            self.done([self.retry(r, f"connect: {exc}") for r in failed])
            return
        self.stats.connections_opened += 1
        per = lane.limit.per_connection
        used = 0  # recipients tried on this connection, delivered or not
        written: asyncio.Future[None] | None = None  # the last chain's flush
        try:
            while (per is None or used < per) and not self._closing:
                if not lane.rows:
                    lane.more.clear()
                    try:
                        async with asyncio.timeout(self.idle):
                            await lane.more.wait()
                    except TimeoutError:
                        break
                    continue
                await self._pace(lane)
                if not lane.rows:
                    continue
                # an unpaced lane sends a chain of messages per write cycle (client.py)
                take = CHAIN if lane.bucket is None and self.global_bucket is None else 1
                if per is not None:
                    take = min(take, per - used)
                rows = [lane.rows.popleft() for _ in range(min(take, len(lane.rows)))]
                used += len(rows)
                try:
                    results = await self._send(conn, rows)
                except Exception:
                    # a bug must not strand the rows as `sending` and stall the pool
                    log.exception("sender: unexpected error on a chain of %d", len(rows))
                    conn.close()
                    results = [self.retry(row, "internal error") for row in rows]
                # the previous chain must be on disk before this one is handed over:
                # what a crash repeats is at most two chains per connection
                if written is not None:
                    await self._wait_written(written)
                written = self.record(results)
                if not conn.usable or self._yield_slot(lane):
                    break
        finally:
            await conn.quit()
            if written is not None:
                # the slot is free for a new connection only once this one's chains
                # are on disk, or the bound would grow with each reconnection
                await self._wait_written(written)

    def _yield_slot(self, lane: Lane) -> bool:
        """A default-lane connection gives its slot up when a limited lane waits for one."""
        if lane.limit.key != DEFAULT or lane.connections <= 1:
            return False
        if self.total_connections < self.limits.delivery.connections:
            return False
        return any(ln.rows and ln.connections == 0 for ln in self.lanes.values() if ln is not lane)

    async def _pace(self, lane: Lane) -> None:
        delays = [b.delay() for b in (lane.bucket, self.global_bucket) if b is not None]
        wait = max(delays, default=0.0)
        if wait > 0:
            await asyncio.sleep(wait)  # pacing, not synchronisation: the carrier's rate

    async def _send(self, conn: Connection, rows: list[queue.Claimed]) -> list[queue.Result]:
        outgoing = []
        for row in rows:
            body, eightbit = self._body(row)
            head = row.headers or b""
            if head.startswith(b".") or b"\n." in head:
                head = stuff(head)
            outgoing.append(Outgoing(row.mail_from, row.rcpt, head + body, eightbit))
        replies = await conn.send_many(outgoing)
        results = []
        for row, reply in zip(rows, replies, strict=True):
            if reply is None:
                # the session broke: whether this one arrived is unknown, so it is retried
                results.append(self.retry(row, "connection lost"))
            elif reply.ok:
                self.stats.sent += 1
                results.append(queue.Result(row.id, QueueState.SENT))
            else:
                results.append(self.classify(row, reply.code, reply.text))
        return results

    def _body(self, row: queue.Claimed) -> tuple[bytes, bool]:
        """The shared body, dot-stuffed once per message, and whether it is 8-bit."""
        got = self._stuffed.get(row.message_id)
        if got is None or row.message_id == 0:
            got = (stuff(row.raw), not row.raw.isascii())
            if row.message_id:
                self._stuffed[row.message_id] = got
        return got

    # -- results -----------------------------------------------------------------------

    def done(self, results: list[queue.Result]) -> None:
        self.results.extend(results)
        if len(self.results) >= self.batch // 2 or self.in_flight <= len(self.results):
            self.changed.set()

    def record(self, results: list[queue.Result]) -> asyncio.Future[None]:
        """Hand a chain's results to the next flush; the future is done once it has
        committed them. While the pool closes it is done at once: the last flush
        (sender.py) writes them."""
        self.results.extend(results)
        self.changed.set()
        waiter = asyncio.get_running_loop().create_future()
        if self._closing:
            waiter.set_result(None)
        else:
            self._waiters.append(waiter)
        return waiter

    async def _wait_written(self, written: asyncio.Future[None]) -> None:
        if written.done():
            return
        self._blocked += 1
        self.changed.set()  # the sender loop flushes now (`waiting`)
        try:
            await written
        finally:
            self._blocked -= 1

    @property
    def waiting(self) -> bool:
        """A flush is due now: a connection is blocked on one, or every connection has
        handed over a chain (one transaction for all of them: a group commit)."""
        return self._blocked > 0 or (
            bool(self._waiters) and len(self._waiters) >= self.total_connections
        )

    async def flush(self) -> None:
        """Write the collected results in one transaction."""
        async with self._settling:
            if not self.results:
                return
            # results and waiters are taken together: every waiter's chain is in `results`
            results, self.results = self.results, []
            waiters, self._waiters = self._waiters, []
            then = self.on_settle(results) if self.on_settle else None
            try:
                await asyncio.to_thread(queue.settle, self.engine, results, then)
            except BaseException:
                self.results = results + self.results  # kept for the next flush
                self._waiters = waiters + self._waiters
                raise
            if self.on_settled is not None:
                self.on_settled(results)
            self.in_flight -= len(results)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for r in results:
                if r.state not in (QueueState.SENT, QueueState.QUEUED) or r.error:
                    # the reply may quote an address: the log filter marks it (redact.py)
                    log.info("outbound#%d: %s (%s)", r.id, r.state, r.error or "")

    async def close(self, grace: float = 10.0) -> None:
        """Stop the connections; rows not yet tried go back to the queue untried.

        A chain already written to the smarthost is let finish for up to `grace` seconds,
        so its replies are read and recorded: cut off, those messages would arrive but
        count as unsent, and go out again after the restart (第8条: a graceful stop
        repeats nothing it can avoid)."""
        self._closing = True
        for waiter in self._waiters:  # their results go out with the last flush
            if not waiter.done():
                waiter.set_result(None)
        self._waiters = []
        untried = [r for lane in self.lanes.values() for r in lane.rows]
        for lane in self.lanes.values():
            lane.rows.clear()
            lane.more.set()  # an idle connection: nothing more is coming
        self.results += [queue.Result.untried(r.id) for r in untried]
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def idle_now(self) -> bool:
        return self.in_flight == 0
