"""Limits kept for the service as a whole when several daemons share one PostgreSQL
database (issue 16 item 1): the overall cap (`delivery.messages_per_second`), each
limited domain's messages per minute and its concurrent connections. Per-process
buckets multiplied every limit by the number of daemons, and a carrier that sees twice
the rate it asked for blocks the city's sending IP for hours.

The design, and why:

- **Rates: grants of send times, GCRA-style.** Each shared bucket is one row
  (`rate_grants`: its next free send time, in the database's clock). A daemon that needs
  to send takes the next `LEASE_SPAN` seconds of it in one statement — for a rate r that
  is `max(1, r·LEASE_SPAN)` send times, 1/r apart, starting where the last grant of any
  daemon ended (or now, when the bucket was idle: nothing is saved up). So the grants of
  all daemons together never exceed the rate, whatever their number; one round trip
  buys a batch of messages (2 at 25/s, 200 at 2,000/s), not one per message. A daemon
  asks only while it has a message waiting, so it wastes little; a daemon that dies
  leaves at most two grants unused (the one it sends from and the next it booked:
  under the cap, never over), and the others' grants follow them: its share is back
  within 2 × LEASE_SPAN. A message takes a time from its domain's bucket, then one
  from the overall bucket (pool.py), so both limits hold at once. A reload that
  changes a rate makes new buckets (lanes.py, pool.py); the next grant is at the new
  rate, while the row, the shared state, stays.
- **Connections: leases of a domain lane's slots.** A limited domain allowing c
  connections has slots 0…c-1 (`lane_leases`); a connection takes a free slot before it
  opens and gives it back when it closes. A lease lasts `store.leases.LEASE` (10 s) and
  the sender's heartbeat renews its own every 2 s, so a killed daemon's slots are free
  again within the lease. A daemon takes at most its fair share, the slots over the
  live daemons rounded up: one holding every slot would, once killed, stall the domain
  for a whole lease. A daemon that finds no slot for it waits BLOCKED_FOR before trying
  again; its rows wait in memory within the lane's horizon (pool.py). The cost: with
  idle daemons alive, an active one may use fewer connections than the domain allows;
  at a carrier's pace one pipelining connection is more than enough.
- **Not shared:** recipients per connection (a property of one connection) and the
  service-wide `delivery.connections` (each daemon's own concurrency to its smarthost).
- **No advisory locks.** A session advisory lock would be released by a dead daemon's
  broken connection at once, but it pins a pooled database connection per SMTP
  connection; a row lock held for one statement pins nothing.

SQLite has one daemon per file: there `LOCAL` keeps the limits in process, as before,
with no database work on the hot path. Cost on PostgreSQL: one grant statement per
LEASE_SPAN of sending per bucket, and two statements per connection of a limited domain
(bench/shared_limits.py, paired runs: no cost above the machine's noise).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import sqlalchemy as sa

from ..store import leases
from ..store.queue import WORKER_ID
from .pacing import Bucket, TokenBucket

log = logging.getLogger(__name__)

LEASE_SPAN = 0.1
"""Seconds of a shared bucket's send times one grant takes: long enough that a grant
buys hundreds of messages at full speed (ten round trips a second per busy bucket),
short enough that a dead daemon's unused share is small (it may hold two grants: the
one it sends and the next; 0.2 s lost 10 messages at 25/s in tests/outbound/test_sharing.py)."""

BLOCKED_FOR = 0.5
"""Seconds a lane waits when the other daemons hold all its connection slots."""

RETRY = 1.0
"""Seconds before a grant is asked again after a database error (no grant, no send)."""


class SharedBucket:
    """A rate shared by every daemon of the database: send times granted in batches."""

    def __init__(self, engine: sa.Engine, key: str, rate: float) -> None:
        self.engine = engine
        self.key = key
        self.rate = rate
        self.batch = max(1, round(rate * LEASE_SPAN))
        self._times: deque[float] = deque()
        """Granted send times not yet used, on the event loop's clock."""
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:  # one grant asked at a time; waiters take times in order
            while not self._times:
                await self._grant(loop)
            at = self._times.popleft()
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing, not synchronisation: the granted time

    async def _grant(self, loop: asyncio.AbstractEventLoop) -> None:
        span = self.batch / self.rate
        try:
            start = await asyncio.to_thread(leases.grant, self.engine, self.key, span)
        except sa.exc.SQLAlchemyError as exc:
            # without a grant nothing goes out: over the limit is what gets us blocked
            log.warning("sender: no rate grant for %s (%s); retrying", self.key or "*", exc)
            await asyncio.sleep(RETRY)
            return
        first = loop.time() + start
        self._times.extend(first + i / self.rate for i in range(self.batch))

    def backlog_seconds(self, pending: int) -> float:
        return pending / self.rate


class Sharing:
    """The limits of one daemon alone: buckets in process, every connection slot free."""

    def bucket(self, key: str, rate: float, burst: float) -> Bucket:
        return TokenBucket(rate, burst)

    async def acquire(self, key: str, slots: int) -> int | None:
        """A connection slot of lane `key` (of `slots`), or None if all are held."""
        return 0

    async def release(self, key: str, slot: int) -> None:
        """Give a slot back."""

    async def renew(self) -> None:
        """Keep this daemon's slots (the heartbeat)."""


LOCAL = Sharing()


class Shared(Sharing):
    """The limits of every daemon of one PostgreSQL database, kept in it."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def bucket(self, key: str, rate: float, burst: float) -> Bucket:
        return SharedBucket(self.engine, key, rate)

    async def acquire(self, key: str, slots: int) -> int | None:
        try:
            return await asyncio.to_thread(leases.acquire, self.engine, key, slots, WORKER_ID)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("sender: no connection lease for %s (%s)", key, exc)
            return None

    async def release(self, key: str, slot: int) -> None:
        try:
            await asyncio.to_thread(leases.release, self.engine, key, slot, WORKER_ID)
        except sa.exc.SQLAlchemyError as exc:
            # the lease runs out by itself within store.leases.LEASE
            log.warning("sender: connection lease for %s not given back (%s)", key, exc)

    async def renew(self) -> None:
        await asyncio.to_thread(leases.renew, self.engine, WORKER_ID)


def for_engine(engine: sa.Engine) -> Sharing:
    """Shared limits where several daemons may share the database (not SQLite)."""
    return LOCAL if engine.dialect.name == "sqlite" else Shared(engine)
