"""The one fake smarthost of the tests (Mailman's testing MTA): aiosmtpd on a port from
the OS, in a thread, keeping what it gets.

- `messages`: each accepted message with its envelope and bytes (`keep_bodies=False` for
  the fan-out tests, where 20,000 bodies need not be kept);
- `deliveries`: per accepted recipient, the connection it came on and when, so tests can
  count connections, duplicates and pacing;
- `answers`: a recipient -> the reply its RCPT gets instead of 250 (4xx, 5xx);
- `pipelining`: offer PIPELINING (RFC 2920; aiosmtpd reads commands in order);
- `delay`: seconds each DATA waits before its answer, a slow smarthost (a fan-out that
  lasts long enough to be watched).
- `sessions`: per connection that delivered, when it said EHLO and when it closed, so
  tests can count connections open at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from .statuscodes import OK

WAIT = 30.0


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    raw: bytes

    @property
    def msg(self) -> EmailMessage:
        m = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(m, EmailMessage)
        return m


@dataclass(frozen=True)
class Delivery:
    connection: int
    rcpt: str
    at: float


@dataclass
class Sink:
    keep_bodies: bool = True
    pipelining: bool = False
    delay: float = 0.0
    answers: dict[str, str] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    connections: int = 0
    port: int = 0
    sessions: dict[int, tuple[float, float | None]] = field(default_factory=dict)
    """Connection (as in `deliveries`) -> (EHLO time, close time or None while open)."""
    _ids: dict[Session, int] = field(default_factory=dict)
    """Sessions are kept (not their id()): a freed session's id() is reused."""
    _ehlo: dict[Session, float] = field(default_factory=dict)

    def lost(self, session: Session) -> None:
        """The connection of `session` closed."""
        with self.cond:
            conn = self._ids.get(session)
            if conn is not None:
                self.sessions[conn] = (self.sessions[conn][0], time.monotonic())
            self._ehlo.pop(session, None)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self._ehlo.setdefault(session, time.monotonic())
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.answers:
            return self.answers[address]
        envelope.rcpt_tos.append(address)
        return OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        conn = self._ids.setdefault(session, len(self._ids) + 1)
        now = time.monotonic()
        with self.cond:
            self.sessions.setdefault(conn, (self._ehlo.get(session, now), None))
            self.deliveries.extend(Delivery(conn, r, now) for r in envelope.rcpt_tos)
            if self.keep_bodies:
                raw = bytes(envelope.original_content or b"")
                self.messages.append(
                    Received(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
                )
            self.cond.notify_all()
        return OK

    def wait(self, count: int, timeout: float = WAIT) -> list[Received]:
        """Until `count` messages were accepted (bodies kept)."""
        assert self.keep_bodies, "a sink without bodies counts deliveries: wait_deliveries"
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"sink got {len(self.messages)} message(s), expected {count}")
            return list(self.messages)

    def wait_deliveries(self, count: int, timeout: float = 120.0) -> None:
        """Until `count` recipients were accepted, in any number of messages."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"sink got {len(self.deliveries)}, expected {count}")

    def to(self, rcpt: str) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if rcpt in m.rcpts]

    def snapshot(self) -> list[Delivery]:
        with self.cond:
            return list(self.deliveries)

    def per_rcpt(self) -> Counter[str]:
        return Counter(d.rcpt for d in self.snapshot())


class _Recorded(SMTP):
    """Tells the sink when a connection closes."""

    def connection_lost(self, exc: Exception | None) -> None:
        handler = self.event_handler
        if isinstance(handler, Sink) and self.session is not None:
            handler.lost(self.session)
        super().connection_lost(exc)


@contextmanager
def sink(
    port: int = 0, *, keep_bodies: bool = True, pipelining: bool = False, delay: float = 0.0
) -> Iterator[Sink]:
    """A recording smarthost; on `port`, or one from the OS."""
    s = Sink(keep_bodies=keep_bodies, pipelining=pipelining, delay=delay)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    server: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        def make() -> SMTP:
            s.connections += 1
            return _Recorded(s, hostname="sink", enable_SMTPUTF8=True, loop=loop)

        srv = loop.run_until_complete(loop.create_server(make, "127.0.0.1", port))
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


@contextmanager
def counting_sink(pipelining: bool = True) -> Iterator[Sink]:
    """The fan-out tests' sink: deliveries only, PIPELINING offered."""
    with sink(keep_bodies=False, pipelining=pipelining) as s:
        yield s
