"""RFC 3834 automatic answers (vacation, 不在): they reach the return path (§4) but say
nothing about delivery. Reason `vacation`, class none."""

from __future__ import annotations

import re

from ..mail import ADDRESS_RE, Mail
from ..model import Found

_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Vacation")
_SUBJECT_RE = re.compile(
    # anchored at the start: a bounce may quote our own subject, and the city sends posts
    # about 不在者投票 (absentee voting), which is not 不在 (away)
    r"^\s*(?:(?:re|fwd?|aw)\s*[:：]\s*)*[\[［【(（]?\s*"
    r"(?:自動(?:応答|返信|返答)|不在(?!者)|休暇|out of (?:the )?office|automatic reply|"
    r"auto[- ]?(?:reply|response)|autoreply|vacation|abwesenheit|absence)"
    r"|不在(?:の)?(?:お知らせ|通知|連絡|案内)",
    re.IGNORECASE,
)
_ROBOT_FROM = ("mailer-daemon", "mailerdaemon", "postmaster", "mail delivery")


def _why(mail: Mail) -> str | None:
    sender = mail.sender
    if any(r in sender for r in _ROBOT_FROM) or mail.get("X-Failed-Recipients"):
        return None  # bounces carry Auto-Submitted too: a mail system is not on vacation
    auto = mail.get("Auto-Submitted").strip().lower()
    token = re.split(r"[\s;(]", auto, maxsplit=1)[0]
    if token == "auto-replied":
        return "Auto-Submitted: auto-replied (RFC 3834 §5)"
    for name in _HEADERS:
        if mail.get(name):
            return f"{name} header"
    if mail.get("Precedence").strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    if _SUBJECT_RE.search(mail.subject):
        return "auto-reply subject"
    return None


def parse(mail: Mail) -> list[Found] | None:
    why = _why(mail)
    if why is None:
        return None
    # the one who answered is the recipient the answer is about
    addresses = ADDRESS_RE.findall(mail.get("From")) or ADDRESS_RE.findall(mail.get("Sender"))
    return [Found(a, diagnostic=why, hint="vacation") for a in addresses[:1]]
