"""An envelope for mail that came without one (IMAP): recipients from the headers that
delivery agents add (Delivered-To, X-Original-To, Envelope-To), else To and Cc, kept only
where the address contract knows them; the sender from Return-Path (`<>`: a bounce), or
From when no delivery agent wrote a Return-Path."""

from __future__ import annotations

from email import policy
from email.parser import BytesHeaderParser

from ..addresses import IN_TEXT
from ..directory import Directory, Target
from ..mailtext.mailbox import mailbox

_DELIVERY = ("Delivered-To", "X-Original-To", "Envelope-To")


def envelope(raw: bytes, directory: Directory) -> tuple[str, list[str]]:
    head = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    fields: dict[str, list[str]] = {}
    for name, value in head.raw_items():  # as written: addresses need no decoding
        fields.setdefault(name.lower(), []).append(str(value))
    ours: list[str] = []
    for names in (_DELIVERY, ("To", "Cc")):
        for name in names:
            for value in fields.get(name.lower(), []):
                for found in IN_TEXT.findall(value):
                    box = mailbox(found)
                    if box and isinstance(directory.parse(box), Target) and box not in ours:
                        ours.append(box)
        if ours:
            break
    paths = fields.get("return-path")
    if not paths:  # no delivery agent wrote one: the author is the sender
        found = IN_TEXT.findall((fields.get("from") or [""])[0])
        return (mailbox(found[-1]) or "" if found else ""), ours
    return_path = paths[0].strip()
    return ("" if return_path in ("<>", "") else mailbox(return_path) or ""), ours
