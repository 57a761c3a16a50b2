"""The reason table in the order it is asked, and the lookups on it.

Read top-down: the text table is asked in this order, so a specific wording ("SPF",
"mailbox full") is found before a vague one ("rejected"). New wording for a reason is a
new pattern in its row (one module per group of reasons); nothing else changes.
"""

from __future__ import annotations

import functools

from ..model import BounceClass
from . import about_us, recipient, session, transport
from .row import C, N, P, R, Reason, T

# The text table, in the order it is asked.
REASONS: tuple[Reason, ...] = about_us.ROWS + recipient.ROWS + transport.ROWS + session.ROWS

# Reasons only a format or a provider settles (no status, no pattern of their own)
EXTRA: tuple[Reason, ...] = (
    Reason("feedback", C, (), ()),
    Reason("vacation", N, (), ()),
    Reason("delivered", N, ("X.0.0",), ()),  # only ever given by hint (RFC 3464 action)
    Reason("onhold", T, (), ()),
    Reason("undefined", T, (), ()),
    Reason("speeding", T, (), ()),
    Reason("failedstarttls", T, (), ()),
)

BY_NAME: dict[str, Reason] = {r.name: r for r in REASONS + EXTRA}

# status code → reason, from the rows above; "X" stands for both 4 and 5
BY_STATUS: dict[str, str] = {s: r.name for r in REASONS for s in r.statuses}

VAGUE_STATUSES = frozenset({"X.0.0", "X.7.0", "X.7.1", "X.1.0", "X.2.0", "X.3.0", "X.5.0", "X.4.0"})
"""Codes MTAs write for "something failed" (Postfix's 5.0.0 for any 550, 5.7.1 for any
policy): the reply text says more than they do, so the text table is asked first."""


def status_key(status: str) -> str:
    return "X" + status[1:]


@functools.lru_cache(maxsize=128)
def by_text(text: str) -> Reason | None:
    """The first reason whose wording the text has. Cached: the recipients of one report
    often share their diagnostic (one line naming several), and the table is the costly
    part of judging one."""
    for reason in REASONS:
        if reason.regex is not None and reason.regex.search(text):
            return reason
    return None


def klass(reason: str, status: str | None, reply_code: str | None) -> BounceClass:
    """The class a reason means. `notaccept` is permanent unless the answer was 4xx: a
    host that says "not accepting mail" with a transient code may accept later."""
    row = BY_NAME.get(reason)
    if row is None:
        return T
    if reason == "notaccept":
        four = (status or "").startswith("4") or (reply_code or "").startswith("4")
        return R if four else P
    return row.klass
