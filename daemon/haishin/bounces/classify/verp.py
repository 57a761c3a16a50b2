"""The envelope recipient of a bounce: `<slug>-bounces+<token>@` (redact.py masks addresses)."""

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


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()
