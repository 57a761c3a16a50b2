"""A message the router did not read (`mailtext.limits`): answered once, or dropped.

Nothing in it is acted on. Where a person expects an answer (a command address, or a
post from one of the channel's senders) the sender is told, in Japanese, through
`replies.reply` and so within the automatic-answer limits; RFC 3834 holds as for any
answer. Owner, inquiry and bounce addresses get no answer (a stranger's forged From must
not draw mail from us, issue 11 item 5): the message is kept in the spool and logged.
"""

from __future__ import annotations

import enum
import logging

import sqlalchemy as sa

from ..commands import mypage
from ..context import Context, Outcome
from ..directory import Kind, Target
from ..mailtext import texts
from ..mailtext.incoming import Incoming
from ..mailtext.limits import Unreadable
from ..outbound.replies import reply
from ..posting.senders import is_sender
from ..store.states import SpoolState
from .loops import NoAnswer, why_not_answer

log = logging.getLogger(__name__)


class Handled(enum.StrEnum):
    ANSWERED = "answered-unreadable"
    LIMITED = "rate-limited"
    NOT_ANSWERED = "not-answered"  # RFC 3834, or a post from someone not listed
    DROPPED = "dropped"  # an address that never answers


_ANSWERED_KINDS = frozenset({Kind.SUBSCRIBE, Kind.UNSUBSCRIBE, Kind.CONFIRM, Kind.REQUEST})

WHY_JA: dict[Unreadable, str] = {
    Unreadable.TOO_MANY_FIELDS: "ヘッダーの数が多すぎる",
    Unreadable.FIELD_TOO_LONG: "ヘッダーが長すぎるか複雑すぎる",
    Unreadable.TOO_MANY_PARTS: "添付ファイルなどの部分が多すぎる",
    Unreadable.TOO_DEEP: "入れ子（転送の重なりなど）が深すぎる",
    Unreadable.OVER_BUDGET: "処理に時間がかかりすぎる",
}


def _one(
    conn: sa.Connection, ctx: Context, incoming: Incoming, t: Target, no_answer: NoAnswer | None
) -> Handled:
    assert incoming.unreadable is not None
    if t.kind is Kind.MYPAGE and t.token is None:
        # any mail to mypage@ is enough: the link does not depend on what it says
        if no_answer is not None or incoming.sender is None:
            return Handled.NOT_ANSWERED
        outcome = mypage.send_link(conn, ctx, incoming.sender, in_reply_to=incoming.message_id)
        return Handled.LIMITED if outcome is Outcome.RATE_LIMITED else Handled.ANSWERED
    if t.slug is None or (t.kind is Kind.UNSUBSCRIBE and t.token):
        return Handled.DROPPED  # inquiry address; a token unsubscribe reads no body anyway
    if t.kind is Kind.POST:
        sender = incoming.sender
        if sender is None or not is_sender(ctx.registry.channels[t.slug].value, sender):
            return Handled.NOT_ANSWERED
    elif t.kind not in _ANSWERED_KINDS:
        return Handled.DROPPED
    if no_answer is not None or incoming.sender is None:
        return Handled.NOT_ANSWERED
    text = texts.unreadable(ctx.about(t.slug), WHY_JA[incoming.unreadable])
    sent = reply(conn, ctx, t.slug, incoming.sender, text, in_reply_to=incoming.message_id)
    return Handled.ANSWERED if sent else Handled.LIMITED


def handle(
    conn: sa.Connection,
    ctx: Context,
    spool_id: int,
    rcpts: list[str],
    mail_from: str,
    incoming: Incoming,
) -> tuple[SpoolState, str]:
    """(spool state, outcome) for a message that was not read; runs in the batch's
    transaction like `dispatch`."""
    assert incoming.unreadable is not None
    no_answer = why_not_answer(incoming.msg, mail_from, incoming.sender, ctx.domain)
    results: list[str] = []
    seen: set[Target] = set()
    for rcpt in rcpts:
        target = ctx.directory.parse(rcpt)
        if target is None or target in seen:
            continue
        seen.add(target)
        if target.slug is not None and not ctx.directory.states()[target.slug].served:
            handled = Handled.DROPPED
        else:
            handled = _one(conn, ctx, incoming, target, no_answer)
        results.append(f"{target.kind}:{target.slug or ''}={handled}")
    outcome = f"unreadable ({incoming.unreadable}): {' '.join(results) or 'no recipient of ours'}"
    log.warning("inbound#%d: not read: %s", spool_id, outcome)
    return SpoolState.DONE, outcome
