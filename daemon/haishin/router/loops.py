"""When not to answer (RFC 3834 §2, §5): a reply to the wrong mail starts a loop or
turns the service into a tool for backscatter.

`why_not_answer` returns the reason, or None when an automatic answer is allowed.
"""

from __future__ import annotations

from email.message import EmailMessage

from ..mailtext.compose import LOOP_HEADER
from ..mailtext.mailbox import mailbox

_BULK_PRECEDENCE = {"bulk", "list", "junk"}
_ROBOT_LOCALS = ("mailer-daemon", "postmaster", "noreply", "no-reply")


def why_not_answer(
    msg: EmailMessage, mail_from: str, sender: str | None, domain: str
) -> str | None:
    if not mail_from:
        return "null sender (RFC 3834 §2: never answer a bounce)"
    if sender is None:
        return "no usable sender address"
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto.split(';')[0]} (RFC 3834 §5)"
    if str(msg.get("Precedence", "")).strip().lower() in _BULK_PRECEDENCE:
        return "Precedence bulk/list/junk (RFC 3834 §2)"
    if msg.get("List-Id") is not None:
        return "list traffic (List-Id, RFC 3834 §2)"
    if msg.get(LOOP_HEADER) is not None:
        return "our own mail came back"
    if msg.get_content_type() == "multipart/report":
        return "a delivery or disposition report (RFC 3464)"
    for address in (mail_from, sender):
        box = mailbox(address)
        if box is None:
            continue
        local, _, dom = box.lower().rpartition("@")
        if dom == domain.lower():
            return "our own domain (RFC 3834 §2: do not answer our own mail)"
        if local in _ROBOT_LOCALS or local.startswith("mailer-daemon"):
            return "a robot address"
    return None
