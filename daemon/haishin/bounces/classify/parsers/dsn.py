"""RFC 3464 delivery status notifications: one field block per recipient.

Only extraction: Final-Recipient, Action, Status, Diagnostic-Code, Remote-MTA. The field
blocks are read as text, not trusted to MIME: reporters run the blocks together without
the blank line (§2.1), send them base64-encoded or UTF-8 (RFC 6533), or paste them into
a plain-text report. When the Diagnostic-Code is missing or says less than the
human-readable part, the paragraph of the report that names the recipient is kept too.
"""

from __future__ import annotations

import dataclasses
import re
from email.message import Message

from ..mail import DSN_TYPES, MAX_RECIPIENTS, Mail, header, part_text, reply_in, squash, status_in
from ..model import Found

_DIAGNOSTIC_TYPE_RE = re.compile(r"^[A-Za-z][\w-]*\s*;\s*")
_NOT_FAILURES = ("delivered", "relayed", "expanded")  # RFC 3464 §2.3.3
_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*:\s?(.*)$")
_STARTS = ("final-recipient", "original-recipient")


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _utf8(text: str) -> str:
    """UTF-8 header bytes (RFC 6533 §3 allows them in a global DSN) that the stdlib kept
    as surrogate escapes, read as UTF-8."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _part_as_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib split the blocks into header-only messages
        out = []
        for sub in payload:
            if isinstance(sub, Message):
                out.append("".join(f"{k}: {_utf8(str(v))}\n" for k, v in sub.raw_items()))
                body = sub.get_payload(decode=True)  # bytes as sent: UTF-8 in a global DSN
                out.append(
                    body.decode("utf-8", "replace") if isinstance(body, bytes) else part_text(sub)
                )
            out.append("\n")
        return "".join(out)
    return part_text(part)


def recipient_blocks(text: str) -> list[dict[str, str]]:
    """Per-recipient field blocks. A paragraph is a block (RFC 3464 §2.1); a paragraph
    that names several recipients without the blank line is split at each one, and the
    fields before its first recipient field belong to the first."""
    blocks: list[dict[str, str]] = []
    for para in _paragraphs(text):
        fields: list[tuple[str, str]] = []
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}")
            elif m := _FIELD_RE.match(line):
                fields.append((m.group(1).lower(), m.group(2).strip()))
        current: dict[str, str] = {}
        mine: list[dict[str, str]] = [current]
        for name, value in fields:
            if name in _STARTS and name in current:
                current = {}
                mine.append(current)
            current.setdefault(name, value)
        blocks += [b for b in mine if any(k in b for k in _STARTS)]
    return blocks


_UNITEXT_RE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_XTEXT_RE = re.compile(r"\+([0-9A-F]{2})")


def decode_address(kind: str, address: str, *, xtext: bool) -> str:
    """An address as a DSN encodes it, decoded: RFC 6533 §3 writes non-ASCII of a
    `utf-8` address as `\\x{HEX}`; an Original-Recipient copies the ORCPT parameter,
    which RFC 3461 §4 writes as xtext (`+2B` for "+")."""
    address = _UNITEXT_RE.sub(lambda m: chr(int(m.group(1), 16)), address)
    if xtext and ("+" in address and _XTEXT_RE.search(address)):
        address = _XTEXT_RE.sub(lambda m: chr(int(m.group(1), 16)), address)
    return address


def _address(fields: dict[str, str]) -> str | None:
    """Final-Recipient (RFC 3464 §2.3.2), else Original-Recipient (§2.3.1)."""
    for name in ("final-recipient", "original-recipient", "x-actual-recipient"):
        kind, semi, address = fields.get(name, "").partition(";")
        if not semi:  # seen in the wild: "Final-Recipient: <user@host>"
            kind, address = "rfc822", kind
        address = squash(address).strip().strip("<>").strip()
        kind = kind.strip().lower()
        if kind in ("rfc822", "utf-8", "") and "@" in address[1:]:
            return decode_address(kind, address, xtext=name == "original-recipient")
    return None


def context(text: str, address: str) -> str:
    """The paragraph of `text` that names `address`: where MTAs write why it failed."""
    low = address.lower()
    paras = _paragraphs(text)
    for i, para in enumerate(paras):
        if low in para.lower():
            # "<addr>:" alone on its paragraph: the reason is the next one (qmail, Exim)
            if len(squash(para)) < len(address) + 6 and i + 1 < len(paras):
                return para + "\n" + paras[i + 1]
            return para
    return ""


def _returned_to(mail: Mail) -> str | None:
    for returned in mail.returned:
        to = header(returned, "To")
        if to.count("@") == 1:
            return to.rpartition("<")[2].strip(" >")
    return None


def parse(mail: Mail) -> list[Found] | None:
    parts = mail.parts_of(*DSN_TYPES)
    texts = [_part_as_text(p) for p in parts]
    if not parts and re.search(r"^Final-Recipient:", mail.text, re.I | re.M):
        texts = [mail.text]  # the fields pasted into a plain-text report
    found: list[Found] = []
    for text in texts:
        # the reporter, when no Remote-MTA is named: then it is the receiving side itself
        m = re.search(r"^Reporting-MTA:[^;\n]*;\s*(\S+)", text, re.I | re.M)
        reporter = m.group(1).strip("[]") if m else None
        for fields in recipient_blocks(text):
            if len(found) >= MAX_RECIPIENTS:
                break  # the rest are not judged (bounce.MAX_RECIPIENTS): not read either
            address = _address(fields)
            if address is None and "@" in fields.get("final-recipient", ""):
                # "Final-Recipient: rfc822; @host": the local part lost; the copy says whom
                address = _returned_to(mail)
            if address is None:
                continue
            action = (
                m.group(0) if (m := re.match(r"[a-z]+", fields.get("action", "").lower())) else ""
            )
            diagnostic = _DIAGNOSTIC_TYPE_RE.sub("", squash(fields.get("diagnostic-code", "")))
            status = status_in(fields.get("status", ""))
            rhost = fields.get("remote-mta", "").partition(";")[2].strip() or reporter
            text_reason = squash(context(mail.text, address))
            hint = "delivered" if action in _NOT_FAILURES else None
            if action == "delayed":
                hint = "expired"  # RFC 3464 §2.3.3: still trying; a delay, not a failure
            combined = diagnostic
            if text_reason and text_reason not in diagnostic:
                combined = f"{diagnostic} {text_reason}".strip()
            one = Found(
                address,
                status=status,
                reply_code=reply_in(diagnostic),
                diagnostic=combined,
                action=action or None,
                rhost=rhost,
                hint=hint,
            )
            found.append(one)
            # the address we sent to, when a forward or alias changed it (§2.3.1): the
            # same verdict, so that the report matches the recipient our token names
            original = _address({"original-recipient": fields.get("original-recipient", "")})
            if original and original.lower() != address.lower():
                found.append(dataclasses.replace(one, address=original))
    return found or None
