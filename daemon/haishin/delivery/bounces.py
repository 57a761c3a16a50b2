"""What came back to a `<slug>-bounces+<token>@` address, classified (issue 6, item 6).

`classify` is pure: the raw bytes and the envelope recipient's local part in, a
`BounceReport` out, never an exception. The checks run in the order of how far each kind
of evidence can be trusted:

1. an RFC 3464 delivery status notification: machine-readable, one block per recipient,
   each with an RFC 3463 status code;
2. an auto-reply (RFC 3834): vacation answers go to the return path (RFC 3834 §4), so
   they arrive here too, but they say nothing about delivery and are ignored;
3. flufl.bounce's detectors for the formats older MTAs write (Exim, qmail, ...), refined
   by any status code written next to the address;
4. the phrases of formats no detector knows, such as the Japanese carriers' own notices;
5. otherwise unknown, with the reason.

Addresses in the result are personal data (第4条): reprs and reasons never show one, and
diagnostic texts keep only the domain of any address they quote.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import errors, policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser

from flufl.bounce import all_failures

from .. import addresses as contract


class BounceKind(enum.StrEnum):
    PERMANENT = "permanent"  # RFC 3463 §3.1 class 5: the address will not work
    TEMPORARY = "temporary"  # class 4, Action: delayed, or a full mailbox (see _kind)
    UNKNOWN = "unknown"  # something came back but we cannot tell what; or it is broken
    AUTO_REPLY = "auto-reply"  # RFC 3834 automatic answer: not a bounce, ignore
    NO_FAILURE = "no-failure"  # a DSN reporting only delivered/relayed/expanded: ignore


class Evidence(enum.StrEnum):
    """Where the classification came from."""

    DSN = "dsn"
    AUTO_REPLY = "auto-reply"
    FLUFL = "flufl.bounce"
    TEXT = "text"
    SMTP = "smtp"  # a 5xx reply while we were sending: no report mail at all
    NONE = "none"


@dataclass(frozen=True, slots=True)
class VerpAddress:
    """`<slug>-bounces+<token>`: the router checks the token's HMAC, not this module."""

    slug: str
    token: str


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    address: str = field(repr=False)  # personal data: never in a repr or a log
    kind: BounceKind
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"
    action: str | None = None  # RFC 3464 §2.3.3, when the report was a DSN
    diagnostic: str = ""  # what the remote side said, addresses reduced to ***@domain

    @property
    def masked(self) -> str:
        return mask(self.address)


@dataclass(frozen=True, slots=True)
class BounceReport:
    kind: BounceKind
    reason: str  # one line for people and logs; never contains a full address
    verp: VerpAddress | None = None
    recipients: tuple[FailedRecipient, ...] = ()
    evidence: Evidence = Evidence.NONE
    defects: tuple[str, ...] = ()  # email.errors defect names found outside the returned copy

    @property
    def ignore(self) -> bool:
        """Not a delivery failure at all: no score changes."""
        return self.kind in (BounceKind.AUTO_REPLY, BounceKind.NO_FAILURE)


# --- the envelope recipient ------------------------------------------------------------

_TOKEN_RE = re.compile(rf"[a-z2-7]{{1,{contract.TOKEN_MAX_LEN}}}")
"""Lower-case base32 (RFC 4648 §6 alphabet), as tokens.py writes it."""


def parse_verp(local_part: str | None) -> VerpAddress | None:
    """Slug and token of `<slug>-bounces+<token>`, or None for any other local part.

    Case-insensitive: some mail servers lowercase (or uppercase) the local part, and the
    address contract chose base32 and lower-case slugs to survive that.
    """
    if not local_part:
        return None
    base, plus, token = local_part.lower().partition("+")
    if not plus or not base.endswith(contract.BOUNCES):
        return None
    slug = base.removesuffix(contract.BOUNCES)
    if not contract.SLUG_RE.match(slug) or not _TOKEN_RE.fullmatch(token):
        return None
    return VerpAddress(slug, token)


# --- small text helpers -----------------------------------------------------------------

