"""A received message reduced to what the commands read: sender, subject, body text.

Parsed with the stdlib `email` and `policy.default`; headers and bodies are decoded by
`charsets` (ISO-2022-JP with CP50220 extensions, Shift_JIS, UTF-8, encoded words). Parsing
never raises: defects are kept on the message, and broken parts decode to what they can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from .charsets import decode_header, decode_text
from .mailbox import mailbox

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


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
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


def read(raw: bytes, mail_from: str) -> Incoming:
    msg = parse(raw)
    subject = decode_header(raw_header(msg, "Subject") or "")
    mid = raw_header(msg, "Message-ID")
    found = _MSGID_RE.findall(mid or "")
    sender = from_address(msg) or (mailbox(mail_from) if mail_from else None)
    return Incoming(
        msg=msg,
        mail_from=mail_from,
        sender=sender,
        subject=subject,
        body=body_text(msg),
        message_id=f"<{found[0]}>" if found else None,
    )
