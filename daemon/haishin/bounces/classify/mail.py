"""Reading a bounce as text: line ends, MIME parts, the report's own words.

Bounces are mangled in transit: CR-only or CRLF line ends, a closing MIME boundary cut
off (issue 12, item 6), charsets the stdlib does not know. Everything here reads what it
can and never raises on content; the parsers get a `Mail` with the pieces they need.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.policy import EmailPolicy
from typing import Any

RETURNED = ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers")
"""The returned copy of our own post: not the report's words."""

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 6533 §6.2

PART_LIMIT = 128 * 1024
"""Characters of each of the report's own parts that are read. A real report's words and
its delivery-status fields fit in a few KB; the returned copy of our post is not a part
of the report (RETURNED). Without a bound every parser, flufl.bounce's detectors too,
works through the whole of a hostile part (a 948 KB part of 40,000 `550 5.1.1 <…>` lines
took 5-7 s, and the router worker waits: issue 11 item 4)."""

MAX_RECIPIENTS = 100
"""Recipients judged per report. A report names the recipients of one delivery attempt:
a few (RFC 3464 §2.3 groups one per recipient; our posts go one recipient per VERP
envelope), so more than this is not a report but a cost (each is judged against the
reason table): the first ones are judged, the rest are not read."""

DIAGNOSTIC_LIMIT = 2100
"""Characters of a recipient's diagnostic that are read. An SMTP reply line is at most
512 octets (RFC 5321 §4.5.3.1.5) and the longest diagnostic in the corpus is 2,076; a
line of 10,000 addresses is every one's diagnostic, and the reason table (30 regular
expressions, about 0.3 µs a character each) over it for each recipient took 30 s. Now
at most MAX_RECIPIENTS × DIAGNOSTIC_LIMIT characters go through the table."""

ADDRESS_RE = re.compile(
    r"(?<![\w.+=-])([\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)
STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]|\d)")
"""RFC 3463 §2: class "." subject "." detail."""
REPLY_RE = re.compile(r"(?<![\w.#/-])([245][0-5][0-9])(?=[ ,;:-]|$)")
"""An RFC 5321 §4.2 reply code in running text."""

ROBOTS = (
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "microsoftexchange",
    "no-reply",
    "noreply",
    "abuse",
)

COPY_FOLLOWS_RE = re.compile(
    r"^[ \t>]*(?:-+|=+|\*+)?[ \t]*(?:This is a copy of|Below this line is a copy|"
    r"Original message(?! was received)|The header of the original|Unsent message below|"
    r"Returned (?:mail|message) follows|Message headers follow|Original message header|"
    r"The original message (?:headers? )?(?:is|was (?!received)|follows)|Text of returned message|"
    r"Start of returned message|Undelivered message headers|Content of the original|"
    r"Your message reads|Headers of your message|Original Message|"
    r"原文|以下.*元のメッセージ|送信したメール)",
    re.IGNORECASE | re.MULTILINE,
)


_COMMANDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "DATA",
        re.compile(
            r"in\s+reply\s+to\s+(?:end\s+of\s+)?DATA|>>>\s*DATA|after\s+(?:end\s+of\s+)?data|"
            r"DATA\s+command|SMTP\s+command\W*DATA\b|\bDATA:\s*[45]\d\d|during\s+DATA",
            re.I,
        ),
    ),
    (
        "MAIL",
        re.compile(
            r"in\s+reply\s+to\s+MAIL\s+FROM|>>>\s*MAIL\s+FROM|after\s+MAIL\s+FROM|"
            r"MAIL\s+FROM\s+command|\[MAIL_FROM\]|SMTP:MAIL\b",
            re.I,
        ),
    ),
    (
        "RCPT",
        re.compile(
            r"in\s+reply\s+to\s+RCPT\s+TO|>>>\s*RCPT\s+TO|after\s+RCPT(?:\s+TO)?|RCPT\s+TO\s+command|"
            r"RCPT\s+command|\[RCPT_TO\]|SMTP:RCPT\b|our\s+RCPT\s+TO|<<<\s*RCPT\s+TO|"
            r"does not like recipient|\bRCPT:\s",
            re.I,
        ),
    ),
)


def command_in(text: str) -> str | None:
    """The SMTP command a quoted reply answered, when the report says (RFC 5321 §4.1.1)."""
    hits = [(m.start(), name) for name, rx in _COMMANDS if (m := rx.search(text))]
    if hits:
        return min(hits)[1]
    # a bare mention ("RCPT TO generated following response: 553 ..."): the last command
    # named before the first refusal is the one refused
    first_reply = m.start() if (m := _FAILING_REPLY_RE.search(text)) else len(text)
    bare = [(m.start(), name) for name, rx in _BARE for m in rx.finditer(text, 0, first_reply)]
    return max(bare)[1] if bare else None


_BARE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("RCPT", re.compile(r"\bRCPT\s+TO\b", re.I)),
    ("MAIL", re.compile(r"\bMAIL\s+FROM\b", re.I)),
    ("DATA", re.compile(r"\bDATA\b")),  # upper case only: "data" is an English word
)
_FAILING_REPLY_RE = re.compile(r"(?<![\w.#/-])[45][0-5]\d(?=[ ,;:-])")


_NOT_WORDS = ("text", "message", "multipart", "image", "application", "audio", "video")


