"""Lanes: claimed rows sorted by destination domain, each lane with its own limit, pace
and connections (pacing.py), so a throttled domain never blocks the others."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from ..store import queue
from .pacing import DEFAULT, Limit, Limits, TokenBucket


@dataclass
class Lane:
    limit: Limit
    rows: deque[queue.Claimed] = field(default_factory=deque)
    bucket: TokenBucket | None = None
    connections: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)


class Lanes(dict[str, Lane]):
    """The lanes by key (pacing.Limits.lane_of), made as rows arrive for them."""

    def lane(self, key: str, limits: Limits) -> Lane:
        lane = self.get(key)
        if lane is None:
            limit = limits.limit(key)
            bucket = TokenBucket(limit.per_second) if limit.per_second else None
            lane = self[key] = Lane(limit, bucket=bucket)
        return lane

    def reconfigure(self, limits: Limits) -> None:
        """New limits from a reloaded registry; rows already in lanes stay."""
        for key, lane in self.items():
            lane.limit = limits.limit(key) if limits.has(key) else limits.limit("")
            rate = lane.limit.per_second
            lane.bucket = TokenBucket(rate) if rate else None

    def take_all(self) -> list[queue.Claimed]:
        """Every row waiting in a lane, taken out (to go back to the queue untried)."""
        untried = [r for lane in self.values() for r in lane.rows]
        for lane in self.values():
            lane.rows.clear()
        return untried

    def limited_first(self) -> list[Lane]:
        """Limited lanes first: they need few connections, and must not wait for the
        default lane's long-lived ones to go idle."""
        return sorted(self.values(), key=lambda ln: ln.limit.key == DEFAULT)

    def starved(self, besides: Lane) -> bool:
        """Another lane has rows and no connection."""
        return any(ln.rows and ln.connections == 0 for ln in self.values() if ln is not besides)
