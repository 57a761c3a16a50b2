"""A lean SMTP client for one long-lived connection to the smarthost.

Why not aiosmtplib on the hot path: it waits for every reply in turn (MAIL, RCPT, DATA,
then the data) and parses each through several layers; at thousands of messages per
second that per-command round trip and overhead dominate. This client pipelines
(RFC 2920): MAIL FROM, RCPT TO and DATA go in one write and their three replies are read
together, then the message and its final dot in one more write, so a message costs two
round trips. TCP_NODELAY is set so that the last small segment of a write is not held by
Nagle's algorithm until the server's delayed ACK (the 40 ms stall that made mlmmj crawl).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple, cast

CRLF = b"\r\n"

# RFC 5321 §4.2: the codes this client acts on.
READY = 220
OK = 250
START_DATA = 354
CLOSING = 421


class Reply:
    """One reply: its code, and its text decoded only when asked (a fan-out reads four
    replies per message and looks at the text of none that succeeded)."""

    __slots__ = ("_lines", "_text", "code")

    def __init__(self, code: int, text: str | Sequence[bytes]) -> None:
        self.code = code
        self._lines: Sequence[bytes] = () if isinstance(text, str) else text
        self._text = text if isinstance(text, str) else None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "\n".join(ln[4:].decode("utf-8", "replace") for ln in self._lines)
        return self._text

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def __repr__(self) -> str:
        return f"Reply({self.code!r}, {self.text!r})"


class Outgoing(NamedTuple):
    """One message for one recipient; `data` is dot-stuffed and ends in CRLF."""

    mail_from: str
    rcpt: str
    data: bytes
    eightbit: bool = False


class SMTPError(Exception):
    """The connection is unusable (closed, timed out, or the server said goodbye)."""


class _Waiter:
    """A group of replies awaited together: one future per write, not one per reply."""

    __slots__ = ("future", "needed", "replies")

    def __init__(self, future: asyncio.Future[list[Reply]], needed: int) -> None:
        self.future = future
        self.replies: list[Reply] = []
        self.needed = needed


class _Protocol(asyncio.Protocol):
    """Parses replies as they arrive and hands them to the oldest waiting group."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._lines: list[bytes] = []
        self._waiting: deque[_Waiter] = deque()
        self._early: deque[Reply] = deque()
        self.lost: BaseException | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, whatever its class (uvloop's do not derive from asyncio's)
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end].rstrip(b"\r")
            start = end + 1
            # a multiline reply continues with "250-"; "250 " (or a bare code) ends it
            if len(line) < 4 or line[3:4] != b"-":
                if self._lines:
                    self._lines.append(line)
                    self._reply(self._lines)
                    self._lines = []
                else:
                    self._reply((line,))
            else:
                self._lines.append(line)
        self._buf = buf[start:]
        if len(self._buf) > 65536:  # RFC 5321 §4.5.3.1.5: reply lines are short
            self.connection_lost(SMTPError("reply line too long"))

    def _reply(self, lines: Sequence[bytes]) -> None:
        head = lines[0][:3]
        reply = Reply(int(head) if head.isdigit() else 0, lines)
        while self._waiting:
            waiter = self._waiting[0]
            if waiter.future.done():  # timed out or cancelled: its replies are lost
                self._waiting.popleft()
                continue
            waiter.replies.append(reply)
            if len(waiter.replies) >= waiter.needed:
                self._waiting.popleft()
                waiter.future.set_result(waiter.replies)
            return
        self._early.append(reply)

    def expect(self, needed: int = 1) -> _Waiter:
        """The next `needed` replies, as one future; on a lost connection the future
        fails and `replies` holds those that did arrive."""
        waiter = _Waiter(asyncio.get_running_loop().create_future(), needed)
        while self._early and len(waiter.replies) < needed:
            waiter.replies.append(self._early.popleft())
        if len(waiter.replies) >= needed:
            waiter.future.set_result(waiter.replies)
        elif self.lost is not None:
            waiter.future.set_exception(SMTPError(str(self.lost)))
        else:
            self._waiting.append(waiter)
        return waiter

    def watch(self, timeout: float) -> None:
        """The replies awaited now must come within `timeout` seconds. One timer per
        connection, moved on only when it fires, rather than a timer set and cancelled
        per round trip (thousands a second in a fan-out)."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        if not any(not w.future.done() for w in self._waiting):
            return  # nothing awaited: the next `watch` sets a timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:  # replies came meanwhile; others are awaited
            self._timer = loop.call_at(self._deadline, self._check)
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(TimeoutError("no reply from the smarthost"))

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.lost = exc or SMTPError("connection closed")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(SMTPError(str(self.lost)))
        if self.transport is not None:
            self.transport.close()


class Connection:
    """One SMTP session. `send` delivers one message to one recipient."""

    def __init__(self, protocol: _Protocol, timeout: float) -> None:
        self._p = protocol
        self._timeout = timeout
        self.pipelining = False
        self.smtputf8 = False
        self.eightbit = False
        self.sent = 0
        self._dirty = False

    @classmethod
    async def open(
        cls, host: str, port: int, *, hostname: str = "localhost", timeout: float = 30.0
    ) -> Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(_Protocol, host, port)
            conn = cls(protocol, timeout)
            try:
                greeting = await conn._read()
                if greeting.code != READY:
                    raise SMTPError(f"greeting {greeting.code} {greeting.text}")
                conn._write(b"EHLO " + hostname.encode("ascii") + CRLF)
                ehlo = await conn._read()
                if not ehlo.ok:
                    raise SMTPError(f"EHLO {ehlo.code} {ehlo.text}")
            except BaseException:
                conn.close()
                raise
        keywords = {line.split(" ")[0].upper() for line in ehlo.text.split("\n")[1:]}
        conn.pipelining = "PIPELINING" in keywords
        conn.smtputf8 = "SMTPUTF8" in keywords
        conn.eightbit = "8BITMIME" in keywords
        return conn

    def _write(self, data: bytes) -> None:
        transport = self._p.transport
        if transport is None or self._p.lost is not None or transport.is_closing():
            raise SMTPError("connection closed")
        transport.write(data)

    async def _read(self) -> Reply:
        replies = await self._read_many(1)
        if not replies:
            raise SMTPError(str(self._p.lost or "connection closed"))
        return replies[0]

    async def _read_many(self, needed: int) -> list[Reply]:
        """The next `needed` replies, awaited together (one future, one timer for a
        pipelined group); fewer when the session broke meanwhile (then it is closed)."""
        waiter = self._p.expect(needed)
        try:
            if not waiter.future.done():
                self._p.watch(self._timeout)
            await waiter.future
        except (SMTPError, TimeoutError, OSError):
            self.close()
            return waiter.replies[:needed]
        for reply in waiter.replies:
            if reply.code == CLOSING:
                # RFC 5321 §3.8: the server is closing; this session is over
                self.close()
        return waiter.replies

    def _envelope(self, mail_from: str, rcpt: str, eightbit: bool) -> bytes:
        params = b""
        if eightbit and self.eightbit:
            params += b" BODY=8BITMIME"
        if self.smtputf8 and not (rcpt.isascii() and mail_from.isascii()):
            params += b" SMTPUTF8"
        return b"MAIL FROM:<%s>%s\r\nRCPT TO:<%s>\r\n" % (
            mail_from.encode("utf-8"),
            params,
            rcpt.encode("utf-8"),
        )

    async def send_many(self, messages: Sequence[Outgoing]) -> list[Reply | None]:
        """Send several messages in turn; one reply per message (the first failing one or
        the final one), None where the session broke and the outcome is unknown.

        RFC 2920 §3.1 lets message content be the first "command" of a group: the
        previous message's content and final dot, then this message's MAIL, RCPT and DATA
        go out in one write, so a message costs one round trip, not two."""
        if not self.pipelining:
            sent: list[Reply | None] = []
            for m in messages:
                try:
                    sent.append(await self.send(m.mail_from, m.rcpt, m.data, eightbit=m.eightbit))
                except (SMTPError, TimeoutError, OSError):
                    self.close()
                    break
            return sent + [None] * (len(messages) - len(sent))
        out: list[Reply | None] = []
        content = b""  # the previous message's data and dot, its 354 received
        try:
            for m in messages:
                reset = self._dirty
                self._write(
                    content
                    + (b"RSET\r\n" if reset else b"")
                    + self._envelope(m.mail_from, m.rcpt, m.eightbit)
                    + b"DATA\r\n"
                )
                # the previous message's final reply, then RSET's, MAIL's, RCPT's and
                # DATA's: read as one group (RFC 2920 §3.2: in order)
                replies = await self._read_many((1 if content else 0) + 3 + reset)
                if content:
                    if not replies:
                        break
                    out.append(self._final(replies[0]))
                    replies = replies[1:]
                    content = b""
                if len(replies) < 3 + reset:
                    break  # the session broke: this message's outcome is unknown
                replies = replies[reset:]
                self._dirty = False
                failed = next((r for r in replies[:-1] if not r.ok), None)
                if failed is not None or replies[-1].code != START_DATA:
                    self._dirty = True
                    if replies[-1].code == START_DATA:  # a server that took DATA anyway
                        self._write(b".\r\n")
                        await self._read()
                    out.append(failed or replies[-1])
                    continue
                content = m.data + b".\r\n"
            else:
                if content:
                    self._write(content)
                    out.append(self._final(await self._read()))
        except (SMTPError, TimeoutError, OSError):
            self.close()
        return out + [None] * (len(messages) - len(out))

    def _final(self, reply: Reply) -> Reply:
        if reply.ok:
            self.sent += 1
        else:
            self._dirty = True
        return reply

    async def send(self, mail_from: str, rcpt: str, data: bytes, *, eightbit: bool) -> Reply:
        """Send `data` (dot-stuffed, ending in CRLF) from `mail_from` to `rcpt`. Returns
        the first failing reply or the final one; raises SMTPError when the session is
        unusable, in which case the outcome for this message is unknown."""
        envelope = self._envelope(mail_from, rcpt, eightbit)
        reset = self._dirty
        if reset:  # the last transaction failed halfway: start clean (RFC 5321 §4.1.1.5)
            envelope = b"RSET\r\n" + envelope
        if self.pipelining:
            # RFC 2920 §3.1: DATA may end a pipelined group; its reply says whether the
            # recipient was taken, so the message is only sent after a 354
            self._write(envelope + b"DATA\r\n")
            replies = [await self._read() for _ in range(3 + reset)]
        else:
            replies = []
            for line in envelope.split(CRLF)[:-1]:
                self._write(line + CRLF)
                replies.append(await self._read())
                if not replies[-1].ok:
                    break
            else:
                self._write(b"DATA\r\n")
                replies.append(await self._read())
        if reset:
            replies = replies[1:]
        self._dirty = False
        for reply in replies[:-1]:
            if not reply.ok:
                self._dirty = True
                if replies[-1].code == START_DATA:  # a server that took DATA anyway
                    self._write(b".\r\n")
                    await self._read()
                return reply
        if replies[-1].code != START_DATA:
            self._dirty = True
            return replies[-1]
        self._write(data + b".\r\n")
        final = await self._read()
        self._dirty = not final.ok
        if final.ok:
            self.sent += 1
        return final

    async def quit(self) -> None:
        try:
            self._write(b"QUIT\r\n")
            async with asyncio.timeout(min(self._timeout, 5.0)):
                await self._p.expect().future
        except (SMTPError, TimeoutError, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self._p.transport is not None:
            self._p.transport.close()

    @property
    def usable(self) -> bool:
        t = self._p.transport
        return self._p.lost is None and t is not None and not t.is_closing()


def stuff(data: bytes) -> bytes:
    """Dot-stuff (RFC 5321 §4.5.2) and make sure the data ends in CRLF."""
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    if not data.endswith(CRLF):
        data += CRLF
    return data
