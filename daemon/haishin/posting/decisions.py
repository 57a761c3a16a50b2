"""What may happen to a post once it is held: approve, reject, withdraw, expire.

Each decision is a compare-and-set on the post's state (store/posts.py) and tells the
sender in the same transaction. These run from the router (mail replies), the web page
(button), the CLI and the release task alike, so every path records the same audit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

import sqlalchemy as sa

from ..clock import utcnow
from ..context import Context
from ..mailtext import posts as texts
from ..mailtext.texts import Text
from ..outbound.replies import reply
from ..store import posts
from ..store.posts import PENDING, Post, PostState
from . import holds
from .holds import recorded


class Decided(enum.StrEnum):
    """What became of a decision (style.md 4: expected outcomes are not exceptions).
    Named apart from the registry's `Decision` (Form 2, the 統括管理者's 承認書)."""

    DONE = "done"
    TOO_LATE = "too-late"  # already sent, sending, or ended
    UNKNOWN = "unknown"


def _notify(conn: sa.Connection, ctx: Context, post: Post, text: Text) -> None:
    if post.channel in ctx.registry.channels:
        reply(conn, ctx, post.channel, post.sender, text, in_reply_to=post.message_id)


def approve(
    conn: sa.Connection,
    ctx: Context,
    post_id: int,
    *,
    approver: str,
    method: str,
    send_at: dt.datetime | None = None,
    reschedule: bool = False,
) -> Decided:
    """Approve a held post; with `reschedule`, also change the time of an approved one
    (配信時期, 第5条: the approval can set or change it)."""
    post = posts.get(conn, post_id)
    if post is None:
        return Decided.UNKNOWN
    now = utcnow()
    at = send_at if reschedule else post.send_at
    state = PostState.SCHEDULED if at is not None and at > now else PostState.APPROVED
    allowed = PENDING if reschedule else (PostState.HELD,)
    values: dict[str, object] = {"state": state, "send_at": at, "note": None}
    # what will hold it once approved is recorded now (posting/holds/). Release looks
    # again only at posts that are due (posts.due), so a scheduled post's hold until then
    # is its time; at its time release records whatever holds it, or clears the note.
    later = dataclasses.replace(post, state=state, send_at=at)
    hold = holds.send_at.check(ctx, later, now) or holds.hold_of(ctx, later, now)
    if hold is not None:
        values |= recorded(post, hold, now)
    if post.state is PostState.HELD:
        values |= {"approver": approver, "approval_method": method, "approved_at": now}
    if not posts.transition(conn, post_id, allowed, **values):
        return Decided.TOO_LATE
    _notify(conn, ctx, post, texts.approved(ctx.about(post.channel), post.subject, at, approver))
    return Decided.DONE


def _end(
    conn: sa.Connection,
    ctx: Context,
    post_id: int,
    state: PostState,
    what: str,
    note: str,
    reason: str = "",
) -> Decided:
    post = posts.get(conn, post_id)
    if post is None:
        return Decided.UNKNOWN
    allowed = (PostState.HELD,) if state is PostState.EXPIRED else PENDING
    if not posts.transition(conn, post_id, allowed, state=state, ended_at=utcnow(), note=note):
        return Decided.TOO_LATE
    _notify(conn, ctx, post, texts.ended(ctx.about(post.channel), post.subject, what, reason))
    return Decided.DONE


def withdraw(conn: sa.Connection, ctx: Context, post_id: int, *, by: str, method: str) -> Decided:
    """第5条(1): a post not yet sent can be taken back by its sender or by staff."""
    return _end(conn, ctx, post_id, PostState.WITHDRAWN, "取り消されました", f"{method} by {by}")


def reject(conn: sa.Connection, ctx: Context, post_id: int, *, by: str, reason: str) -> Decided:
    return _end(
        conn, ctx, post_id, PostState.REJECTED, "承認されませんでした", f"cli by {by}", reason
    )


def expire(conn: sa.Connection, ctx: Context, now: dt.datetime | None = None) -> int:
    """Held posts past `limits.held_post_ttl_hours` end as expired, with a notice."""
    done = 0
    for post in posts.held_past(conn, now or utcnow()):
        done += (
            _end(
                conn,
                ctx,
                post.id,
                PostState.EXPIRED,
                "期限までに確認がなかったため破棄されました",
                "expired: not approved in time",
            )
            is Decided.DONE
        )
    return done
