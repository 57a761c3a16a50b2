"""A real DNS server on loopback (dnslib, UDP and TCP, port 0) publishing test DKIM keys.

`DnsServer.publish(name, txt)` adds a TXT record; a name in `silent` gets no answer at all
(the client times out, as with a dead or hostile nameserver); a name in `servfail` gets
SERVFAIL. Keys are made at test time with `cryptography` (no key material in git).
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import QTYPE, RCODE, RR, TXT, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSServer


@dataclass
class _Zone(BaseResolver):  # type: ignore[misc]
    records: dict[str, bytes] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    servfail: set[str] = field(default_factory=set)
    queries: list[str] = field(default_factory=list)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.queries.append(name)
        if name in self.silent:
            # dnslib's handler sends nothing for a DNSError: the client's time-out decides
            raise DNSError(f"silent: {name}")
        if name in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
        elif name in self.records and request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            txt = self.records[name]
            # RFC 6376 §3.6.2.2: long keys are split into 255-byte character-strings
            chunks = [txt[i : i + 255] for i in range(0, len(txt), 255)]
            reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        elif name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@dataclass
class DnsServer:
    zone: _Zone
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, txt: bytes) -> None:
        self.zone.records[name.lower()] = txt


class _Quiet:
    """dnslib's logger prints every query; the tests read the zone's own list instead."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def _pair(zone: _Zone) -> tuple[DNSServer, DNSServer]:
    """UDP and TCP on one port (a resolver retries over TCP on the same one): the OS picks
    the UDP port, and TCP may find it taken by another process's connection (the tests
    run in parallel), so another port is tried."""
    for _ in range(50):
        udp = DNSServer(zone, address="127.0.0.1", port=0, logger=_Quiet())
        port = udp.server.server_address[1]
        try:
            return udp, DNSServer(zone, address="127.0.0.1", port=port, tcp=True, logger=_Quiet())
        except OSError as exc:
            udp.server.server_close()
            if exc.errno != errno.EADDRINUSE:
                raise
    raise RuntimeError("no port free for both UDP and TCP")


@contextmanager
def dns_server() -> Iterator[DnsServer]:
    zone = _Zone()
    udp, tcp = _pair(zone)
    port = udp.server.server_address[1]
    udp.start_thread()
    tcp.start_thread()
    try:
        yield DnsServer(zone, port)
    finally:
        for server in (udp, tcp):
            server.server.shutdown()
            server.server.server_close()


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    private_pem: bytes
    public_txt: bytes

    @property
    def name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def sign(self, raw: bytes, **kw: Any) -> bytes:
        """`raw` with this key's DKIM-Signature on top (relaxed/relaxed). By default as an
        OpenDKIM with `OversignHeaders` would: each RFC 6376 §5.4.1 header present is
        signed once more than it occurs, so none can be added above it (§8.15)."""
        include = kw.pop("include_headers", None)
        if include is None:
            parsed = dkim.DKIM(raw)
            parsed.add_frozen(dkim.DKIM.SHOULD)
            include = parsed.default_sign_headers()
        signature: bytes = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
            **kw,
        )
        return signature + raw


def make_key(domain: str, selector: str = "sel") -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return SigningKey(domain, selector, pem, txt)
