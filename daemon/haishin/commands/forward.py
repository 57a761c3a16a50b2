"""Forward inquiries: `<slug>-owner@` to the channel's 情報管理者 (第5条(3)) and the
service inquiry address to the 統括管理者 (第3条(1)), keeping the sender for the reply."""

from __future__ import annotations

import re

import sqlalchemy as sa

from .. import addresses as contract
from ..context import Context, Outcome
from ..mailtext.compose import compose
from ..mailtext.incoming import Incoming
from ..mailtext.texts import forward_note
from ..registry.model import Role
from ..store import queue
from ..store.states import MessageKind

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


def _clean(text: str, limit: int = 200) -> str:
    """No line breaks or controls from a decoded header (header injection)."""
    return _CONTROL_RE.sub(" ", text)[:limit].strip()


def _as_rfc822(raw: bytes) -> bytes:
    """The original, with bare LF and bare CR made CRLF so it travels as 8bit MIME."""
    return re.sub(rb"\r?\n|\r", b"\r\n", raw)


def forward(
    conn: sa.Connection,
    ctx: Context,
    incoming: Incoming,
    raw: bytes,
    slug: str | None,
    *,
    to_post_address: bool = False,
) -> Outcome:
    """`to_post_address`: it came to `<slug>@` from an address the channel does not list
    (router/dispatch.py), which the note says, so the manager knows why it is here."""
    assert incoming.sender is not None
    service = ctx.service
    if slug is not None:
        channel = ctx.registry.channels[slug].value
        department = ctx.registry.departments[channel.department]
        to = department.manager.address
        from_addr = ctx.address(slug, contract.OWNER)
        label = f"「{channel.title}」の問い合わせ窓口（{slug}-owner）"
        if to_post_address:
            label = f"「{channel.title}」の投稿用アドレス（{slug}@、送信者として登録のない差出人）"
        return_path = ctx.address(slug, contract.BOUNCES)
    else:
        to = service.roles[Role.GENERAL_MANAGER].address
        from_addr = service.inquiry_address
        label = "配信サービスの問い合わせ窓口"
        return_path = ""  # RFC 3834 §3.3: the null return path cannot loop
    msg = compose(
        from_name=f"{_clean(incoming.sender)} via {service.name}",
        from_addr=from_addr,
        to=to,
        subject=f"[問い合わせ] {_clean(incoming.subject) or '(件名なし)'}",
        body=forward_note(label, incoming.sender) + "\n" + incoming.body[:20000],
        domain=ctx.domain,
        reply_to=incoming.sender,
        in_reply_to=incoming.message_id,
        auto="auto-forwarded",
        attachment=_as_rfc822(raw),
    )
    queue.enqueue(conn, msg, return_path, [to], kind=MessageKind.FORWARD)
    return Outcome.FORWARDED