def normalise(raw: bytes) -> bytes:
    """LF line ends: CRLF and CR-only reports parse alike (issue 12, item 6)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def header(msg: Message, name: str) -> str:
    """A header as text, "" when absent or unparseable. policy.default parses address
    headers on access and CPython 3.11 raises on some cut ones ("From: Name <user@ex")."""
    try:
        value = msg.get(name)
    except (IndexError, ValueError, TypeError, AttributeError, LookupError):
        return ""
    return "" if value is None else str(value)


def squash(text: str) -> str:
    """Unfold and collapse whitespace: folded DSN fields keep their indentation."""
    return " ".join(text.split())


def status_in(text: str) -> str | None:
    m = STATUS_RE.search(text)
    return ".".join(m.groups()) if m else None


def reply_in(text: str) -> str | None:
    m = REPLY_RE.search(text)
    return m.group(1) if m else None


def is_robot(address: str) -> bool:
    local = address.partition("@")[0].lower()
    return any(local == r or local.startswith(r + "+") for r in ROBOTS)


def part_text(part: Message) -> str:
    """A text part decoded; an unknown charset or bad encoding is read as well as it can."""
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content
            if isinstance(content, bytes):
                return content.decode("utf-8", "replace")
    except (LookupError, ValueError, AssertionError, KeyError, TypeError, AttributeError):
        pass
    try:
        raw = part.get_payload(decode=True)
    except (LookupError, ValueError, AssertionError, TypeError):
        raw = None
    if isinstance(raw, bytes):
        charset = part.get_content_charset() or "utf-8"
        for candidate in (charset, "iso-2022-jp", "utf-8"):
            try:
                return raw.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                continue
        return raw.decode("utf-8", "replace")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


_TAG_RE = re.compile(r"<(?:br|/p|/div|/tr|/li)[^>]*>|<[^>]+>", re.IGNORECASE)


def _untag(text: str) -> str:
    return html.unescape(_TAG_RE.sub(lambda m: "\n" if m.group(0)[1] in "b/" else " ", text))


def outer_parts(part: Message) -> Iterator[Message]:
    """The report's own parts, not the returned copy."""
    yield part
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message) and sub.get_content_type() not in RETURNED:
                    yield from outer_parts(sub)


@dataclass(frozen=True, slots=True)
class Mail:
    """A bounce, parsed once for every parser."""

    msg: EmailMessage
    text: str  # the report's human-readable words, cut where the returned copy begins
    full_text: str  # all text parts, the returned copy included (for formats that inline it)
    returned: tuple[Message, ...]  # the returned copy's headers, when attached
    defects: tuple[str, ...]

    def get(self, name: str) -> str:
        return header(self.msg, name)

    @property
    def subject(self) -> str:
        return self.get("Subject")

    @property
    def sender(self) -> str:
        return self.get("From").lower()

    def parts_of(self, *types: str) -> list[Message]:
        return [p for p in outer_parts(self.msg) if p.get_content_type() in types]


def _returned(msg: Message) -> tuple[Message, ...]:
    found: list[Message] = []
    for part in msg.walk() if msg.is_multipart() else ():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found.append(payload[0])
        elif ctype in ("text/rfc822-headers", "message/global-headers"):
            found.append(HeaderParser(policy=policy.default).parsestr(part_text(part)))
    return tuple(found)


def _cut(text: str) -> str:
    """The first PART_LIMIT characters, ending at a line end: an encoded payload
    (base64, quoted-printable) cut between lines still decodes."""
    if len(text) <= PART_LIMIT:
        return text
    end = text.rfind("\n", 0, PART_LIMIT)
    return text[: end + 1 if end > 0 else PART_LIMIT]


def _bound(msg: EmailMessage) -> None:
    """Cut each of the report's own parts (and the preamble) to PART_LIMIT, in place, so
    that every parser reads at most that much of each (the part count is bounded before,
    by mailtext/limits.py)."""
    for part in outer_parts(msg):
        if isinstance(part.preamble, str):
            part.preamble = _cut(part.preamble)
        payload = part.get_payload()
        if isinstance(payload, str) and len(payload) > PART_LIMIT:
            part.set_payload(_cut(payload))
        elif isinstance(payload, list) and part.get_content_type() in DSN_TYPES:
            # the stdlib splits a delivery-status part into its field blocks: the
            # per-message block, then one per recipient (RFC 3464 §2.1)
            del payload[MAX_RECIPIENTS + 1 :]


@functools.lru_cache(maxsize=256)
def _header(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


class _ReadPolicy(EmailPolicy):
    """policy.default, with each parsed header kept for the next ask (header objects are
    immutable strings). The stdlib's parser asks a delivery-status part for its parsed
    Content-Type once per field block (feedparser `_new_message`): 12,000 blocks took
    1 s of parsing alone, 0.2 s with the cache."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):  # already parsed (the stdlib's own shortcut)
            return value
        return _header(name, value)


_POLICY = _ReadPolicy()


def read(raw: bytes) -> Mail:
    """Parse `raw` (any line ends). Raises only on what the stdlib parser cannot survive."""
    data = normalise(raw)
    if data.startswith(b"From "):  # an mbox separator line, as saved by many tools
        data = data.partition(b"\n")[2]
    msg = BytesParser(policy=_POLICY).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    _bound(msg)
    texts: list[str] = []
    if isinstance(msg.preamble, str) and len(msg.preamble.strip()) > 80:
        texts.append(msg.preamble)  # some reporters write the report before the first part
    for part in outer_parts(msg):
        if part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), str):
            texts.append(part_text(part))  # no boundary found (a report cut short): read it whole
            continue
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype == "text/html":
            texts.append(_untag(part_text(part)))
        elif ctype == "text/plain" or part.get_content_maintype() not in _NOT_WORDS:
            texts.append(part_text(part))  # text/plain, or a part mislabelled (x-unknown)
    full = "\n\n".join(texts)
    text = full
    if m := COPY_FOLLOWS_RE.search(text):
        text = text[: m.start()]
    defects = tuple(type(d).__name__ for p in outer_parts(msg) for d in p.defects)
    return Mail(msg, text, full, _returned(msg), defects)
