"""Group commit into the spool: concurrent SMTP sessions share one transaction (one
fsync), and each gets its 250 only after that transaction committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa

from ..store import spool

MAX_GROUP = 128

Item = tuple[bytes, str, list[str], str, str | None]
"""(raw, mail_from, rcpts, source, client address): as spool.put_many takes it."""


class SpoolWriter:
    def __init__(self, engine: sa.Engine, on_stored: Callable[[], None]) -> None:
        self._engine = engine
        self._on_stored = on_stored
        self._pending: asyncio.Queue[tuple[Item, asyncio.Future[int]]] = asyncio.Queue()

    def store_for(
        self, source: str
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
            live = [(item, fut) for item, fut in group if not fut.cancelled()]
            if not live:
                continue
            try:
                ids = await asyncio.to_thread(spool.put_many, self._engine, [i for i, _ in live])
            except Exception as exc:  # every waiter answers 451; nothing was committed
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), spool_id in zip(live, ids, strict=True):
                if not fut.done():
                    fut.set_result(spool_id)
            self._on_stored()
