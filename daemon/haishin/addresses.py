"""The mail address contract (design.md), in one place.

The registry checks that every slug fits it; the router parses recipients with it.
"""

from __future__ import annotations

import re

POST = ""
SUBSCRIBE = "-subscribe"
UNSUBSCRIBE = "-unsubscribe"
CONFIRM = "-confirm"
REQUEST = "-request"
OWNER = "-owner"
BOUNCES = "-bounces"

SUFFIXES = (SUBSCRIBE, UNSUBSCRIBE, CONFIRM, REQUEST, OWNER, BOUNCES)
TOKEN_SUFFIXES = (UNSUBSCRIBE, CONFIRM, BOUNCES)
"""Suffixes that also come as `<slug><suffix>+<token>@`."""

TOKEN_MAX_LEN = 26
"""Upper bound of a token in an address: 128 bits in base32 (case-insensitive, since some
mail servers lowercase local parts). `tokens.py` must stay within it."""

LOCAL_PART_MAX = 64
"""RFC 5321 §4.5.3.1.1: a local part is at most 64 octets."""

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
"""Lower-case letters, digits and single inner hyphens: safe in every mail system, and
unchanged when a server lowercases the local part."""

SLUG_MAX_LEN = LOCAL_PART_MAX - max(len(s) for s in TOKEN_SUFFIXES) - 1 - TOKEN_MAX_LEN


def local_parts(slug: str) -> list[str]:
    """Every fixed local part a channel owns."""
    return [slug + s for s in (POST, *SUFFIXES)]
