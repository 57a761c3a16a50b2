"""The bounce classifier (issue 12): per recipient, a class, a reason, a status and the
line that decided, for every report that comes back and every refusal at send time.

In Sisimai's shape (style.md): `parsers/` extract, `reasons/` holds each reason's codes
and wording, `rhost.py` a few rules per receiving provider, `decide.py` the order in
which they are asked. `classify` and `classify_reply` never raise.
"""

from __future__ import annotations

import dataclasses
from email.message import Message

from . import decide
from .mail import DIAGNOSTIC_LIMIT, MAX_RECIPIENTS, Mail, command_in, read
from .model import BounceClass, Classified, Found, Judged
from .parsers import PARSERS, flufl

__all__ = ["BounceClass", "Classified", "Found", "Judged", "classify", "classify_reply"]


def classify(raw: bytes, _depth: int = 0) -> Classified:
    """Every recipient a report names, judged. Never raises: what cannot be read is an
    empty result with the reason in `parser`."""
    if not raw.strip():
        return Classified(parser="empty")
    try:
        mail = read(raw)
    except Exception as exc:  # the stdlib parser has known crashes on hostile input
        return Classified(parser=f"unreadable: {type(exc).__name__}")
    result = _classify(mail)
    if _depth == 0 and all(j.reason in _UNKNOWN for j in result.recipients):
        # a report forwarded as an attachment (a gateway passing on the real one)
        for inner in _attached_reports(mail):
            nested = classify(inner, _depth + 1)
            if nested.recipients and not all(j.reason in _UNKNOWN for j in nested.recipients):
                return dataclasses.replace(nested, parser=f"attached {nested.parser}")
    return result


_UNKNOWN = ("undefined", "onhold")


def _attached_reports(mail: Mail) -> list[bytes]:
    out = []
    for part in mail.msg.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            inner = payload[0]
            if isinstance(inner, Message) and inner.get_content_type() == "multipart/report":
                try:
                    out.append(inner.as_bytes())
                except Exception:  # a copy that cannot be written out again is skipped
                    continue
    return out


def _classify(mail: Mail) -> Classified:
    for name, parse in PARSERS:
        try:
            found = parse(mail)
        except Exception:
            continue
        if found is None:
            continue
        found = found[:MAX_RECIPIENTS]
        if len(found) == 1 and found[0].command is None:
            # one recipient: a command named anywhere in the report is about it
            found = [dataclasses.replace(found[0], command=command_in(mail.text))]
        if name in _WITH_FLUFL:
            found = (found + _also_flufl(mail, found))[:MAX_RECIPIENTS]
        judged = _unique(
            decide.judge(
                dataclasses.replace(
                    f, parser=f.parser or name, diagnostic=f.diagnostic[:DIAGNOSTIC_LIMIT]
                )
            )
            for f in found
        )
        return Classified(judged, name, mail.defects)
    return Classified(parser="none", defects=mail.defects)


_WITH_FLUFL = ("dsn", "carriers", "text")
"""Formats whose reader may miss an address that flufl.bounce's detectors know."""


def _also_flufl(mail: Mail, found: list[Found]) -> list[Found]:
    known = {f.address.lower() for f in found}
    try:
        extra = flufl.parse(mail) or []
    except Exception:
        return []
    return [dataclasses.replace(f, parser="flufl") for f in extra if f.address.lower() not in known]


def _unique(judged: object) -> tuple[Judged, ...]:
    out: dict[str, Judged] = {}
    for j in judged:  # type: ignore[attr-defined]
        out.setdefault(j.address.lower(), j)
    return tuple(out.values())


def classify_reply(address: str, reply: str, command: str | None = None) -> Judged:
    """A 4xx/5xx reply from the smarthost at send time (issue 12, item 1): the same
    table as the reports, with the reply as the diagnostic."""
    from .mail import reply_in, squash, status_in

    text = squash(reply)
    return decide.judge(
        Found(
            address,
            status=status_in(text),
            reply_code=reply_in(text),
            diagnostic=text,
            command=command,
            parser="smtp",
        )
    )
