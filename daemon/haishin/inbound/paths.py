"""Envelope paths that cannot be stored are refused at the command that brings them.

A MAIL FROM or RCPT TO path is kept as text in the spool row; bytes that are not text
(invalid UTF-8, which aiosmtpd hands over as surrogate escapes), NUL and other control
characters would make the row's insert fail long after the client was told "250" for
MAIL and RCPT. Refusing them where they arrive keeps the failure with the one session
that sent them (issue 11, item 2): no other session shares its commit.

| problem | reply | why |
|---|---|---|
| not UTF-8 | 501 | RFC 6531 §3.3: an address is UTF-8 or ASCII, nothing else |
| control character (NUL, C0, DEL, C1) | 501 | RFC 5321 §4.1.2: no rule of the path syntax admits one |
| longer than 256 octets | 501 | RFC 5321 §4.5.3.1.3, and "501 Path too long" (§4.5.3.1.10) |
| non-ASCII without SMTPUTF8 | 553 | RFC 6531 §3.5: X.6.7 "non-ASCII addresses not permitted" |

The enhanced status code (RFC 3463) names the side: X.1.7 a bad sender's mailbox address
syntax, X.1.3 a bad destination's.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

PATH_MAX = 256
"""RFC 5321 §4.5.3.1.3: the maximum total length of a reverse-path or forward-path is 256
octets, including the punctuation (the angle brackets)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
"""aiosmtpd decodes arguments as UTF-8 with surrogateescape: a byte that is not UTF-8
arrives as one lone surrogate in this range."""


class Side(enum.Enum):
    SENDER = "5.1.7"  # RFC 3463 §3.2: bad sender's mailbox address syntax
    RECIPIENT = "5.1.3"  # RFC 3463 §3.2: bad destination mailbox address syntax


class Problem(enum.Enum):
    NOT_UTF8 = "not-utf8"
    CONTROL = "control"
    TOO_LONG = "too-long"
    NON_ASCII = "non-ascii"


@dataclass(frozen=True)
class _Reply:
    code: int
    status: str | None  # an enhanced status of its own, else the side's
    text: str


_REPLIES: dict[Problem, _Reply] = {
    Problem.NOT_UTF8: _Reply(501, None, "Address is not valid UTF-8"),
    Problem.CONTROL: _Reply(501, None, "Control characters are not allowed in an address"),
    Problem.TOO_LONG: _Reply(501, None, f"Path too long (more than {PATH_MAX} octets)"),
    Problem.NON_ASCII: _Reply(553, "5.6.7", "Non-ASCII address without SMTPUTF8"),
}


def problem(address: str, *, smtputf8: bool) -> Problem | None:
    """Why `address` (as aiosmtpd parsed it from the path) cannot be taken, or None."""
    if address.isascii():  # the common case: one scan for controls, one length
        if _CONTROL.search(address):
            return Problem.CONTROL
        return Problem.TOO_LONG if len(address) + 2 > PATH_MAX else None
    if _SURROGATE.search(address):
        return Problem.NOT_UTF8
    if _CONTROL.search(address):
        return Problem.CONTROL
    if len(address.encode()) + 2 > PATH_MAX:
        return Problem.TOO_LONG
    return None if smtputf8 else Problem.NON_ASCII


def reply(found: Problem, side: Side) -> str:
    r = _REPLIES[found]
    return f"{r.code} {r.status or side.value} {r.text}"
