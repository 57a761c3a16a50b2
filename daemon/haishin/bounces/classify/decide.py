"""From what a parser found to a verdict: the order in which the evidence is weighed.

| step | evidence | why it comes here |
|---|---|---|
| 1 | the format's own verdict (feedback report, auto-reply, success DSN) | the format settles it |
| 2 | the receiving provider's rule (rhost.py) | a provider's words mean what it is known to mean |
| 3 | a fixed sentence of the format (a carrier's notice, a delay DSN) | the reporter says it |
| 4 | the reply text through the reason table, unless it found only a vague reason and the status code is specific | what the remote side said |
| 5 | the RFC 3463 status code (the remote side's own code first, then the reporter's) | machine-readable |
| 6 | the SMTP command that was refused, and the reply class (`adjust`) | "user unknown" after DATA is a filter, a 4xx is not final |
| 7 | nothing known: `onhold` / `undefined` (temporary) | never permanent on no evidence |
"""

from __future__ import annotations

import re

from . import reasons, rhost
from .mail import ADDRESS_RE, REPLY_RE, STATUS_RE, command_in
from .model import BounceClass, Found, Judged

_EVIDENCE_MAX = 300

# text reasons that say less than a specific status code beside them
_VAGUE_TEXT = frozenset(
    {
        "rejected",
        "systemerror",
        "contenterror",
        "syntaxerror",
        "notcompliantrfc",
        "expired",
        "networkerror",
        "securityerror",
        "mesgtoobig",
    }
)


_LOCAL_VERDICT = re.compile(
    r"recipient name is not recognized|not listed in (?:the )?(?:domino directory|public name)|"
    r"unknown user:|invalid final delivery userid|no valid recipients|"
    r"no (?:such (?:user|mailbox)|mailbox) here|does not exist here|unknown (?:user|recipient) here",
    re.I,
)
"""The final server's own words about its own mailboxes (Exchange, Domino, Notes, IMail,
MMSC): with no SMTP exchange to quote, the reporter is the one who knows."""


def masked(text: str) -> str:
    """Local parts replaced: an address such as `mailboxfull@` or `spam-trap@` must not
    read as a reason. Domains stay: they name the provider."""
    return ADDRESS_RE.sub(lambda m: "x@" + m.group(1).rpartition("@")[2], text)


def command_of(found: Found, text: str) -> str | None:
    return found.command.upper() if found.command else command_in(text)


def _evidence(found: Found) -> str:
    return " ".join(found.diagnostic.split())[:_EVIDENCE_MAX]


def judge(found: Found) -> Judged:
    text = masked(found.diagnostic)
    status = found.status
    inline = STATUS_RE.search(text)
    if inline and status and inline.group(1) == status[0] and ".".join(inline.groups()) != status:
        # the remote side's own code, quoted in the reply, over the reporter's translation
        status = ".".join(inline.groups())
    elif inline and not status:
        status = ".".join(inline.groups())
    reason, by = _reason(found, status, text)
    if by in ("text", "status", "class"):  # a provider's rule or the format has the last word
        reason = adjust(reason, found, status, text)
    klass = reasons.klass(reason, status, found.reply_code)
    return Judged(
        address=found.address,
        klass=klass,
        reason=reason,
        status=status,
        reply_code=found.reply_code,
        evidence=_evidence(found),
        parser=found.parser,
        decided_by=by,
    )


def _reason(found: Found, status: str | None, text: str) -> tuple[str, str]:
    if found.hint in ("feedback", "vacation", "delivered"):
        return found.hint, "hint"
    probe = Found(
        found.address, status, found.reply_code, text, found.action, found.command, found.rhost
    )
    if refined := rhost.refine(probe, text):
        return refined[1], f"rhost:{refined[0]}"
    if found.hint:
        return found.hint, "hint"
    key = reasons.status_key(status) if status else None
    by_status = reasons.BY_STATUS.get(key) if key else None
    specific = by_status is not None and key not in reasons.VAGUE_STATUSES
    row = reasons.by_text(text)
    if row is not None and row.name == "suspend" and by_status == "userunknown":
        row = None  # "account disabled" boilerplate beside a quoted 5.1.1: the code says more
    if row is not None and not (specific and row.name in _VAGUE_TEXT):
        return row.name, "text"
    if by_status is not None:
        return by_status, "status"
    if row is not None:
        return row.name, "text"
    if found.action == "delayed":
        return "expired", "action"
    five = (status or found.reply_code or "").startswith("5")
    return ("onhold" if five else "undefined"), "class"


def adjust(reason: str, found: Found, status: str | None, text: str) -> str:
    """What the refused command and the reply class change (Sisimai weighs them alike).

    "User unknown" is believed when the status code says so (X.1.x) or the reply
    answered RCPT TO. Otherwise it is a filter's answer: a reply after DATA comes when
    the address was accepted at RCPT, and Japanese carriers answer a recipient's
    受信拒否設定 with "550 Unknown user" after DATA. The final server's own words about its
    own mailboxes ("Unknown user: x" from Exchange, Domino, IMail; no SMTP reply quoted)
    are believed.
    """
    command = command_of(found, text)
    code = status or found.reply_code or ""
    if reason == "userunknown":
        said = reasons.BY_STATUS.get(reasons.status_key(status)) if status else None
        if command in ("MAIL", "CONN", "EHLO", "HELO"):
            return "rejected"  # refused before RCPT: about our sender, not the address
        about_address = (status or "")[1:4] == ".1." and status not in ("5.1.7", "5.1.8")
        unconfirmed = said != "userunknown" and not about_address and command != "RCPT"
        # the final server's own words, no SMTP reply quoted: it knows its own mailboxes
        local = _LOCAL_VERDICT.search(text) and not REPLY_RE.search(text) and command is None
        if unconfirmed and not local:
            return "filtered"
    if reason == "hostunknown":
        if code.startswith("4") or re.search(
            r"not found, try again|try again later|temporar", text, re.I
        ):
            return "networkerror"  # a DNS answer that may change (RFC 5321 §4.2.1: 4yz)
        if command == "MAIL":
            return "rejected"
    return reason


def is_failure(judged: Judged) -> bool:
    return judged.klass is not BounceClass.NONE
