"""Which strings are deliverable mailbox addresses."""

from __future__ import annotations

import re

# RFC 5321 §4.1.2 atext plus the dot, allowed anywhere: Japanese carriers issued addresses
# such as abc..def@docomo.ne.jp and abc.@ezweb.ne.jp that break RFC 5322 but still receive
# mail; refusing them locks out real residents.
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN_RE = re.compile(
    # the last label: letters, or an IDNA A-label such as xn--q9jyb4c (.みんな)
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$"
)


def mailbox(text: str) -> str | None:
    """A deliverable address or None: carrier-tolerant, but no spaces, controls, quotes,
    angle brackets or line breaks (header and command injection are refused)."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if "@" not in text:
        return None
    local, _, domain = text.rpartition("@")
    if local.startswith('"') and local.endswith('"') and len(local) > 2:
        local = local[1:-1]  # a quoted local part: "abc..def" as some parsers write it
    # fullmatch, not match: `$` also matches before a final line break, which let
    # "abc\n@example.jp" through into a To: header (a 500 from the change-of-address form)
    if not _LOCAL_RE.fullmatch(local) or not _DOMAIN_RE.fullmatch(domain):
        return None
    return f"{local}@{domain}"
