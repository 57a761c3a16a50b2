"""A counting smarthost for the fan-out tests: aiosmtpd in a thread that keeps, per
accepted message, only (connection, recipient, time) — 20,000 bodies need not be kept."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Delivery:
    connection: int
    rcpt: str
    at: float


@dataclass
class CountingSink:
    deliveries: list[Delivery] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    connections: int = 0
    port: int = 0
    pipelining: bool = True
    """Offer PIPELINING (RFC 2920); aiosmtpd reads commands in order, so it copes."""
    answers: dict[str, str] = field(default_factory=dict)
    """A recipient → the reply its RCPT gets instead of 250."""
    _ids: dict[Session, int] = field(default_factory=dict)
    """Sessions are kept (not their id()): a freed session's id() is reused."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.answers:
            return self.answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        conn = self._ids.setdefault(session, len(self._ids) + 1)
        now = time.monotonic()
        with self.cond:
            self.deliveries.extend(Delivery(conn, r, now) for r in envelope.rcpt_tos)
            self.cond.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 120.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"sink got {len(self.deliveries)}, expected {count}")

    def snapshot(self) -> list[Delivery]:
        with self.cond:
            return list(self.deliveries)

    def per_rcpt(self) -> Counter[str]:
        return Counter(d.rcpt for d in self.snapshot())


@contextmanager
def counting_sink(pipelining: bool = True) -> Iterator[CountingSink]:
    s = CountingSink(pipelining=pipelining)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    server: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        def make() -> SMTP:
            s.connections += 1
            return SMTP(s, hostname="sink", loop=loop)

        srv = loop.run_until_complete(loop.create_server(make, "127.0.0.1", 0))
        server["srv"] = srv
        s.port = srv.sockets[0].getsockname()[1]
        started.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait()
    try:
        yield s
    finally:
        loop.call_soon_threadsafe(server["srv"].close)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.run_until_complete(server["srv"].wait_closed())
        loop.close()
