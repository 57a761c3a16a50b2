"""Lanes: claimed rows sorted by destination domain, each lane with its own limit, pace
and connections (pacing.py), so a throttled domain never blocks the others."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from ..store import queue
from .pacing import DEFAULT, Bucket, Limit, Limits, MakeBucket


@dataclass
class Lane:
    limit: Limit
    rows: deque[queue.Claimed] = field(default_factory=deque)
    bucket: Bucket | None = None
    connections: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)
    blocked_until: float = 0.0
    """Loop time before which no connection is tried: other daemons held every slot."""


class Lanes(dict[str, Lane]):
    """The lanes by key (pacing.Limits.lane_of), made as rows arrive for them; their
    buckets from `make` (this process's, or shared by the daemons: sharing.py)."""

    def __init__(self, make: MakeBucket) -> None:
        super().__init__()
        self.make = make

    def _bucket(self, limit: Limit) -> Bucket | None:
        return self.make(limit.key, limit.per_second, 1.0) if limit.per_second else None

    def lane(self, key: str, limits: Limits) -> Lane:
        lane = self.get(key)
        if lane is None:
            limit = limits.limit(key)
            lane = self[key] = Lane(limit, bucket=self._bucket(limit))
        return lane

    def reconfigure(self, limits: Limits) -> None:
        """New limits from a reloaded registry, in force at once; rows already in lanes
        stay."""
        for key, lane in self.items():
            limit = limits.limit(key) if limits.has(key) else limits.limit(DEFAULT)
            if limit != lane.limit:
                lane.limit = limit
                lane.bucket = self._bucket(limit)

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
