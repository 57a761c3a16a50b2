"""Google Groups refusing a post (its notice in the poster's language, with the group in
X-Failed-Recipients): the group refused our message, it did not lose an address."""

from __future__ import annotations

from ..mail import ADDRESS_RE, DSN_TYPES, Mail, squash
from ..model import Found


def parse(mail: Mail) -> list[Found] | None:
    failed = ADDRESS_RE.findall(mail.get("X-Failed-Recipients"))
    if mail.parts_of(*DSN_TYPES):
        return None  # a DSN about a group address says more (dsn.py reads it)
    if not failed or not all(a.lower().endswith("@googlegroups.com") for a in failed):
        return None
    text = squash(mail.text)[:400]
    return [Found(a, diagnostic=text, hint="rejected") for a in failed]
