"""Reduce a received post to the `PostView` the policy rules read, once per post."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

from .policy import PartInfo, PostView

TextDecoder = Callable[[EmailMessage], str]


def _stdlib_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def view_of(msg: EmailMessage, size: int, text_of: TextDecoder = _stdlib_text) -> PostView:
    """`text_of` decodes a text part; the daemon passes its Japanese-aware decoder."""
    parts: list[PartInfo] = []
    texts: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        assert isinstance(part, EmailMessage)
        ctype = part.get_content_type()
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        attachment = (
            disposition == "attachment"
            or filename is not None
            or (part.get_content_maintype() not in ("text",))
        )
        payload = part.get_payload(decode=True)
        parts.append(
            PartInfo(ctype, filename, attachment, len(payload) if isinstance(payload, bytes) else 0)
        )
        if ctype == "text/plain" and not attachment:
            texts.append(text_of(part))
    subject = str(msg.get("Subject", "") or "")
    return PostView(subject=subject, text="\n".join(texts), parts=tuple(parts), size=size)
