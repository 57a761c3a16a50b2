"""Build the daemon's own messages with `email.policy.SMTP` (CRLF, RFC 5322 folding).

Every message carries `Auto-Submitted` (RFC 3834 §5) and our loop header, so that our own
mail never triggers our own answers.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from email import policy
from email.message import EmailMessage

from ..registry.model import JST

LOOP_HEADER = "X-Haishin-Loop"
"""Set on every message the daemon sends; its return means the mail is our own."""


def _display(name: str, address: str) -> str:
    return email.utils.formataddr((name, address))


def compose(
    *,
    from_name: str,
    from_addr: str,
    to: str,
    subject: str,
    body: str,
    domain: str,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    auto: str = "auto-replied",
    extra: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _display(from_name, from_addr)
    # the recipient as written: carrier addresses such as abc..def@docomo.ne.jp must not
    # be rewritten into a quoted form that some phones do not recognise as theirs
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(dt.datetime.now(JST))
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    if reply_to:
        msg["Reply-To"] = reply_to
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["Auto-Submitted"] = auto
    msg[LOOP_HEADER] = domain
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body, charset="utf-8", cte="base64")
    return msg


def to_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=policy.SMTP)
