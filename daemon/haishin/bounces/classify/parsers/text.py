"""Plain-text bounces (Exim, qmail, Sendmail without DSN, Exchange, Notes, most ISPs).

They differ in layout but agree in substance: the failed address stands on a line of the
report (bare, in angle brackets, after "Recipient:" or before a colon) and the reason
follows it. So one reader serves them: every address of the report's own text that is
not the report's own sender or recipient (ours) is a candidate, and the lines from it to
the next blank line or the next address are its diagnostic.
"""

from __future__ import annotations

import re

from ..mail import (
    ADDRESS_RE,
    DIAGNOSTIC_LIMIT,
    MAX_RECIPIENTS,
    Mail,
    header,
    is_robot,
    reply_in,
    squash,
    status_in,
)
from ..model import Found

_SKIP_LINE_RE = re.compile(
    r"^\s*(?:received|message-id|return-path|from|reply-to|sender|references|in-reply-to|"
    r"dkim-signature|list-[\w-]+|x-[\w-]+|errors-to|mail from|>+\s*mail from|"
    r"envelope-from|resent-[\w-]+|arrival-date|reporting-mta)\s*:",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|returned|failure|failed|delivery|not delivered|non[- ]?delivery|bounce|"
    r"rejected|error|problem|could not|unable|warning|delayed|mail system|notification|"
    r"エラー|不達|送信できません|配信",
    re.IGNORECASE,
)
_ROBOT_SENDER_RE = re.compile(
    r"mailer-?daemon|postmaster|mail delivery|mail administrator|mailsystem|"
    r"microsoftexchange|notify|bounce",
    re.IGNORECASE,
)
_RCPT_RE = re.compile(r"RCPT TO:?\s*<?([^\s<>]+@[^\s<>]+)>?", re.IGNORECASE)


def _ours(mail: Mail) -> set[str]:
    """Addresses that are the report's own sender or recipient (the return path: us)."""
    mine: set[str] = set()
    for name in ("To", "From", "Return-Path", "Reply-To", "Sender", "Errors-To", "Cc"):
        mine.update(a.lower() for a in ADDRESS_RE.findall(mail.get(name)))
    for returned in mail.returned:
        for name in ("From", "Return-Path", "Sender", "Reply-To", "Message-ID"):
            mine.update(a.lower() for a in ADDRESS_RE.findall(header(returned, name)))
    for name in ("Message-ID", "In-Reply-To", "References"):
        mine.update(a.lower() for a in ADDRESS_RE.findall(mail.get(name)))
    return mine


_SENDMAIL_LINE_RE = re.compile(r"^\s*[45]\d\d <?[^\s<>]+@[^\s<>]+>?\.\.\.\s*\S")
_SESSION_RE = re.compile(r"while talking to|^\s*>>> |^\s*<<< ", re.IGNORECASE)


def _session(lines: list[str], i: int) -> list[str]:
    """The SMTP transcript lines just above line `i` (Sendmail: "While talking to host:",
    ">>> MAIL From", "<<< 501 ..."): the exchange that failed for the address below."""
    out: list[str] = []
    for j in range(i - 1, max(-1, i - 8), -1):
        if not _SESSION_RE.search(lines[j]) and not ADDRESS_RE.search(lines[j]):
            break
        out.insert(0, lines[j])
        if "while talking to" in lines[j].lower():
            return out
    return [line for line in out if _SESSION_RE.search(line)]


def looks_like_bounce(mail: Mail) -> bool:
    return bool(
        _ROBOT_SENDER_RE.search(mail.get("From"))
        or _BOUNCE_SUBJECT_RE.search(mail.subject)
        or mail.get("X-Failed-Recipients")
        or mail.msg.get_content_type() == "multipart/report"
        or not mail.get("From")
    )


def extract(mail: Mail, text: str | None = None) -> list[Found]:
    """Every candidate recipient of the report text, each with the lines about it."""
    mine = _ours(mail)
    lines = (mail.text if text is None else text).splitlines()
    starts: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if _SKIP_LINE_RE.match(line):
            continue
        candidates = _RCPT_RE.findall(line) or ADDRESS_RE.findall(line)
        for address in candidates:
            address = address.strip(".'\"")
            low = address.lower()
            if low in mine or low in seen or is_robot(address) or not ADDRESS_RE.fullmatch(address):
                continue
            seen.add(low)
            starts.append((i, address))
        if len(starts) > MAX_RECIPIENTS:
            break  # one more than are judged: it ends the last one's block
    starts = starts[: MAX_RECIPIENTS + 1]
    found: list[Found] = []
    for n, (i, address) in enumerate(starts[:MAX_RECIPIENTS]):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        if len(starts) == 1:  # one recipient: the whole report is about it
            block = lines[max(0, i - 3) : i + 40]
        else:
            block = []
            for j in range(i, min(end, i + 12)):
                if j > i + 1 and not lines[j].strip() and block:
                    break
                block.append(lines[j])
        if _SENDMAIL_LINE_RE.match(lines[i]) and len(starts) > 1:
            block = [lines[i]]  # Sendmail's "554 <addr>... reason": the line is the verdict
        if n + 1 < len(starts) and starts[n + 1][0] == i:
            block = [lines[i]]  # two addresses on one line: the line is all we know of each
        diagnostic = squash("\n".join(_session(lines, i) + block))[:DIAGNOSTIC_LIMIT]
        found.append(
            Found(
                address,
                status=status_in(diagnostic),
                reply_code=reply_in(diagnostic),
                diagnostic=diagnostic,
            )
        )
    return found


def fallback(mail: Mail) -> list[Found]:
    """No address in the text: Exim's X-Failed-Recipients, else the returned copy's To."""
    named = ADDRESS_RE.findall(mail.get("X-Failed-Recipients"))
    if not named:
        for returned in mail.returned:
            named += ADDRESS_RE.findall(header(returned, "To"))
    if not named:  # the copy pasted inline after the report: its To line
        copy = mail.full_text[len(mail.text) :]
        if m := re.search(r"^\s*To:\s*(.+)$", copy, re.M | re.I):
            named += ADDRESS_RE.findall(m.group(1))
    text = squash(mail.text)
    return [
        Found(a, status=status_in(text), reply_code=reply_in(text), diagnostic=text[:600])
        for a in dict.fromkeys(named)
    ]


def parse(mail: Mail) -> list[Found] | None:
    if not looks_like_bounce(mail):
        return None
    found = extract(mail)
    failed = {a.lower() for a in ADDRESS_RE.findall(mail.get("X-Failed-Recipients"))}
    if failed:  # Exim names them exactly: keep its list when the text names more
        found = [f for f in found if f.address.lower() in failed] or found
    return found or fallback(mail) or None