_ADDRESS_RE = re.compile(r"[^\s<>\"'(),;:@\[\]]+@([A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])")
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
"""RFC 3463 §2: class "." subject "." detail."""
_REPLY_CODE_RE = re.compile(r"(?<![\w.#])([245])[0-9]{2}(?=[ -])")
"""An RFC 5321 §4.2 reply code in running text."""


def mask(address: str) -> str:
    """`***@domain`: enough to see a carrier's trouble, not enough to name a person."""
    _, at, domain = address.rpartition("@")
    return f"***@{domain}" if at else "***"


def _mask_all(text: str) -> str:
    return _ADDRESS_RE.sub(lambda m: "***@" + m.group(1), text)


def mask_addresses(text: str) -> str:
    """Every address in `text` reduced to `***@domain` (第4条: none in clear)."""
    return _mask_all(text)


def _header(msg: Message, name: str) -> str | None:
    """A header as text, None when absent. policy.default parses address headers on
    access, and CPython 3.11's parser raises IndexError on an angle address cut short
    ("From: Name <user@ex"), as a truncated bounce has: such a header reads as empty."""
    try:
        value = msg.get(name)
    except (IndexError, ValueError, TypeError, AttributeError):
        return ""
    return None if value is None else str(value)


def _squash(text: str) -> str:
    """Unfold and collapse whitespace: folded DSN fields keep their indentation."""
    return " ".join(text.split())


def _status_in(text: str) -> tuple[str, str, str] | None:
    m = _STATUS_RE.search(text)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def _class_in(text: str) -> str | None:
    """The class digit of the first enhanced code, else of the first SMTP reply code."""
    if status := _status_in(text):
        return status[0]
    m = _REPLY_CODE_RE.search(text)
    return m.group(1) if m else None


_MAILBOX_FULL_RE = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota (?:exceeded|full)|exceeded (?:the )?(?:storage|quota)"
    r"|容量(?:超過|オーバー|不足|が不足)|満杯",
    re.IGNORECASE,
)
_PERMANENT_RE = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox)|no mailbox|"
    r"recipient not found|does not exist|account (?:is )?disabled|invalid recipient|"
    r"宛先不明|存在しません|存在しない|見つかりません",
    re.IGNORECASE,
)


def _kind(action: str, status: tuple[str, str, str] | None, text: str) -> BounceKind | None:
    """One recipient's outcome from its Action, Status and diagnostic text.

    A full mailbox is temporary even with class 5: RFC 3463 §3.3 says X.2.2 "should be
    used as a persistent transient failure" (the owner can make room), and phones fill
    up and empty again. It still counts, at the temporary weight, so a mailbox that stays
    full is disabled in the end. A class-4 status with Action: failed (an MTA gave up
    after retrying, e.g. a host down for days) is temporary too: the address may be fine.
    """
    if action in ("delivered", "relayed", "expanded"):  # RFC 3464 §2.3.3: not failures
        return None
    if action == "delayed":
        return BounceKind.TEMPORARY
    if (status and status[1:] == ("2", "2")) or _MAILBOX_FULL_RE.search(text):
        return BounceKind.TEMPORARY
    cls = status[0] if status else _class_in(text)
    if cls == "4":
        return BounceKind.TEMPORARY
    if cls == "5" or action in ("failed", "error"):  # "error": OpenSMTPD's non-standard word
        return BounceKind.PERMANENT
    if _PERMANENT_RE.search(text):
        return BounceKind.PERMANENT
    return BounceKind.UNKNOWN


def _overall(recipients: tuple[FailedRecipient, ...]) -> BounceKind:
    kinds = {r.kind for r in recipients}
    for kind in (BounceKind.PERMANENT, BounceKind.TEMPORARY, BounceKind.UNKNOWN):
        if kind in kinds:
            return kind
    return BounceKind.NO_FAILURE


def _summary(recipients: tuple[FailedRecipient, ...]) -> str:
    return ", ".join(f"{r.kind} {r.status or '-'} {r.masked}" for r in recipients)


# --- the MIME structure -----------------------------------------------------------------

_RETURNED = ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers")
"""The returned copy of our own post: MTAs cut it at a size limit (Postfix
bounce_size_limit), so its defects say nothing about the report around it."""

