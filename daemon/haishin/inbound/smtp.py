"""SMTP and LMTP front end (aiosmtpd): check recipients, store, then 250.

MAIL and RCPT: a path that cannot be stored (not UTF-8, control characters, too long) is
refused at once with 501/553 (inbound/paths.py). RCPT: the address contract decides
(unknown → 550, channel not served → 550 with the reason, a token that does not verify
→ 550 saying why). DATA: the message is committed to the spool before 250 (RFC 5321
§4.1.1.4); if the commit fails the client gets 451 and retries later, and nothing is
half-stored; data that can never be stored gets 554 with the reason. SIZE is advertised
(RFC 1870) and larger messages get 552. No other work happens here.

XFORWARD (Postfix's XFORWARD_README): behind Postfix every connection comes from Postfix,
so the client it saw is passed by `XFORWARD ADDR=...` before each transaction and stored
with the message; the limits on automatic answers count per client network from it
(outbound/ratelimit.py). Only the front ends listed in service.yaml
(`limits.client_networks.forwarders`, loopback by default) are offered the command and
may use it: from anyone else it is refused (550), so a direct client cannot pick another
network to spend its share.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from ..directory import Directory, Refusal
from ..store.spool import Unstorable
from ..store.states import Intake
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

Store = Callable[[bytes, str, list[str], str | None], Awaitable[int]]
"""(raw, mail_from, rcpts, client address) -> spool id, once committed."""

XFORWARD_OK = "250 2.0.0 Ok"
XFORWARD_REFUSED = "550 5.7.0 Error: XFORWARD is not permitted from this client"
XFORWARD_IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
XFORWARD_SYNTAX = "501 5.5.4 Syntax: XFORWARD attribute=value..."
XFORWARD_BAD_ATTRIBUTE = "501 5.5.4 Error: unknown XFORWARD attribute"
XFORWARD_BAD_VALUE = "501 5.5.4 Error: bad XFORWARD attribute value"
XFORWARD_BAD_ADDR = "501 5.5.4 Error: XFORWARD ADDR is not an IP address"
XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PROTO", "HELO")
"""What we offer in EHLO/LHLO; Postfix then sends only these (XFORWARD_README)."""
_UNAVAILABLE = ("[UNAVAILABLE]", "[TEMPUNAVAIL]")
_XTEXT = re.compile(r"\+([0-9A-F]{2})")
_XTEXT_VALID = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})+")
"""RFC 3461 §4 xtext (Postfix >= 2.3 encodes XFORWARD values so): printable ASCII except
"+" and "=", and "+HH" for any other octet."""

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


def _peer_ip(session: Session) -> str | None:
    peer = session.peer
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return None  # a UNIX socket has no client address


def _forwarded_ip(value: str) -> tuple[bool, str | None]:
    """ADDR's value: (valid?, the address normalised, or None when Postfix had none: the
    mail then counts as the front end's own, like mail submitted on that host)."""
    if value in _UNAVAILABLE:
        return True, None
    if value[:5].upper() == "IPV6:":  # Postfix writes IPv6 clients as IPv6:2001:db8::1
        value = value[5:]
    try:
        return True, str(ipaddress.ip_address(value))
    except ValueError:
        return False, None


class _XForward(SMTP):
    """The XFORWARD command (Postfix's XFORWARD_README), for trusted front ends only."""

    forwarded_client: str | None = None
    """ADDR of the last XFORWARD, for the next mail transaction only."""

    def _set_post_data_state(self) -> None:
        # the attributes hold for one transaction: reset after DATA, RSET and EHLO/LHLO
        super()._set_post_data_state()  # type: ignore[no-untyped-call]
        self.forwarded_client = None

    @property
    def trusts_forwarder(self) -> bool:
        """Is the peer a listed front end? (Then, and only then, HELP shows XFORWARD.)"""
        handler = self.event_handler
        session = self.session
        return (
            isinstance(handler, Handler)
            and session is not None
            and handler.trusts_forwarder(session)
        )

    @syntax("XFORWARD attribute=value ...", when="trusts_forwarder")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        await self.push(self._xforward(arg or ""))  # aiosmtpd passes None for no argument

    def _xforward(self, arg: str) -> str:
        if not self.trusts_forwarder:
            return XFORWARD_REFUSED
        if self.envelope is not None and self.envelope.mail_from is not None:
            return XFORWARD_IN_TRANSACTION
        if not arg.strip():
            return XFORWARD_SYNTAX
        client: str | None = self.forwarded_client
        for pair in arg.split():
            name, eq, raw = pair.partition("=")
            if not eq or not raw:
                return XFORWARD_SYNTAX
            if name.upper() not in XFORWARD_ATTRIBUTES:
                return XFORWARD_BAD_ATTRIBUTE
            if len(raw) > 255 or not _XTEXT_VALID.fullmatch(raw):
                return XFORWARD_BAD_VALUE
            if name.upper() != "ADDR":
                continue  # NAME, PROTO, HELO: offered because Postfix sends them together
            valid, client = _forwarded_ip(_XTEXT.sub(lambda m: chr(int(m[1], 16)), raw))
            if not valid:
                return XFORWARD_BAD_ADDR
        self.forwarded_client = client
        return XFORWARD_OK


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
                # a stream transport, whatever its class (uvloop's do not derive from
                # asyncio's, so no isinstance check: it failed and left the client hanging)
                writer = cast(asyncio.WriteTransport, transport)
                writer.write(f"{reply}\r\n".encode())
                writer.close()
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


class _SMTP(_PlainPathFirst, _Capped, _XForward):
    pass


class _LMTP(_PlainPathFirst, _Capped, _XForward, LMTP):
    pass


def client_address(server: SMTP, session: Session) -> str | None:
    """Who handed the message over: the client a trusted front end named by XFORWARD,
    else the connecting address."""
    if isinstance(server, _XForward) and server.forwarded_client is not None:
        return server.forwarded_client
    return _peer_ip(session)


class Handler:
    """aiosmtpd handler hooks; `store` is the spool's async put."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        store: Store,
        source: Intake,
        redact: Callable[[str], str],
    ) -> None:
        self._directory = directory
        self._store = store
        self._source = source
        self._redact = redact

    def trusts_forwarder(self, session: Session) -> bool:
        """May this peer say by XFORWARD which client it saw? (service.yaml forwarders)"""
        peer = _peer_ip(session)
        if peer is None:
            return False
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket shows 127.0.0.1 as ::ffff:127.0.0.1
        forwarders = self._directory().service.limits.client_networks.forwarders
        return any(ip in net for net in forwarders)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Offer XFORWARD to trusted front ends only (XFORWARD_README: the server offers
        it only to clients it authorises, and Postfix sends it only when offered)."""
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        if self.trusts_forwarder(session):
            keyword = "250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES)
            responses = [*responses[:-1], keyword, responses[-1]]
        return responses

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
            spool_id = await self._store(
                bytes(raw), mail_from, rcpts, client_address(server, session)
            )
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
