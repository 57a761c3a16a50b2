"""Chains: the messages one connection sends per write cycle (client.py), their shared
bodies dot-stuffed once per message, and what their replies mean for each row.

A connection hands each chain's results to the next flush (commits.py) and sends the
following chain meanwhile, so a crash can repeat at most `UNRECORDED_CHAINS` chains per
connection: `repeat_bound` (design.md: at most the in-flight batch is repeated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..store import queue
from ..store.states import QueueState
from .client import Connection, Outgoing, stuff

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
Retry = Callable[[queue.Claimed, str], queue.Result]


@dataclass
class Stats:
    connections_opened: int = 0
    sent: int = 0


class Chains:
    """Sends chains of claimed rows; keeps the bodies of the posts being delivered."""

    def __init__(self, classify: Classify, retry: Retry, stats: Stats) -> None:
        self.classify = classify
        self.retry = retry
        self.stats = stats
        self.bodies: dict[int, bytes] = {}
        """The claims fill this: each post's body fetched once, not once per row."""
        self._stuffed: dict[int, tuple[bytes, bool]] = {}

    def keep_only(self, message_ids: Iterable[int]) -> None:
        """Drop old posts' bodies once there are many: the next claim refetches them."""
        if len(self.bodies) > 64:
            keep = set(message_ids)
            self.bodies = {k: v for k, v in self.bodies.items() if k in keep}
            self._stuffed = {k: v for k, v in self._stuffed.items() if k in keep}

    async def send(self, conn: Connection, rows: list[queue.Claimed]) -> list[queue.Result]:
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
