"""DKIM public keys from DNS (RFC 6376 §3.6.2), looked up without blocking the event loop.

One explicit dnspython asyncio resolver: the nameservers are the system's (resolv.conf)
unless `serve --dns HOST:PORT` names others, and every lookup is bounded by a per-try
time-out and an overall lifetime, so a slow or hostile domain named in a DKIM-Signature
costs at most that long and never stalls other work. What the lookup found is a result,
not an exception (style.md 4): a key, no key (permanent), or a temporary failure (time-out,
SERVFAIL), which the caller must not treat as either a pass or a fail.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver


@dataclass(frozen=True)
class DnsSettings:
    nameservers: tuple[tuple[str, int], ...] = ()
    """(host, port) pairs; empty: the system resolver's (/etc/resolv.conf)."""
    timeout: float = 2.0
    """Seconds for one try at one nameserver."""
    lifetime: float = 5.0
    """Seconds for the whole lookup, all tries and servers included."""


class Found(enum.StrEnum):
    KEY = "key"
    NO_KEY = "no-key"  # NXDOMAIN or no TXT record: permanent (RFC 6376 §6.1.2 PERMFAIL)
    TEMPORARY = "temporary"  # time-out, SERVFAIL, no server answered (§6.1.2 TEMPFAIL)


@dataclass(frozen=True)
class KeyRecord:
    found: Found
    txt: bytes = b""
    detail: str = ""


class KeyLookup:
    """TXT records of `<selector>._domainkey.<domain>` through one configured resolver."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        try:
            resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        except dns.resolver.NoResolverConfiguration:
            # no usable /etc/resolv.conf: every lookup is then a temporary failure (the
            # post is held and its sender asked), never a daemon that does not start
            resolver = dns.asyncresolver.Resolver(configure=False)
        if settings.nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in settings.nameservers
            ]
        resolver.timeout = settings.timeout
        resolver.lifetime = settings.lifetime
        # answers are cached for their TTL: a burst of posts from one domain asks once
        resolver.cache = dns.resolver.LRUCache(1024)
        self._resolver = resolver

    async def txt(self, name: str) -> KeyRecord:
        try:
            # search=False: a key name is absolute, never completed with a search domain
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return KeyRecord(Found.NO_KEY, detail=f"{name} に鍵がありません")
        except dns.exception.Timeout:
            return KeyRecord(Found.TEMPORARY, detail=f"{name} の問い合わせが時間切れになりました")
        except dns.resolver.NoNameservers:
            return KeyRecord(Found.TEMPORARY, detail=f"{name} に DNS サーバーが答えませんでした")
        except dns.exception.DNSException as exc:  # a name too long, a bad label...
            return KeyRecord(Found.NO_KEY, detail=f"{name} を問い合わせられません（{exc}）")
        # RFC 6376 §3.6.2.2: the character-strings of one TXT record are concatenated;
        # of several records, the first one that looks like a key (dkimpy does the same)
        records = [b"".join(r.strings) for r in answer]
        keys = [r for r in records if b"p=" in r] or records
        return KeyRecord(Found.KEY, txt=keys[0])
