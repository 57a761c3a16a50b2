"""Pacing: token buckets and the per-destination-domain limits they enforce.

Japanese carriers (docomo, au, SoftBank) ask bulk senders for few recipients per SMTP
session and a slow, steady rate; a burst gets the sending IP blocked for hours. Each
limited domain therefore has its own bucket, connection count and session length, while
every other domain shares the service-wide settings and goes at full speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..registry.model import Delivery

Clock = Callable[[], float]


class Bucket(Protocol):
    """A pace: this process's (TokenBucket) or the service's (sharing.SharedBucket)."""

    rate: float

    async def wait(self) -> None:
        """Until one more message may go out; the caller then sends it."""

    def backlog_seconds(self, pending: int) -> float:
        """How long `pending` more messages take at this rate."""
        ...


MakeBucket = Callable[[str, float, float], Bucket]
"""A bucket for a key (a lane's, or OVERALL), a rate and a burst (messages)."""

OVERALL = "*"
"""The key of the overall bucket (delivery.messages_per_second); no domain is `*`."""


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `delay()` takes one token and
    says how long to wait before using it, so callers queue up in order: a steady rate."""

    def __init__(self, rate: float, burst: float = 1.0, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def delay(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def wait(self) -> None:
        wait = self.delay()
        if wait > 0:
            await asyncio.sleep(wait)  # pacing, not synchronisation: the carrier's rate

    def backlog_seconds(self, pending: int) -> float:
        """How long `pending` more messages take at this rate."""
        return pending / self.rate


@dataclass(frozen=True)
class Limit:
    """The resolved limits of one lane (a limited domain, or everything else)."""

    key: str
    connections: int
    per_connection: int | None
    per_second: float | None


DEFAULT = ""
"""The lane of every domain without limits of its own."""


class Limits:
    """Maps a recipient's domain to its lane's limits. `scale` speeds the clock up for
    tests (a minute lasts 60/scale seconds); it is 1 in service."""

    def __init__(self, delivery: Delivery, scale: float = 1.0) -> None:
        self.delivery = delivery
        self._lanes: dict[str, Limit] = {
            DEFAULT: Limit(
                DEFAULT,
                delivery.connections,
                delivery.recipients_per_connection,
                None,
            )
        }
        for domain, d in delivery.domains.items():
            per_minute = d.messages_per_minute
            self._lanes[domain.lower()] = Limit(
                domain.lower(),
                min(d.connections or delivery.connections, delivery.connections),
                d.recipients_per_connection or delivery.recipients_per_connection,
                per_minute * scale / 60.0 if per_minute else None,
            )
        self._cache: dict[str, str] = {}

    def lane_of(self, rcpt: str) -> str:
        """The lane key for a recipient: its domain or a parent listed in `domains`."""
        domain = rcpt.rpartition("@")[2]
        key = self._cache.get(domain)
        if key is None:
            key = DEFAULT
            labels = domain.lower().split(".")
            for i in range(len(labels) - 1):
                candidate = ".".join(labels[i:])
                if candidate in self._lanes:
                    key = candidate
                    break
            if len(self._cache) < 100_000:  # bounded: domains are few, but not trusted
                self._cache[domain] = key
        return key

    def has(self, key: str) -> bool:
        return key in self._lanes

    def limit(self, key: str) -> Limit:
        return self._lanes[key]
