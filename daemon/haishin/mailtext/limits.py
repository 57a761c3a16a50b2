"""Bounds on what a received message may make the parser do, checked before parsing.

The stdlib parser recurses once per nesting level (1,000 levels of multipart raise
RecursionError), and its header parser is quadratic in a field's length (16 KB of
comments in a To field take 5 s; 100 KB of parameters in Content-Type take 40 s in the
router and the bounce classifier), while each part costs about a millisecond in every
reader (commands, policy, bounces). RFC 5322 and RFC 2045 set no limits, so these are
ours: far above what any phone or mail program sends, far below what stalls the router.
`screen` is one linear pass over the raw bytes; `structure` counts the parsed tree
without recursion. A message over a limit is not parsed at all (only its top header
block, through `tolerant`), and is answered as unreadable or dropped, never processed
by halves. Measured on the 2-core machine, the worst message within the limits costs
0.02 s to read and 1.2 s in the bounce classifier (which parses with `policy.default`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from email.message import Message


class Unreadable(enum.StrEnum):
    """Why a message was not read (an outcome, recorded in the spool row)."""

    TOO_MANY_FIELDS = "too many header fields"
    FIELD_TOO_LONG = "a structured header field is too long or too complex"
    TOO_MANY_PARTS = "too many MIME parts"
    TOO_DEEP = "MIME parts nested too deeply"
    OVER_BUDGET = "reading it took longer than the time budget"


@dataclass(frozen=True)
class MimeLimits:
    max_depth: int = 12
    """Nesting levels (multipart and message/rfc822); real mail uses 3 to 5."""
    max_parts: int = 100
    """MIME entities, containers included."""
    max_fields: int = 1000
    """Header-like lines in the whole message (every part's header block counts)."""
    max_content_types: int = 128
    """Content-Type fields anywhere: bounds the parser's recursion before it starts (each
    level needs one, a multipart/digest two levels per field: at most 257 levels)."""
    max_delimiters: int = 1000
    """Lines starting with "--" (RFC 2046 §5.1.1 boundary delimiters, and look-alikes)."""
    max_structured_field: int = 2048
    """Bytes of one field the stdlib parses by its grammar (addresses, Content-*, Date...)."""
    max_comments: int = 32
    """"(" in one such field: RFC 5322 §3.2.2 comments nest, and the parser recurses."""
    max_params: int = 32
    """";" in one Content-* field (RFC 2045 §5.1 parameters; RFC 2231 continuations)."""
    max_structured_total: int = 48 * 1024
    """Bytes of all such fields together: every reader parses them again (the bounce
    classifier with `policy.default` takes ~10 s for 400 KB of parameters)."""
    max_field: int = 16 * 1024
    """Bytes of any other field (Subject, References, Received...)."""
    budget_seconds: float = 2.0
    """Time the router may spend reading one message before it is set aside."""


LIMITS = MimeLimits()

STRUCTURED = frozenset(
    {
        *("from", "sender", "reply-to", "to", "cc", "bcc"),
        *("resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc"),
        *("date", "resent-date", "orig-date", "message-id", "mime-version"),
        *("content-type", "content-disposition", "content-transfer-encoding"),
    }
)
"""The fields `email.headerregistry` parses by their grammar (its default map)."""

_FIELD_RE = re.compile(rb"([!-9;-~]+)[ \t]*:")
"""RFC 5322 §2.2 field-name (printable ASCII but colon), as the feedparser finds them."""


def _too_complex(name: bytes, value: bytes, limits: MimeLimits) -> bool:
    if name not in _STRUCTURED_BYTES:
        return len(value) > limits.max_field
    if len(value) > limits.max_structured_field or value.count(b"(") > limits.max_comments:
        return True
    return name.startswith(b"content-") and value.count(b";") > limits.max_params


_STRUCTURED_BYTES = frozenset(n.encode() for n in STRUCTURED)


def screen(raw: bytes, limits: MimeLimits = LIMITS) -> Unreadable | None:
    """One pass over the raw bytes: None if the message may be parsed. Conservative: a
    body line that looks like a field counts as one, so a count can only be too high."""
    fields = content_types = delimiters = structured = 0
    name = b""
    value = bytearray()
    for line in raw.split(b"\n"):
        if line[:1] in (b" ", b"\t") and name:
            value += line  # RFC 5322 §2.2.3 folding: the same field goes on
            continue
        if name and _too_complex(name, bytes(value), limits):
            return Unreadable.FIELD_TOO_LONG
        if name in _STRUCTURED_BYTES:
            structured += len(value)
        name = b""
        if line.startswith(b"--"):
            delimiters += 1
            continue
        m = _FIELD_RE.match(line)
        if m is None:
            continue
        fields += 1
        name = m.group(1).lower()
        value = bytearray(line[m.end() :])
        if name == b"content-type":
            content_types += 1
    if name and _too_complex(name, bytes(value), limits):
        return Unreadable.FIELD_TOO_LONG
    if name in _STRUCTURED_BYTES:
        structured += len(value)
    if content_types > limits.max_content_types or delimiters > limits.max_delimiters:
        return Unreadable.TOO_MANY_PARTS  # first: each part brings fields of its own
    if fields > limits.max_fields:
        return Unreadable.TOO_MANY_FIELDS
    if structured > limits.max_structured_total:
        return Unreadable.FIELD_TOO_LONG
    return None


def structure(msg: Message, limits: MimeLimits = LIMITS) -> Unreadable | None:
    """The parsed tree measured without recursion: None if within the limits."""
    parts = 0
    stack: list[tuple[Message, int]] = [(msg, 1)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > limits.max_depth:
            return Unreadable.TOO_DEEP
        if parts > limits.max_parts:
            return Unreadable.TOO_MANY_PARTS
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, depth + 1) for p in payload if isinstance(p, Message))
    return None
