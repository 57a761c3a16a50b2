"""The mail address contract (design.md), in one place: the local parts a channel owns,
how its addresses are written, and how an address is found in running text.

The registry checks that every slug fits it; the router parses recipients with it; the
site, the replies and the posts write addresses with `of`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

POST = ""
SUBSCRIBE = "-subscribe"
UNSUBSCRIBE = "-unsubscribe"
CONFIRM = "-confirm"
REQUEST = "-request"
OWNER = "-owner"
BOUNCES = "-bounces"

MYPAGE = "mypage"
"""The service-wide address of the citizen's own page (design.md, address contract):
`mypage@` answers with a link to `/me/<token>`, `mypage+<token>@` confirms an address
change. No channel slug may take it (registry/rules.py)."""
RESERVED = {MYPAGE: "マイページ（mypage@）"}
"""Service-wide local parts that no channel may own, with how a finding names them."""

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


def of(slug: str, suffix: str, domain: str, token: str | None = None) -> str:
    """`<slug><suffix>[+<token>]@<domain>`: how every address of a channel is written."""
    plus = f"+{token}" if token else ""
    return f"{slug}{suffix}{plus}@{domain}"


_BREAKS = re.compile(r"(?<=[-.])|(?=@)")


def pieces(address: str) -> list[str]:
    """Where a long address may wrap on a narrow screen: after "-" and ".", before "@"
    (`kosodate-news-subscribe@mail.city.example.jp` never splits inside a word). A page
    joins the pieces with <wbr> (issue 14 item 4)."""
    return [p for p in _BREAKS.split(address) if p]


def service(local: str, domain: str) -> str:
    """A service-wide address, such as `mypage@<domain>`."""
    return f"{local}@{domain}"


# The lookbehind starts a match only where a run starts: without it, a long run with no
# "@" is scanned again from each of its characters (quadratic: 32,000 characters took
# 1.8 s, a megabyte half an hour) in every log line, header and report it reads.
IN_TEXT = re.compile(r"(?<![^\s<>()\[\]\",;:@])[^\s<>()\[\]\",;:@]+@[^\s<>()\[\]\",;:@']+")
"""Something that looks like an address in running text (a header, a server's reply, an
exception): a run without spaces or the characters that delimit addresses (RFC 5322 §3.4:
angle brackets, comments, quotes, commas; §3.4.1 domain literals), around one "@".
Deliberately wide: it finds what a log must not show (redact.py) and what a header might
name (inbound/envelope.py, whose matches `mailtext.mailbox` then checks). Non-ASCII passes,
so SMTPUTF8 addresses (RFC 6531) are found as well. A local part may hold an apostrophe
(o'brien@, RFC 5322 atext); a domain may not."""


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list: no network at run time


def organizational_domain(domain: str) -> str:
    """The registrable domain by the Public Suffix List (RFC 7489 §3.2): city.kawasaki.jp
    for mail.city.kawasaki.jp; the domain itself when the list does not know it."""
    d = domain.lower().rstrip(".")
    return _psl().privatesuffix(d) or d
