"""RFC 5965 abuse feedback reports (ARF): the recipient pressed "this is spam".

The report names the complaining recipient in `Original-Rcpt-To` (RFC 5965 §3.2, optional)
or, failing that, in the returned message's To. Either way the class is settled by the
format: a complaint (reason `feedback`, as Sisimai names it).
"""

from __future__ import annotations

from email.message import Message

from ..mail import ADDRESS_RE, Mail, header, part_text
from ..model import Found

_FIELDS = ("Original-Rcpt-To", "Removal-Recipient")


def _is_arf(mail: Mail) -> bool:
    if mail.get("X-Apple-Unsubscribe").strip().lower() == "true":
        return True  # Apple Mail's unsubscribe button: the recipient asks to be left alone
    if "hotmail.com" in mail.sender and "complaint about message" in mail.subject.lower():
        return True  # Microsoft's JMRP: the complained message attached, no report part
    ctype = mail.msg.get_content_type()
    report_type = (mail.msg.get_param("report-type") or "") if ctype == "multipart/report" else ""
    if str(report_type).lower() == "feedback-report" or mail.parts_of("message/feedback-report"):
        return True
    # Microsoft's and Yahoo's older loops: a feedback notice without the MIME type
    return "feedback-type:" in mail.full_text.lower() and "user-agent:" in mail.full_text.lower()


def _fields(mail: Mail) -> dict[str, str]:
    """The report's fields; a field given more than once (Original-Rcpt-To) is joined."""
    out: dict[str, str] = {}
    for part in mail.parts_of("message/feedback-report"):
        payload = part.get_payload()
        body = ""
        if isinstance(payload, list):  # the parser may read it as a message of headers
            for sub in payload:
                if isinstance(sub, Message):
                    body += "\n".join(f"{k}: {v}" for k, v in sub.raw_items()) + "\n"
                    body += part_text(sub)
        else:
            body = part_text(part)
        for line in body.splitlines():
            name, colon, value = line.partition(":")
            if colon and name.strip():
                key = name.strip().lower()
                out[key] = f"{out[key]}, {value.strip()}" if key in out else value.strip()
    return out


def parse(mail: Mail) -> list[Found] | None:
    if not _is_arf(mail):
        return None
    fields = _fields(mail)
    addresses: list[str] = []
    for name in _FIELDS:
        addresses += ADDRESS_RE.findall(fields.get(name.lower(), ""))
    if not addresses:
        for returned in mail.returned:
            addresses += ADDRESS_RE.findall(header(returned, "X-HmXmrOriginalRecipient"))
            addresses += ADDRESS_RE.findall(header(returned, "To"))
    if not addresses and mail.get("X-Apple-Unsubscribe"):
        addresses += ADDRESS_RE.findall(mail.get("From"))
    if not addresses:  # no MIME structure (Yahoo's older loop): the inline copy's To
        for line in mail.full_text.splitlines():
            if line.lower().startswith("to:"):
                addresses += ADDRESS_RE.findall(line)
                break
    feedback = fields.get("feedback-type", "abuse")
    seen: set[str] = set()
    found = []
    for address in addresses:
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        found.append(Found(address, diagnostic=f"Feedback-Type: {feedback}", hint="feedback"))
    return found
