"""The envelope recipient of a bounce, and masking addresses for logs and events (第4条)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ... import addresses as contract


@dataclass(frozen=True, slots=True)
class VerpAddress:
    """`<slug>-bounces+<token>`: the router checks the token's HMAC, not this module."""

    slug: str
    token: str


_TOKEN_RE = re.compile(rf"[a-z2-7]{{1,{contract.TOKEN_MAX_LEN}}}")
"""Lower-case base32 (RFC 4648 §6 alphabet), as tokens.py writes it."""

_ADDRESS_RE = re.compile(r"[^\s<>\"'(),;:@\[\]]+@([A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])")


def parse_verp(local_part: str | None) -> VerpAddress | None:
    """Slug and token of `<slug>-bounces+<token>`, or None for any other local part.

    Case-insensitive: some mail servers lowercase (or uppercase) the local part, and the
    address contract chose base32 and lower-case slugs to survive that.
    """
    if not local_part:
        return None
    base, plus, token = local_part.lower().partition("+")
    if not plus or not base.endswith(contract.BOUNCES):
        return None
    slug = base.removesuffix(contract.BOUNCES)
    if not contract.SLUG_RE.match(slug) or not _TOKEN_RE.fullmatch(token):
        return None
    return VerpAddress(slug, token)


def mask(address: str) -> str:
    """`***@domain`: enough to see a carrier's trouble, not enough to name a person."""
    _, at, domain = address.rpartition("@")
    return f"***@{domain}" if at else "***"


def mask_addresses(text: str) -> str:
    """Every address in `text` reduced to `***@domain` (第4条: none in clear)."""
    return _ADDRESS_RE.sub(lambda m: "***@" + m.group(1), text)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()
