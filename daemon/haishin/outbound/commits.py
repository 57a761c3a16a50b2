"""Group commits: the results of every chain whose replies arrived meanwhile written in one
transaction, never one per recipient, and the connections that wait for theirs.

A connection may not hand over its next chain until its last one is on disk
(chains.UNRECORDED_CHAINS): it waits on the future `record` gives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa

from ..store import queue
from ..store.states import QueueState

log = logging.getLogger(__name__)

OnSettle = Callable[[list[queue.Result]], Callable[[sa.Connection], None] | None]
"""Given the results about to be written, what to run in the same transaction."""
OnSettled = Callable[[list[queue.Result]], None]


class GroupCommit:
    """Results waiting to be written, and the futures of the chains among them."""

    def __init__(
        self,
        engine: sa.Engine,
        changed: asyncio.Event,
        on_settle: OnSettle | None = None,
        on_settled: OnSettled | None = None,
    ) -> None:
        self.engine = engine
        self.changed = changed
        """Set when results wait to be written."""
        self.on_settle = on_settle
        self.on_settled = on_settled
        """Told which results were written, after their transaction committed (a failed
        write is tried again, and `on_settle` asked again for it)."""
        self.results: list[queue.Result] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._blocked = 0
        """Connections that cannot hand over their next chain until a flush commits."""
        self._settling = asyncio.Lock()
        self._closing = False
        self.waited = 0.0
        """Seconds connections spent waiting for their last chain to be on disk, added
        up: how much the group commits held the sending back (the sender logs it)."""

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

    async def wait_written(self, written: asyncio.Future[None]) -> None:
        if written.done():
            return
        self._blocked += 1
        self.changed.set()  # the sender loop flushes now (`due`)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await written
        finally:
            self._blocked -= 1
            self.waited += loop.time() - started

    def due(self, connections: int) -> bool:
        """A flush is due now: a connection is blocked on one, or every connection has
        handed over a chain (one transaction for all of them: a group commit)."""
        return self._blocked > 0 or (bool(self._waiters) and len(self._waiters) >= connections)

    async def flush(self) -> int:
        """Write the collected results in one transaction; returns how many were written."""
        async with self._settling:
            if not self.results:
                return 0
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
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for r in results:
                if r.state not in (QueueState.SENT, QueueState.QUEUED) or r.error:
                    # the reply may quote an address: the log filter marks it (redact.py)
                    log.info("outbound#%d: %s (%s)", r.id, r.state, r.error or "")
            return len(results)

    def close(self) -> None:
        """No connection waits any more: the chains recorded from now on, and those
        waiting, go out with the last flush."""
        self._closing = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters = []
