"""What the bounce classifier says about one recipient (issue 12, item 1).

A parser only *extracts* (`Found`: address, status, reply code, diagnostic text); the
reason table and the provider rules *decide* (`Judged`: class and reason). Addresses are
personal data (第4条): no repr here shows one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class BounceClass(enum.StrEnum):
    """What a list server should make of a failure (../shared/corpora/bounces/README.md)."""

    PERMANENT = "permanent"  # the address does not exist and will not come back
    TEMPORARY = "temporary"  # worth retrying, or counting lightly
    REFUSED = "refused"  # the receiver refused this message or us: little about the address
    COMPLAINT = "complaint"  # RFC 5965 feedback report: the recipient pressed "spam"
    NONE = "none"  # not a failure: a success DSN, an auto-reply


@dataclass(frozen=True, slots=True)
class Found:
    """One recipient as a parser read it; nothing decided yet."""

    address: str = field(repr=False)
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"
    reply_code: str | None = None  # RFC 5321 §4.2 reply code, e.g. "550"
    diagnostic: str = field(default="", repr=False)  # the remote side's words (may quote addresses)
    action: str | None = None  # RFC 3464 §2.3.3 action, when the report was a DSN
    command: str | None = None  # the SMTP command the reply answered (RCPT, DATA, ...)
    rhost: str | None = None  # the receiving host that answered (Remote-MTA, "host X said")
    hint: str | None = None  # a reason the format itself settles (feedback, vacation, ...)
    parser: str = ""  # which parser read it


@dataclass(frozen=True, slots=True)
class Judged:
    """One recipient's verdict: class, reason (Sisimai's vocabulary), status, evidence."""

    address: str = field(repr=False)
    klass: BounceClass
    reason: str
    status: str | None
    reply_code: str | None
    evidence: str = field(repr=False)  # the line that decided; may quote an address
    parser: str = ""
    decided_by: str = ""  # "hint", "rhost:<provider>", "status", "text", "class"


@dataclass(frozen=True, slots=True)
class Classified:
    """A whole message: its recipients' verdicts, the parser that read it, its defects."""

    recipients: tuple[Judged, ...] = ()
    parser: str = ""
    defects: tuple[str, ...] = ()
