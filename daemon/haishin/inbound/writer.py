"""Group commit into the spool: concurrent SMTP sessions share one transaction (one
fsync), and each gets its 250 only after that transaction committed.

One session's bad row must not fail the others that share its transaction (issue 11,
item 2): when a group's commit fails, nothing of it was stored, and each row is stored
again in a transaction of its own, so only the row that fails alone is refused. A row
that can never be stored (`spool.permanent`) is refused as `spool.Unstorable` (the front
end answers 554); any other failure keeps its exception (451, the client retries).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from ..store import spool
from ..store.states import Intake

log = logging.getLogger(__name__)

MAX_GROUP = 128

Item = tuple[bytes, str, list[str], str, str | None]
"""(raw, mail_from, rcpts, source, client address): as spool.put_many takes it."""

Stored = int | BaseException
"""A row's id, or why it was not stored."""


GIVE_UP_AFTER = 2
"""Temporary failures of consecutive rows that mean the database itself is failing (down,
unreachable, full), not a row: the rest of the group then gets 451 untried, rather than
one connection attempt (and its time-out) per row while every session waits."""


def _one_by_one(engine: sa.Engine, items: Sequence[Item]) -> list[Stored]:
    """Each row in its own transaction (runs in a thread); never raises."""
    results: list[Stored] = []
    failing: BaseException | None = None
    in_a_row = 0
    for item in items:
        if failing is not None:
            results.append(failing)
            continue
        try:
            results.append(spool.put_many(engine, [item])[0])
            in_a_row = 0
        except Exception as exc:
            results.append(exc)
            in_a_row = 0 if spool.permanent(exc) else in_a_row + 1
            if in_a_row >= GIVE_UP_AFTER:
                failing = exc
    return results


def _as_answer(exc: BaseException) -> BaseException:
    if isinstance(exc, spool.Unstorable) or not spool.permanent(exc):
        return exc
    # the database's own words may quote the row: the client gets ours
    refused = spool.Unstorable("the database refuses this message's data")
    refused.__cause__ = exc
    return refused


class SpoolWriter:
    def __init__(self, engine: sa.Engine, on_stored: Callable[[], None]) -> None:
        self._engine = engine
        self._on_stored = on_stored
        self._pending: asyncio.Queue[tuple[Item, asyncio.Future[int]]] = asyncio.Queue()

    @property
    def backlog(self) -> int:
        """Messages waiting for the next group commit."""
        return self._pending.qsize()

    def store_for(
        self, source: Intake
    ) -> Callable[[bytes, str, list[str], str | None], asyncio.Future[int]]:
        def store(
            raw: bytes, mail_from: str, rcpts: list[str], client: str | None = None
        ) -> asyncio.Future[int]:
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending.put_nowait(((raw, mail_from, rcpts, source, client), future))
            return future

        return store

    async def run(self) -> None:
        while True:
            group = [await self._pending.get()]
            while not self._pending.empty() and len(group) < MAX_GROUP:
                group.append(self._pending.get_nowait())
            live = []
            for item, fut in group:
                if fut.cancelled():
                    continue
                # known to fail before it is tried: kept out of the group's transaction
                reason = spool.unstorable(item[1], item[2])
                if reason is not None:
                    fut.set_exception(spool.Unstorable(reason))
                else:
                    live.append((item, fut))
            if not live:
                continue
            items = [i for i, _ in live]
            results: Sequence[Stored]
            try:
                results = await asyncio.to_thread(spool.put_many, self._engine, items)
            except Exception as exc:  # nothing of the group was committed
                if len(items) == 1:
                    results = [exc]
                else:
                    log.warning(
                        "group commit of %d messages failed (%s); storing each alone",
                        len(items),
                        type(exc).__name__,
                    )
                    results = await asyncio.to_thread(_one_by_one, self._engine, items)
            stored = False
            for (_, fut), result in zip(live, results, strict=True):
                stored = stored or not isinstance(result, BaseException)
                if fut.done():  # the session went away meanwhile
                    continue
                if isinstance(result, BaseException):
                    fut.set_exception(_as_answer(result))
                else:
                    fut.set_result(result)
            if stored:
                self._on_stored()
