"""How many SMTP/LMTP sessions may run at once: per client address and overall.

Without a cap, 1,100 idle connections from one client used up the daemon's file
descriptors (soft RLIMIT_NOFILE 1024): asyncio's accept() then failed with EMFILE, every
other client timed out, and the log filled with tracebacks. A session over a cap is
answered at once, as its greeting, and closed (RFC 5321 §3.1: the server may decline
the session in its opening reply; §4.2.2: 421 "Service not available, closing
transmission channel", sent "if the service knows it must shut down"; RFC 3463 codes):

| cap | greeting |
|---|---|
| sessions from one client address (an IPv6 client: its /64) | `421 4.7.0 <host> Too many connections from your address` |
| sessions overall | `421 4.3.2 <host> Too busy, try again later` |

The front end (Postfix on loopback, behind `--lmtp`) is one address that carries every
citizen's mail: its addresses are counted only against the overall cap. The overall cap
is kept below the file-descriptor limit (`fit`), so accept() never runs out.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import resource
from collections import Counter
from dataclasses import dataclass, field, replace

log = logging.getLogger(__name__)

TOO_MANY_FROM_ADDRESS = "421 4.7.0 {host} Too many connections from your address"
TOO_BUSY = "421 4.3.2 {host} Too busy, try again later"

PER_ADDRESS = 20
"""A well-behaved MTA opens a few parallel sessions to one destination (Postfix: 20 at
most by default, `default_destination_concurrency_limit`)."""
OVERALL = 500
LOOPBACK = frozenset({"127.0.0.1", "::1"})
"""The default front end: the machine itself (deploy/: Postfix delivers over loopback)."""

FD_RESERVE = 200
"""File descriptors kept for everything but SMTP sessions: the database pool, the
outbound connections, HTTP, DNS, the log, and sessions being refused."""


class Admission(enum.Enum):
    ADMITTED = "admitted"
    PER_ADDRESS = "per address"
    OVERALL = "overall"


REPLIES: dict[Admission, str] = {
    Admission.PER_ADDRESS: TOO_MANY_FROM_ADDRESS,
    Admission.OVERALL: TOO_BUSY,
}


@dataclass(frozen=True)
class SessionLimits:
    per_address: int = PER_ADDRESS
    overall: int = OVERALL
    exempt: frozenset[str] = field(default_factory=frozenset)
    """Client addresses counted only against `overall` (the front end)."""


def client_key(peer: object) -> str:
    """What the per-address cap counts: the IPv4 address (an IPv4-mapped IPv6 address
    unmapped), an IPv6 client's /64 (one subscriber line holds a whole /64, RFC 6177)."""
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    try:
        ip = ipaddress.ip_address(str(host))
    except ValueError:
        return str(host)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class Sessions:
    """The running sessions, counted. Event-loop context only (no locking)."""

    def __init__(self, limits: SessionLimits) -> None:
        self.limits = limits
        self._exempt = {client_key((a,)) for a in limits.exempt}
        self._by_client: Counter[str] = Counter()
        self._total = 0
        self._refusing: set[str] = set()

    @property
    def total(self) -> int:
        return self._total

    def admit(self, peer: object) -> tuple[str, Admission]:
        """Count a new session in, or say which cap refuses it (then nothing is counted)."""
        key = client_key(peer)
        if self._total >= self.limits.overall:
            verdict = Admission.OVERALL
        elif key not in self._exempt and self._by_client[key] >= self.limits.per_address:
            verdict = Admission.PER_ADDRESS
        else:
            self._by_client[key] += 1
            self._total += 1
            return key, Admission.ADMITTED
        if key not in self._refusing:
            # one line when a client starts being refused, not one per connection
            self._refusing.add(key)
            log.warning(
                "sessions: refusing %s (%s cap; %d from it, %d in all)",
                key,
                verdict.value,
                self._by_client[key],
                self._total,
            )
        return key, verdict

    def release(self, key: str) -> None:
        self._by_client[key] -= 1
        if self._by_client[key] <= 0:
            del self._by_client[key]
        self._total -= 1
        self._refusing.discard(key)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the soft default, 1024, is far
    below what a mail server holds); returns the soft limit now in force. Under the
    systemd unit (LimitNOFILE=65536) both are equal already and nothing is called."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the file limit from %d to %d: %s", soft, hard, exc)
            return soft
        return hard
    return soft


def fit(limits: SessionLimits, fd_limit: int) -> SessionLimits:
    """The overall cap kept below the file-descriptor limit, with FD_RESERVE to spare."""
    room = max(1, fd_limit - FD_RESERVE)
    if limits.overall <= room:
        return limits
    log.warning(
        "sessions: at most %d at once, not %d: the file limit is %d (raise LimitNOFILE)",
        room,
        limits.overall,
        fd_limit,
    )
    return replace(limits, overall=room, per_address=min(limits.per_address, room))