_BROKEN = (
    errors.NoBoundaryInMultipartDefect,
    errors.StartBoundaryNotFoundDefect,
    errors.CloseBoundaryNotFoundDefect,
    errors.MultipartInvariantViolationDefect,
    errors.MissingHeaderBodySeparatorDefect,
    errors.FirstHeaderLineIsContinuationDefect,
)
"""Defects that mean the report itself was cut or mangled, not merely untidy headers."""


def _outer_parts(part: EmailMessage) -> Iterator[EmailMessage]:
    """The report's own parts, not the returned copy nor the DSN field blocks."""
    yield part
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in part.iter_parts():
            if isinstance(sub, EmailMessage) and sub.get_content_type() not in _RETURNED:
                yield from _outer_parts(sub)


def _text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, bad transfer encoding
        raw = part.get_payload(decode=True)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""


_COPY_FOLLOWS_RE = re.compile(
    r"^\s*-+ ?(?:This is a copy of|Below this line is a copy|Original message|"
    r"The header of the original)",
    re.IGNORECASE | re.MULTILINE,
)


def _readable(msg: EmailMessage) -> str:
    """The human-readable text of the report, cut where the returned copy begins."""
    texts = [_text(p) for p in _outer_parts(msg) if p.get_content_type() == "text/plain"]
    text = "\n\n".join(texts)
    if m := _COPY_FOLLOWS_RE.search(text):
        text = text[: m.start()]
    return text


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


# --- 1. RFC 3464 delivery status notifications -------------------------------------------

_DIAGNOSTIC_TYPE_RE = re.compile(r"^[A-Za-z][\w-]*\s*;\s*")
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 6533 §6.2


def _dsn_blocks(part: EmailMessage) -> list[Message]:
    """The field blocks of a delivery-status part (RFC 3464 §2.1)."""
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]  # the parser split the blocks
    # RFC 6533 §6.2 message/global-delivery-status: the parser reads it as one message whose
    # headers are the first block and whose body holds the others, as UTF-8 text
    carrier: Message = part
    blocks: list[Message] = []
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        carrier = payload[0]
        blocks = [carrier]
    raw = carrier.get_payload(decode=True)  # bytes as sent: get_payload() would lose UTF-8
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    parser = HeaderParser(policy=policy.default)
    return blocks + [parser.parsestr(block) for block in _paragraphs(text)]


def _recipient_address(block: Message) -> str | None:
    """Original-Recipient (what we sent, RFC 3464 §2.3.1), else Final-Recipient (§2.3.2)."""
    for name in ("Original-Recipient", "Final-Recipient"):
        value = _header(block, name) or ""
        kind, semi, address = value.partition(";")
        if not semi:  # seen in the wild: "Final-Recipient: <user@host>"
            kind, address = "rfc822", value
        address = _squash(address).strip("<>")
        if kind.strip().lower() in ("rfc822", "utf-8") and "@" in address:
            return address
    return None


def _from_dsn(msg: EmailMessage) -> tuple[FailedRecipient, ...] | None:
    """Failed and delayed recipients; None when no DSN names any recipient.

    A report whose recipient blocks cannot be read (cut, or sent base64-encoded against
    RFC 3464 §2.1) is left to the later steps rather than read as "no failure".
    """
    parts = [p for p in _outer_parts(msg) if p.get_content_type() in _DSN_TYPES]
    found: list[FailedRecipient] = []
    named = False
    for part in parts:
        # the first block is about the message (§2.2), the rest one per recipient (§2.3)
        for block in _dsn_blocks(part)[1:]:
            address = _recipient_address(block)
            if address is None:
                continue
            named = True
            action_field = (_header(block, "Action") or "").strip().lower()
            action = m.group(0) if (m := re.match(r"[a-z]+", action_field)) else ""
            status = _status_in(_header(block, "Status") or "")
            # RFC 3464 §2.3.6: diagnostic-type ";" text, e.g. "smtp; 550 5.1.1 ..."
            diagnostic = _DIAGNOSTIC_TYPE_RE.sub(
                "", _squash(_header(block, "Diagnostic-Code") or "")
            )
            kind = _kind(action, status, diagnostic)
            if kind is None:
                continue
            found.append(
                FailedRecipient(
                    address=address,
                    kind=kind,
                    status=".".join(status) if status else None,
                    action=action or None,
                    diagnostic=_mask_all(diagnostic),
                )
            )
    return tuple(found) if named else None


