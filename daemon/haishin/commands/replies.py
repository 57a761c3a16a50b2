"""Queue the daemon's answers in the caller's transaction.

Return path: `<slug>-bounces@` (RFC 3834 §3.3: a return path that is never answered, since
the bounces address only records), so a bounce of an answer cannot start a loop.
"""

from __future__ import annotations

import sqlalchemy as sa

from .. import addresses as contract
from ..mailtext.compose import compose
from ..mailtext.texts import Text
from ..store import queue
from .context import Context


def reply(
    conn: sa.Connection,
    ctx: Context,
    slug: str,
    to: str,
    text: Text,
    *,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    kind: str = "reply",
) -> None:
    subject, body = text
    channel = ctx.registry.channels[slug].value
    msg = compose(
        from_name=f"川崎市 {channel.title}",
        from_addr=ctx.address(slug, contract.REQUEST),
        to=to,
        subject=subject,
        body=body,
        domain=ctx.domain,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
    )
    queue.enqueue(conn, msg, ctx.address(slug, contract.BOUNCES), [to], kind=kind)
