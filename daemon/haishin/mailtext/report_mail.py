"""The monthly report's mail: a plain-text part, the same report in HTML, and its CSV
attached (RFC 2046 multipart/alternative inside multipart/mixed).

Built with the stdlib's `EmailMessage` and `policy.SMTP` (style.md 8): a few mails a
month, where correctness matters more than the hot path's speed (compose.py). No
tracking of any kind: no remote image, no counted link, nothing that reports an opening.
"""

from __future__ import annotations

import email.utils
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

from ..clock import jstnow
from .compose import LOOP_HEADER


def report_mail(
    *,
    from_name: str,
    from_addr: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    csv_name: str,
    csv_bytes: bytes,
    domain: str,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=from_name, addr_spec=from_addr)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(jstnow())
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: not a reply to anything
    msg[LOOP_HEADER] = domain
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    msg.add_attachment(csv_bytes, maintype="text", subtype="csv", filename=csv_name)
    return msg.as_bytes()
