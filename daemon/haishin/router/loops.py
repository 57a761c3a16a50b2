"""When not to answer (RFC 3834 §2, §5): a reply to the wrong mail starts a loop or
turns the service into a tool for backscatter.

`why_not_answer` returns the reason as a `NoAnswer` member, or None when an automatic
answer is allowed; callers decide on the member, and log its `why`.
"""

from __future__ import annotations

import enum
from email.message import EmailMessage

from ..mailtext.compose import LOOP_HEADER
from ..mailtext.mailbox import mailbox

_BULK_PRECEDENCE = {"bulk", "list", "junk"}
_ROBOT_LOCALS = ("mailer-daemon", "postmaster", "noreply", "no-reply")


class NoAnswer(enum.StrEnum):
    """Why a message must not be answered automatically; `why` cites the rule."""

    why: str

    def __new__(cls, value: str, why: str) -> NoAnswer:
        member = str.__new__(cls, value)
        member._value_ = value
        member.why = why
        return member

    NULL_SENDER = "null-sender", "null sender (RFC 3834 §2: never answer a bounce)"
    NO_SENDER = "no-sender", "no usable sender address"
    AUTO_SUBMITTED = "auto-submitted", "Auto-Submitted other than no (RFC 3834 §5)"
    PRECEDENCE = "precedence", "Precedence bulk/list/junk (RFC 3834 §2)"
    LIST = "list", "list traffic (List-Id, RFC 3834 §2)"
    OWN_MAIL = "own-mail", "our own mail came back (its loop header)"
    REPORT = "report", "a delivery or disposition report (RFC 3464, RFC 8098)"
    OWN_DOMAIN = "own-domain", "our own domain (RFC 3834 §2: do not answer our own mail)"
    ROBOT = "robot", "a robot address (RFC 3834 §2: mailer-daemon, postmaster, noreply)"


def why_not_answer(
    msg: EmailMessage, mail_from: str, sender: str | None, domain: str
) -> NoAnswer | None:
    if not mail_from:
        return NoAnswer.NULL_SENDER
    if sender is None:
        return NoAnswer.NO_SENDER
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return NoAnswer.AUTO_SUBMITTED
    if str(msg.get("Precedence", "")).strip().lower() in _BULK_PRECEDENCE:
        return NoAnswer.PRECEDENCE
    if msg.get("List-Id") is not None:
        return NoAnswer.LIST
    if msg.get(LOOP_HEADER) is not None:
        return NoAnswer.OWN_MAIL
    if msg.get_content_type() == "multipart/report":
        return NoAnswer.REPORT
    for address in (mail_from, sender):
        box = mailbox(address)
        if box is None:
            continue
        local, _, dom = box.lower().rpartition("@")
        if dom == domain.lower():
            return NoAnswer.OWN_DOMAIN
        if local in _ROBOT_LOCALS or local.startswith("mailer-daemon"):
            return NoAnswer.ROBOT
    return None
