"""SMTP and LMTP front end (aiosmtpd): check recipients, store, then 250.

MAIL and RCPT: a path that cannot be stored (not UTF-8, control characters, too long) is
refused at once with 501/553 (inbound/paths.py). RCPT: the address contract decides
(unknown → 550, channel not served → 550 with the reason, a token that does not verify
→ 550 saying why). DATA: the message is committed to the spool before 250 (RFC 5321
§4.1.1.4); if the commit fails the client gets 451 and retries later, and nothing is
half-stored; data that can never be stored gets 554 with the reason. SIZE is advertised
(RFC 1870) and larger messages get 552. No other work happens here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from ..router.addresses import Directory, Refusal
from ..store.spool import Unstorable
from . import paths, sessions

log = logging.getLogger(__name__)

OK = "250 2.0.0 OK: queued"
OK_MAIL = "250 2.1.0 OK"
OK_RCPT = "250 2.1.5 OK"
TEMPFAIL = "451 4.3.0 Temporary storage failure, try again later"
UNSTORABLE = "554 5.6.0 Message refused: {reason}"
"""RFC 5321 §4.2.1 5yz: the same data would fail again, so the client must not retry."""
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
MAX_RCPTS = 50
"""A command mail has one or two recipients; fan-out to many is not a citizen's need."""

Store = Callable[[bytes, str, list[str]], Awaitable[int]]

_PLAIN_PATH = re.compile(r"\s*<([!#-'*+\-./0-9=?A-Z^-~]+@[-.0-9A-Za-z]+)>(.*)", re.S)
"""`<local@domain> params` with nothing to unquote: the form nearly every client sends."""


class _PlainPathFirst:
    """aiosmtpd parses every MAIL FROM and RCPT TO path with the stdlib's RFC 5322 header
    parser (a seventh of the daemon's CPU under load, bench/inbound_subscribe.py); plain
    paths are read with one regular expression instead, anything else (quoted local parts,
    `<>`, source routes) still goes to aiosmtpd. If a later aiosmtpd stops calling
    `_getaddr`, this override is simply unused."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        m = _PLAIN_PATH.fullmatch(arg)
        if m is not None:
            return m.group(1), m.group(2)
        return super()._getaddr(arg)  # type: ignore[misc, no-any-return]


class _Capped:
    """A session over a cap of `sessions.Sessions` is answered 421 as its greeting and
    closed (RFC 5321 §3.1, §4.2.2) before aiosmtpd starts it: no timer, no reader task.
    aiosmtpd calls `connection_made` again after STARTTLS; only the first one counts."""

    sessions: sessions.Sessions | None = None
    _counted: str | None = None
    _refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.sessions is not None and self._counted is None:
            key, verdict = self.sessions.admit(transport.get_extra_info("peername"))
            if verdict is not sessions.Admission.ADMITTED:
                self._refused = True
                reply = sessions.REPLIES[verdict].format(host=self.hostname)  # type: ignore[attr-defined]
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(f"{reply}\r\n".encode())
                transport.close()
                return
            self._counted = key
        super().connection_made(transport)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if not self._refused:  # a refused client's words are not read
            super().data_received(data)  # type: ignore[misc]

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        return super().eof_received()  # type: ignore[misc, no-any-return]

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return  # aiosmtpd never started this session
        if self.sessions is not None and self._counted is not None:
            self.sessions.release(self._counted)
            self._counted = None
        super().connection_lost(error)  # type: ignore[misc]


class _SMTP(_PlainPathFirst, _Capped, SMTP):
    pass


class _LMTP(_PlainPathFirst, _Capped, LMTP):
    pass


class Handler:
    """aiosmtpd handler hooks; `store` is the spool's async put."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        store: Store,
        source: str,
        redact: Callable[[str], str],
    ) -> None:
        self._directory = directory
        self._store = store
        self._source = source
        self._redact = redact

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # RFC 5321 §4.1.1.2: a refused MAIL starts no mail transaction, so nothing of this
        # session can reach the spool (and no other session's group commit)
        problem = paths.problem(address, smtputf8=envelope.smtp_utf8)
        if problem is not None:
            return paths.reply(problem, paths.Side.SENDER)
        # a hook that answers takes over what aiosmtpd would otherwise do itself
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return OK_MAIL

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RCPTS:
            return TOO_MANY_RCPTS
        problem = paths.problem(address, smtputf8=envelope.smtp_utf8)
        if problem is not None:
            return paths.reply(problem, paths.Side.RECIPIENT)
        verdict = self._directory().classify(address)
        if isinstance(verdict, Refusal):
            return verdict.reply
        envelope.rcpt_tos.append(address)
        return OK_RCPT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        rcpts = list(envelope.rcpt_tos)
        try:
            spool_id = await self._store(bytes(raw), mail_from, rcpts)
        except Unstorable as exc:  # this message only: its neighbours were stored
            log.warning("message from %s refused: %s", self._redact(mail_from), exc.reason)
            status = UNSTORABLE.format(reason=exc.reason)
        except Exception:
            log.exception("spool write failed; answering 451")
            status = TEMPFAIL
        else:
            log.info(
                "inbound#%d accepted from %s (%d bytes)",
                spool_id,
                self._redact(mail_from),
                len(raw),
            )
            status = OK
        if isinstance(server, LMTP):
            # RFC 2033 §4.2: one reply per accepted recipient, after the final dot
            return "\r\n".join(status for _ in rcpts)
        return status


def factory(
    handler: Handler,
    *,
    lmtp: bool,
    size_limit: int,
    hostname: str,
    tls: ssl.SSLContext | None,
    capped: sessions.Sessions | None = None,
) -> Callable[[], Any]:
    cls = _LMTP if lmtp else _SMTP

    def make() -> SMTP:
        protocol = cls(
            handler,
            data_size_limit=size_limit,
            hostname=hostname,
            tls_context=tls,
            enable_SMTPUTF8=True,
            timeout=60,
            loop=asyncio.get_running_loop(),
        )
        protocol.sessions = capped
        return protocol

    return make


async def serve(make: Callable[[], Any], host: str, port: int) -> asyncio.base_events.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(make, host, port)