# --- 2. auto-replies ------------------------------------------------------------------------

_ROBOTS = ("mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "microsoftexchange")
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Vacation")
_AUTO_REPLY_SUBJECT_RE = re.compile(
    # anchored at the start: a bounce may quote our own subject, and the city sends posts
    # about 不在者投票 (absentee voting), which is not 不在 (away); not 自動送信 either,
    # which Japanese ISPs also put on their bounces
    r"^\s*(?:(?:re|fwd?)\s*[:：]\s*)*[\[［【(（]?\s*"
    r"(?:自動(?:応答|返信|返答)|不在(?!者)|休暇|out of (?:the )?office|automatic reply|"
    r"auto[- ]?reply|autoreply|vacation)"
    r"|不在(?:の)?(?:お知らせ|通知|連絡|案内)",
    re.IGNORECASE,
)


def _from_robot(msg: EmailMessage) -> bool:
    mailbox = (_header(msg, "From") or "").lower()
    return any(robot in mailbox for robot in _ROBOTS)


def _auto_reply(msg: EmailMessage) -> str | None:
    """Why this looks like an automatic answer, or None.

    Bounces carry Auto-Submitted: auto-replied too (Postfix, Exim and Gmail all add it),
    so a header alone is not enough: the sender must not be a mail system, and the
    message must not name failed recipients.
    """
    if _from_robot(msg) or _header(msg, "X-Failed-Recipients") is not None:
        return None
    auto = (_header(msg, "Auto-Submitted") or "").strip().lower()
    token = re.split(r"[\s;(]", auto, maxsplit=1)[0]
    if token and token != "no":
        return f"Auto-Submitted: {token} (RFC 3834 §5)"
    for name in _AUTO_REPLY_HEADERS:
        if _header(msg, name) is not None:
            return f"{name} header"
    if (_header(msg, "Precedence") or "").strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    if _AUTO_REPLY_SUBJECT_RE.search(_header(msg, "Subject") or ""):
        return "auto-reply subject (不在/自動応答/Out of Office)"
    return None


# --- 3. flufl.bounce, 4. text ---------------------------------------------------------------


def _context(text: str, address: str) -> str:
    """The paragraph that names the address: where MTAs write why it failed."""
    low = address.lower()
    for para in _paragraphs(text):
        if low in para.lower():
            return para
    return ""


def _from_flufl(msg: EmailMessage, text: str) -> tuple[FailedRecipient, ...]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        # all_failures re-raises any detector's error and stops there (its _scan.py);
        # flufl.bounce 6.0's Yale detector fails on a message without a From address
        # (getaddresses(...)[0]), common in cut bounces. The text step still runs.
        return ()
    found: list[FailedRecipient] = []
    for raw, kind in [(a, BounceKind.TEMPORARY) for a in sorted(temporary)] + [
        (a, BounceKind.PERMANENT) for a in sorted(permanent - temporary)
    ]:
        address = raw.decode("ascii", "replace")
        context = _squash(_context(text, address))
        status = _status_in(context)
        if kind is BounceKind.PERMANENT:
            # detectors without a notion of temporary report everything as permanent
            kind = _kind("failed", status, context) or kind
        found.append(
            FailedRecipient(
                address=address,
                kind=kind,
                status=".".join(status) if status else None,
                diagnostic=_mask_all(context)[:300],
            )
        )
    return tuple(found)


_BRACKETED_RE = re.compile(r"<([^<>\s@]+@[A-Za-z0-9.-]+)>")


def _from_text(text: str) -> tuple[FailedRecipient, ...]:
    """Formats no detector knows (au/EZweb, many Japanese ISPs): `<address>: reason`."""
    found: list[FailedRecipient] = []
    seen: set[str] = set()
    for para in _paragraphs(text):
        squashed = _squash(para)
        if not (_PERMANENT_RE.search(squashed) or _MAILBOX_FULL_RE.search(squashed)):
            continue
        for address in _BRACKETED_RE.findall(para):
            if address.lower() in seen or address.split("@")[0].lower() in _ROBOTS:
                continue
            seen.add(address.lower())
            status = _status_in(squashed)
            kind = _kind("", status, squashed) or BounceKind.UNKNOWN
            found.append(
                FailedRecipient(
                    address=address,
                    kind=kind,
                    status=".".join(status) if status else None,
                    diagnostic=_mask_all(squashed)[:300],
                )
            )
    return tuple(found)


# --- classify ---------------------------------------------------------------------------


def classify(raw: bytes, rcpt_local_part: str | None) -> BounceReport:
    """Classify a message that arrived at a bounce address. Never raises."""
    verp = parse_verp(rcpt_local_part)
    if not raw.strip():
        return BounceReport(BounceKind.UNKNOWN, "empty message", verp)
    try:
        return _classify(raw, verp)
    except Exception as exc:
        # the stdlib parser and flufl.bounce's detectors (which re-raise, see its
        # _scan.py) both have known crashes on hostile input; a bounce must not stop the
        # router, and what cannot be read is exactly "unknown"
        return BounceReport(BounceKind.UNKNOWN, f"unreadable: {type(exc).__name__}", verp)


def _classify(raw: bytes, verp: VerpAddress | None) -> BounceReport:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    defects = tuple(type(d).__name__ for p in _outer_parts(msg) for d in p.defects)
    broken = sorted(
        {type(d).__name__ for p in _outer_parts(msg) for d in p.defects if isinstance(d, _BROKEN)}
    )
    report = _read(msg, verp, defects)
    if broken and report.kind is not BounceKind.AUTO_REPLY:
        # a cut report may have lost the very block that would change the verdict; keep
        # what was read as evidence, but do not let it weigh as a sure bounce
        return BounceReport(
            BounceKind.UNKNOWN,
            f"malformed MIME ({', '.join(broken)}); read as: {report.kind}",
            verp,
            report.recipients,
            report.evidence,
            defects,
        )
    return report


def _read(msg: EmailMessage, verp: VerpAddress | None, defects: tuple[str, ...]) -> BounceReport:
    dsn = _from_dsn(msg)
    if dsn is not None:
        kind = _overall(dsn)
        reason = f"RFC 3464 report: {_summary(dsn)}" if dsn else "RFC 3464 report without failures"
        return BounceReport(kind, reason, verp, dsn, Evidence.DSN, defects)
    if why := _auto_reply(msg):
        return BounceReport(BounceKind.AUTO_REPLY, why, verp, (), Evidence.AUTO_REPLY, defects)
    text = _readable(msg)
    if found := _from_flufl(msg, text):
        reason = f"flufl.bounce: {_summary(found)}"
        return BounceReport(_overall(found), reason, verp, found, Evidence.FLUFL, defects)
    if found := _from_text(text):
        reason = f"text: {_summary(found)}"
        return BounceReport(_overall(found), reason, verp, found, Evidence.TEXT, defects)
    return BounceReport(
        BounceKind.UNKNOWN, "no failure report recognised", verp, (), Evidence.NONE, defects
    )


def smtp_failure(address: str, reply: str) -> BounceReport:
    """A 5xx reply to RCPT or DATA while we were sending (`reply`: code and text).

    RFC 5321 §4.2.1: 5yz is a permanent negative completion, so it weighs as a hard
    bounce, except a full mailbox (X.2.2), which RFC 3463 §3.3 calls persistent transient,
    the same exception the reports above get.
    """
    text = _squash(reply)
    status = _status_in(text)
    kind = _kind("failed", status, text) or BounceKind.PERMANENT
    failed = FailedRecipient(
        address=address,
        kind=kind,
        status=".".join(status) if status else None,
        action="failed",
        diagnostic=_mask_all(text)[:300],
    )
    return BounceReport(kind, f"SMTP reply: {_summary((failed,))}", None, (failed,), Evidence.SMTP)
