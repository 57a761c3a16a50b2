"""Queue the daemon's answers in the caller's transaction.

Return path: `<slug>-bounces@` (RFC 3834 §3.3: a return path that is never answered, since
the bounces address only records), so a bounce of an answer cannot start a loop.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from .. import addresses as contract
from ..context import Context
from ..mailtext.compose import compose
from ..mailtext.texts import Text
from ..store import deferred
from ..store.states import MessageKind
from . import ratelimit

log = logging.getLogger(__name__)


def reply(
    conn: sa.Connection,
    ctx: Context,
    slug: str,
    to: str,
    text: Text,
    *,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    kind: MessageKind = MessageKind.REPLY,
) -> bool:
    """Queue an answer; False if the abuse limit for `to` was reached (then nothing is
    sent: a confirmation request is limited by `ratelimit.allowed` before it gets here)."""
    if kind is MessageKind.REPLY and not ratelimit.answer_allowed(conn, ctx, to):
        return False  # logged by ratelimit, with the rule that said no
    subject, body = text
    channel = ctx.registry.channels[slug].value
    msg = compose(
        # the service as service.yaml names it (第10条), then the channel
        from_name=f"{ctx.service.name} {channel.title}",
        from_addr=ctx.address(slug, contract.REQUEST),
        to=to,
        subject=subject,
        body=body,
        domain=ctx.domain,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
    )
    # in a worker batch, written with the batch's other answers at its end
    deferred.enqueue(conn, msg, ctx.address(slug, contract.BOUNCES), [to], kind=kind)
    return True


def service_reply(
    conn: sa.Connection,
    ctx: Context,
    to: str,
    text: Text,
    *,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
) -> None:
    """Queue an answer from `mypage@`, the service-wide address of the citizen's own page.

    The caller has counted it already (`ratelimit.answer_allowed`, before it made the link
    the answer carries). Return path `mypage@` too: a bounce comes with the null sender,
    which is never answered (RFC 3834 §2, router/loops.py), so no loop can start."""
    subject, body = text
    own = ctx.address(contract.MYPAGE, "")
    msg = compose(
        from_name=f"{ctx.service.name} マイページ",
        from_addr=own,
        to=to,
        subject=subject,
        body=body,
        domain=ctx.domain,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
    )
    deferred.enqueue(conn, msg, own, [to], kind=MessageKind.CONFIRM)
