"""Asking for a held post's approval (第5条: the 情報管理者 answers for what is sent).

The request goes to the channel's approver: the sender for `confirm` (and for an
`authenticated` post that did not verify), the department's 情報管理者 for `manager`, who
also gets nothing the sender could use to approve (the sender only gets a withdraw link).
"""

from __future__ import annotations

import sqlalchemy as sa

from .. import addresses as contract
from .. import urls
from ..context import Context
from ..mailtext import posts as texts
from ..outbound.replies import reply
from ..registry.model import Approval
from ..store.posts import Post
from ..store.states import MessageKind
from ..tokens import Purpose
from .policy.base import PostVerdict


def post_url(ctx: Context, token: str) -> str:
    return urls.at(ctx.public_url, urls.POST, token=token)


VERIFYING = "DKIM 署名を検証中"
"""The note of an `authenticated` post until the daemon's own verification decides."""


def warnings_of(post: Post) -> str:
    """The 第3条(2) warnings recorded with the post, for the approval request."""
    found = post.findings
    return "\n".join(f"- {f['message']}" for f in found if f["verdict"] == PostVerdict.WARN)


def ask_approval(
    conn: sa.Connection, ctx: Context, post: Post, *, warnings: str, note: str = ""
) -> None:
    """Ask the channel's approver (the sender for `confirm`, and for an `authenticated`
    post that did not verify; the 情報管理者 for `manager`) to approve a held post."""
    slug, sender, subject, mid = post.channel, post.sender, post.subject, post.message_id
    channel = ctx.registry.channels[slug].value
    about = ctx.about(slug)
    to_manager = channel.approval is Approval.MANAGER
    approver = sender
    if to_manager:
        department = ctx.registry.departments.get(channel.department)
        assert department is not None, "load_valid guarantees the department"
        approver = department.manager.address
        withdraw_token = ctx.keyring.make(Purpose.POST_WITHDRAW, post.id, post.expires_at)
        reply(
            conn,
            ctx,
            slug,
            sender,
            texts.held_for_manager(about, subject, post_url(ctx, withdraw_token)),
            reply_to=ctx.address(slug, contract.CONFIRM, withdraw_token),
            in_reply_to=mid,
            kind=MessageKind.CONFIRM,
        )
    token = ctx.keyring.make(Purpose.POST_APPROVE, post.id, post.expires_at)
    request = texts.approval_request(
        about,
        subject=subject,
        text=post.text,
        sender=sender,
        token=token,
        url=post_url(ctx, token),
        ttl_hours=ctx.service.limits.held_post_ttl_hours,
        send_at=post.send_at,
        warnings=warnings,
        for_manager=to_manager,
        note=note,
    )
    reply(
        conn,
        ctx,
        slug,
        approver,
        request,
        reply_to=ctx.address(slug, contract.CONFIRM, token),
        in_reply_to=None if to_manager else mid,
        kind=MessageKind.CONFIRM,
    )
