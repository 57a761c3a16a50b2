"""The delivery pool: claimed rows sorted into lanes by destination domain, each lane
served by its own reused SMTP connections at its own pace.

The dispatcher claims rows in large batches. A connection sends one chain of at most
CHAIN messages at a time and hands each chain's results to the next flush; it sends the
following chain while that flush commits, but waits for it before handing over the
chain after. The flushes are group commits (one transaction for every chain whose replies
arrived meanwhile, never one per recipient), and a crash can repeat only what was
delivered and not yet committed: at most two chains per connection, `chains.repeat_bound`
(design.md: at most the in-flight batch is repeated; what is in flight is the
connections' chains, not the claim batch). Rows of a throttled domain beyond what
its pace sends soon go back to the queue with a later `next_try` instead of waiting in
memory, so they neither block other domains nor hold claims a dead daemon would strand.

Here the claiming and the connections; `lanes.py` the lanes, `chains.py` what one
connection sends, `commits.py` the group commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

import sqlalchemy as sa

from ..clock import utcnow
from ..store import queue
from ..store.states import MessageKind
from .chains import CHAIN, Chains, Classify, Retry, Stats
from .client import Connection, SMTPError
from .commits import GroupCommit, OnSettle, OnSettled
from .lanes import Lane, Lanes
from .pacing import DEFAULT, OVERALL, Bucket, Limits
from .sharing import BLOCKED_FOR, LOCAL, Sharing

log = logging.getLogger(__name__)

PACED_CHAIN = 0.01
"""Seconds of the overall cap one chain may take at once: a burst of at most that much
(16 messages at 2,000/s), while a cap of a hundred or less still goes one by one."""

Sendable = Callable[[], frozenset[MessageKind] | None]
"""The kinds of mail that may go out now; None for all (an outage holds the rest, 第9条)."""


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
        on_settled: OnSettled | None = None,
        sendable: Sendable = lambda: None,
        sharing: Sharing = LOCAL,
    ) -> None:
        self.sharing = sharing
        """Where the limits are kept: in this process, or shared by the daemons."""
        self.claims = queue.Claims(engine)
        self.sendable = sendable
        self._kinds: frozenset[MessageKind] | None = None
        """What `sendable` said last; a change to a hold sends the lanes' rows back."""
        self._closing = False
        self.limits = limits
        self.smarthost = smarthost
        self.retry = retry
        self.batch = batch
        self.timeout = timeout
        self.idle = idle
        self.horizon = horizon
        """Seconds of a throttled lane's pace kept in memory; the rest goes back."""
        self.global_bucket = self._overall(rate)
        self.lanes = Lanes(sharing.bucket)
        self.in_flight = 0
        """Rows claimed and not yet settled."""
        self.total_connections = 0
        self.stats = Stats()
        self.chains = Chains(classify, retry, self.stats)
        self._tasks: set[asyncio.Task[None]] = set()
        self.changed = changed or asyncio.Event()
        """Set when results wait to be written or a connection ended."""
        self.commits = GroupCommit(engine, self.changed, on_settle, on_settled)

    def _overall(self, rate: float | None) -> Bucket | None:
        return self.sharing.bucket(OVERALL, rate, rate / 10) if rate else None

    def reconfigure(self, limits: Limits) -> None:
        """New limits from a reloaded registry, in force at once (the overall cap too:
        issue 16 found a raised cap still sending at the old one); rows already in lanes
        stay."""
        if limits.delivery.messages_per_second != self.limits.delivery.messages_per_second:
            self.global_bucket = self._overall(limits.delivery.messages_per_second)
        self.limits = limits
        self.lanes.reconfigure(limits)

    # -- claiming ----------------------------------------------------------------------

    def wants_more(self) -> bool:
        return self.in_flight < self.batch

    def check_hold(self) -> None:
        """When an outage starts (第9条), rows waiting in the lanes go back to the queue
        untried: the next claims take only the kinds that may go out. Chains already
        being sent finish."""
        kinds = self.sendable()
        if kinds is not None and kinds != self._kinds:
            untried = self.lanes.take_all()
            if untried:
                log.info("sender: %d row(s) back to the queue for the outage", len(untried))
                self.done([queue.Result.untried(r.id) for r in untried])
        self._kinds = kinds

    async def fill(self) -> int:
        """Claim one batch and sort it into lanes; returns the rows claimed."""
        # through `claims`: a claim the database committed but whose answer the broken
        # connection lost is released before the next one, not stranded as `sending`
        rows = await asyncio.to_thread(
            self.claims.claim, self.batch, self.chains.bodies, kinds=self._kinds
        )
        if not rows:
            return 0
        self.chains.keep_only(r.message_id for r in rows)
        self.in_flight += len(rows)
        back: list[queue.Result] = []
        now = utcnow()
        for row in rows:
            lane = self.lanes.lane(self.limits.lane_of(row.rcpt), self.limits)
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

    # -- connections -------------------------------------------------------------------

    def spawn(self) -> None:
        """Open connections where rows wait, within each lane's and the overall limit."""
        overall = self.limits.delivery.connections
        now = asyncio.get_running_loop().time()
        for lane in self.lanes.limited_first():
            while (
                lane.blocked_until <= now
                and lane.rows
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
        key = lane.limit.key
        slot: int | None = None
        try:
            if key != DEFAULT:
                # the domain's connections are counted for the service as a whole
                slot = await self.sharing.acquire(key, lane.limit.connections)
                if slot is None:
                    lane.blocked_until = asyncio.get_running_loop().time() + BLOCKED_FOR
                    return
            await self._serve(lane)
        finally:
            try:
                if slot is not None:
                    await self.sharing.release(key, slot)
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
                take = self._chain(lane)
                if per is not None:
                    take = min(take, per - used)
                await self._pace(lane, min(take, len(lane.rows)))
                if not lane.rows:
                    continue
                rows = [lane.rows.popleft() for _ in range(min(take, len(lane.rows)))]
                used += len(rows)
                try:
                    results = await self.chains.send(conn, rows)
                except Exception:
                    # a bug must not strand the rows as `sending` and stall the pool
                    log.exception("sender: unexpected error on a chain of %d", len(rows))
                    conn.close()
                    results = [self.retry(row, "internal error") for row in rows]
                # the previous chain must be on disk before this one is handed over:
                # what a crash repeats is at most two chains per connection
                if written is not None:
                    await self.commits.wait_written(written)
                written = self.commits.record(results)
                if not conn.usable or self._yield_slot(lane):
                    break
        finally:
            await conn.quit()
            if written is not None:
                # the slot is free for a new connection only once this one's chains
                # are on disk, or the bound would grow with each reconnection
                await self.commits.wait_written(written)

    def _yield_slot(self, lane: Lane) -> bool:
        """A default-lane connection gives its slot up when a limited lane waits for one."""
        if lane.limit.key != DEFAULT or lane.connections <= 1:
            return False
        if self.total_connections < self.limits.delivery.connections:
            return False
        return self.lanes.starved(lane)

    def _chain(self, lane: Lane) -> int:
        """Messages per write cycle (client.py): a chain where nothing paces the lane; one
        at a time at a domain's pace (a carrier counts every message); under the overall
        cap alone, what it sends in PACED_CHAIN seconds (a message at a time held a
        2,000/s cap to a few hundred, bench/shared_limits.py)."""
        if lane.bucket is not None:
            return 1
        if self.global_bucket is None:
            return CHAIN
        return max(1, min(CHAIN, int(self.global_bucket.rate * PACED_CHAIN)))

    async def _pace(self, lane: Lane, messages: int) -> None:
        # the lane's pace first, then the overall one: a send time granted by the
        # overall bucket is used when granted, not wasted waiting for the carrier's
        for bucket in (lane.bucket, self.global_bucket):
            if bucket is not None:
                for _ in range(messages):
                    await bucket.wait()

    # -- results -----------------------------------------------------------------------

    def done(self, results: list[queue.Result]) -> None:
        """Results of rows no connection sent (sent back, or failed to connect)."""
        pending = self.commits.results
        pending.extend(results)
        if len(pending) >= self.batch // 2 or self.in_flight <= len(pending):
            self.changed.set()

    @property
    def pending(self) -> int:
        """Results waiting to be written."""
        return len(self.commits.results)

    @property
    def waiting(self) -> bool:
        """A flush is due now (commits.GroupCommit.due)."""
        return self.commits.due(self.total_connections)

    async def flush(self) -> None:
        """Write the collected results in one transaction."""
        self.in_flight -= await self.commits.flush()

    async def close(self, grace: float = 10.0) -> None:
        """Stop the connections; rows not yet tried go back to the queue untried.

        A chain already written to the smarthost is let finish for up to `grace` seconds,
        so its replies are read and recorded: cut off, those messages would arrive but
        count as unsent, and go out again after the restart (第8条: a graceful stop
        repeats nothing it can avoid)."""
        self._closing = True
        self.commits.close()  # the waiting chains' results go out with the last flush
        untried = self.lanes.take_all()
        for lane in self.lanes.values():
            lane.more.set()  # an idle connection: nothing more is coming
        self.commits.results += [queue.Result.untried(r.id) for r in untried]
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
