"""Who may post to a channel, and whether their mail proves it.

A From header is easy to forge, so being listed in the channel's `senders` only makes a
post eligible; approval (confirm, manager) or authentication (`authenticated` mode) is
what lets it go out (第5条: the 情報管理者 answers for what is sent). The
`authenticated` mode rests on the daemon's own DKIM verification (dkim_verify.py), never
on an Authentication-Results header that arrived with the mail.
"""

from __future__ import annotations

from ..addresses import organizational_domain
from ..registry.model import Channel


def same_address(a: str, b: str) -> bool:
    """Local parts compared as written (RFC 5321 §2.4), domains without case."""
    la, _, da = a.rpartition("@")
    lb, _, db = b.rpartition("@")
    return la == lb and da.lower() == db.lower()


def is_sender(channel: Channel, address: str) -> bool:
    return any(same_address(address, s) for s in channel.senders)


def aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment (RFC 7489 §3.1): the same organizational domain."""
    a, b = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b or organizational_domain(a) == organizational_domain(b)
