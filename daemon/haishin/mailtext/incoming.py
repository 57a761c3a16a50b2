"""A received message reduced to what the commands read: sender, subject, body text.

Parsed with the stdlib `email` and `tolerant.TOLERANT` (`policy.default` whose header
reads never raise); headers and bodies are decoded by `charsets` (ISO-2022-JP with
CP50220 extensions, Shift_JIS, UTF-8, encoded words). Reading never raises: defects are
kept on the message, and broken parts decode to what they can. A message over the
`limits` is not parsed beyond its top header block: `Incoming.unreadable` says why, and
its body is empty, so no command acts on what was not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser

from .charsets import decode_header, decode_text
from .compose import LOOP_HEADER
from .limits import LIMITS, MimeLimits, Unreadable, screen, structure
from .mailbox import mailbox
from .tolerant import TOLERANT

BODY_READ_LIMIT = 64 * 1024
"""Commands live in the first lines; nobody needs more of the body to find them."""

_ANGLE_RE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_MSGID_RE = re.compile(r"<([!-;=?-~]+@[!-;=?-~]+)>")
"""A Message-ID we may copy into In-Reply-To: printable ASCII only (RFC 5322 §3.6.4), so a
control byte in a sender's header cannot make our reply fail (and the request go
unanswered)."""


@dataclass(frozen=True)
class Incoming:
    msg: EmailMessage
    mail_from: str
    sender: str | None  # the address to answer: From, else the envelope sender
    subject: str
    body: str
    message_id: str | None
    unreadable: Unreadable | None = None  # why the body was not read (`limits`)


def parse(raw: bytes, limits: MimeLimits = LIMITS) -> tuple[EmailMessage, Unreadable | None]:
    """The parsed message, or only its top header block and why (never raises)."""
    why = screen(raw, limits)
    if why is None:
        msg = BytesParser(policy=TOLERANT).parsebytes(raw)
        why = structure(msg, limits)
        if why is None:
            assert isinstance(msg, EmailMessage)
            return msg, None
    return _head_only(raw, limits), why


_KEPT = frozenset(
    n.lower().encode()
    for n in (
        *("From", "Sender", "Reply-To", "Subject", "Message-ID", "In-Reply-To", "References"),
        *("Auto-Submitted", "Precedence", "List-Id", LOOP_HEADER, "Content-Type"),
    )
)
"""The fields an unread message is answered from (`router.unreadable`, RFC 3834 checks)."""

_FIELD_NAME_RE = re.compile(rb"([!-9;-~]+)[ \t]*:")


def _head_only(raw: bytes, limits: MimeLimits) -> EmailMessage:
    # the top header block only, and of it only the fields we answer from, each cut at
    # `max_field`: 100,000 fields would cost every msg.get() a walk through all of them,
    # and a 1 MB Subject its decoding
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=-1)
    fields: list[bytearray] = []
    keep = False
    for line in (raw if end < 0 else raw[:end]).split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if keep and len(fields[-1]) < limits.max_field:
                fields[-1] += b"\n" + line
            continue
        m = _FIELD_NAME_RE.match(line)
        keep = m is not None and m.group(1).lower() in _KEPT
        if keep:
            fields.append(bytearray(line))
    head = b"\n".join(bytes(f[: limits.max_field]) for f in fields)
    msg = BytesHeaderParser(policy=TOLERANT).parsebytes(head + b"\r\n\r\n")
    assert isinstance(msg, EmailMessage)
    return msg


def raw_header(msg: EmailMessage, name: str) -> str | None:
    """The header as it came, unfolded, before policy.default decoding."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value).replace("\r", "").replace("\n", " ")
    return None


def from_address(msg: EmailMessage) -> str | None:
    raw = raw_header(msg, "From")
    if raw is None:
        return None
    text = decode_header(raw)
    found = _ANGLE_RE.findall(text)
    candidates = found[-1:] if found else [text.split("(")[0].strip()]
    for c in candidates:
        box = mailbox(c)
        if box is not None:
            return box
    return None


def _text_part(msg: EmailMessage) -> EmailMessage | None:
    if msg.is_multipart():
        for part in msg.walk():
            if part.get_content_type() == "text/plain" and not part.is_attachment():
                return part
        return None
    return msg if msg.get_content_maintype() == "text" else None


def body_text(msg: EmailMessage) -> str:
    part = _text_part(msg)
    if part is None:
        return ""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: read what is there as text
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    charset = part.get_content_charset()
    text = decode_text(data[:BODY_READ_LIMIT], charset)
    if part.get_content_type() == "text/html":
        text = re.sub(r"<[^>]*>", " ", text)
    return text.replace("\r\n", "\n")


_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _no_controls(subject: str) -> str:
    """A subject goes into our answers' headers, where no control character may stand
    (header injection, `compose`): each becomes U+FFFD, visible to whoever reads it."""
    return _CONTROL_RE.sub("\ufffd", subject.replace("\t", " "))


def read(raw: bytes, mail_from: str, limits: MimeLimits = LIMITS) -> Incoming:
    msg, unreadable = parse(raw, limits)
    subject = _no_controls(decode_header(raw_header(msg, "Subject") or ""))
    mid = raw_header(msg, "Message-ID")
    found = _MSGID_RE.findall(mid or "")
    sender = from_address(msg) or (mailbox(mail_from) if mail_from else None)
    return Incoming(
        msg=msg,
        mail_from=mail_from,
        sender=sender,
        subject=subject,
        body="" if unreadable else body_text(msg),
        message_id=f"<{found[0]}>" if found else None,
        unreadable=unreadable,
    )
