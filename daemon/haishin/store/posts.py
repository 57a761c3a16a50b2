"""Posts and their states: every change is a compare-and-set on the state column.

A decision (approve, reject, withdraw, expire) takes effect only if the post is still in a
state that allows it, so a reply and a CLI command racing each other cannot both win,
and a withdrawn post can never be approved afterwards (第5条: the 情報管理者 decides).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from .schema import UTCDateTime, archive, posts


class PostState(enum.StrEnum):
    HELD = "held"  # waiting for approval
    APPROVED = "approved"  # to go out as soon as nothing holds it
    SCHEDULED = "scheduled"  # approved, with a send time (配信時期)
    SENDING = "sending"  # fan-out in progress (resumable from `cursor`)
    SENT = "sent"
    REJECTED = "rejected"
    REFUSED = "refused"  # by the 第3条(2) policy, kept for the audit
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


PENDING = (PostState.HELD, PostState.APPROVED, PostState.SCHEDULED)
"""States in which a post has not yet started to go out: it may still be withdrawn."""
RELEASABLE = (PostState.APPROVED, PostState.SCHEDULED, PostState.SENDING)


@dataclass(frozen=True)
class Post:
    id: int
    channel: str
    spool_id: int | None
    sender: str
    subject: str
    text: str
    html: str | None
    message_id: str | None
    state: PostState
    approval: str
    approver: str | None
    approval_method: str | None
    findings: list[dict[str, str]]
    send_at: dt.datetime | None
    created_at: dt.datetime
    expires_at: dt.datetime
    approved_at: dt.datetime | None
    sent_at: dt.datetime | None
    ended_at: dt.datetime | None
    note: str | None
    correction_of: int | None
    out_message_id: str | None
    outbound_message: int | None
    cursor: int
    recipients: int
    archive_slug: str | None
    release_owner: str | None = None
    release_until: dt.datetime | None = None


def _post(row: sa.Row[tuple[object, ...]]) -> Post:
    m = dict(row._mapping)
    m["state"] = PostState(m["state"])
    m["findings"] = json.loads(str(m["findings"]))
    return Post(**m)


def create(
    conn: sa.Connection,
    *,
    channel: str,
    spool_id: int | None,
    sender: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str | None,
    state: PostState,
    approval: str,
    findings: Sequence[dict[str, str]],
    send_at: dt.datetime | None,
    ttl: dt.timedelta,
    correction_of: int | None = None,
    note: str | None = None,
) -> Post:
    now = utcnow()
    result = conn.execute(
        posts.insert(),
        {
            "channel": channel,
            "spool_id": spool_id,
            "sender": sender,
            "subject": subject,
            "text": text,
            "html": html,
            "message_id": message_id,
            "state": state,
            "approval": approval,
            "findings": json.dumps(list(findings), ensure_ascii=False),
            "send_at": send_at,
            "created_at": now,
            "expires_at": now + ttl,
            "correction_of": correction_of,
            "note": note,
            "ended_at": now if state is PostState.REFUSED else None,
        },
    )
    assert result.inserted_primary_key is not None
    got = get(conn, int(result.inserted_primary_key[0]))
    assert got is not None
    return got


def get(conn: sa.Connection, post_id: int) -> Post | None:
    row = conn.execute(sa.select(posts).where(posts.c.id == post_id)).first()
    return _post(row) if row else None


def listing(conn: sa.Connection, states: Iterable[PostState] | None = None) -> list[Post]:
    query = sa.select(posts).order_by(posts.c.id)
    if states is not None:
        query = query.where(posts.c.state.in_([str(s) for s in states]))
    return [_post(r) for r in conn.execute(query)]


def transition(
    conn: sa.Connection, post_id: int, allowed: Iterable[PostState], **values: object
) -> bool:
    """Set `values` (with a new `state`) only if the post is in one of `allowed`."""
    result = conn.execute(
        posts.update()
        .where(posts.c.id == post_id, posts.c.state.in_([str(s) for s in allowed]))
        .values(**values)
    )
    return result.rowcount == 1


def update(conn: sa.Connection, post_id: int, **values: object) -> None:
    conn.execute(posts.update().where(posts.c.id == post_id).values(**values))


def advance(conn: sa.Connection, post_id: int, cursor: int, to: int, count: int) -> bool:
    """Move a sending post's fan-out cursor from `cursor` to `to`; False when another
    worker moved it first (its batch stands, this one is dropped: each recipient once)."""
    result = conn.execute(
        posts.update()
        .where(posts.c.id == post_id, posts.c.state == PostState.SENDING, posts.c.cursor == cursor)
        .values(cursor=to, recipients=posts.c.recipients + count)
    )
    return result.rowcount == 1


def due(conn: sa.Connection, now: dt.datetime, limit: int = 20) -> list[Post]:
    """Approved posts whose time has come, and posts whose fan-out was interrupted."""
    query = (
        sa.select(posts)
        .where(
            posts.c.state.in_([str(s) for s in RELEASABLE]),
            sa.or_(posts.c.send_at.is_(None), posts.c.send_at <= now),
        )
        .order_by(posts.c.id)
        .limit(limit)
    )
    return [_post(r) for r in conn.execute(query)]


def lease_release(
    conn: sa.Connection, post_id: int, owner: str, now: dt.datetime, lease: dt.timedelta
) -> bool:
    """Take or renew the lease on releasing a post: True when `owner` holds it until
    `now + lease`. A compare-and-set, so of daemons racing for one post exactly one wins,
    and a lease whose holder died (not renewed in time) passes to the next that asks."""
    result = conn.execute(
        posts.update()
        .where(
            posts.c.id == post_id,
            posts.c.state.in_([str(s) for s in RELEASABLE]),
            sa.or_(
                posts.c.release_owner.is_(None),
                posts.c.release_owner == owner,
                posts.c.release_until < now,
            ),
        )
        .values(release_owner=owner, release_until=now + lease)
    )
    return result.rowcount == 1


def let_go_release(conn: sa.Connection, post_id: int, owner: str) -> None:
    """Give the lease back (a hold began, the daemon stops, or the post is done)."""
    conn.execute(
        posts.update()
        .where(posts.c.id == post_id, posts.c.release_owner == owner)
        .values(release_owner=None, release_until=None)
    )


def held_past(conn: sa.Connection, now: dt.datetime) -> list[Post]:
    query = sa.select(posts).where(posts.c.state == PostState.HELD, posts.c.expires_at <= now)
    return [_post(r) for r in conn.execute(query.order_by(posts.c.id))]


def by_out_message_id(conn: sa.Connection, channel: str, ids: Sequence[str]) -> Post | None:
    if not ids:
        return None
    row = conn.execute(
        sa.select(posts)
        .where(
            posts.c.channel == channel,
            posts.c.state == PostState.SENT,
            posts.c.out_message_id.in_(list(ids)),
        )
        .order_by(posts.c.id.desc())
        .limit(1)
    ).first()
    return _post(row) if row else None


def latest_sent(conn: sa.Connection, channel: str) -> Post | None:
    row = conn.execute(
        sa.select(posts)
        .where(posts.c.channel == channel, posts.c.state == PostState.SENT)
        .order_by(posts.c.sent_at.desc(), posts.c.id.desc())
        .limit(1)
    ).first()
    return _post(row) if row else None


@dataclass(frozen=True)
class BackNumber:
    """A sent post as the site publishes it (第7条): never an address or a token."""

    channel: str
    slug: str
    subject: str
    text: str
    sent_at: dt.datetime


def back_numbers(conn: sa.Connection) -> list[BackNumber]:
    """The back numbers of channels whose archive was public when the post went out."""
    rows = conn.execute(
        sa.select(archive.c.channel, archive.c.slug, archive.c.subject, archive.c.text)
        .add_columns(archive.c.sent_at)
        .where(archive.c.public.is_(True))
        .order_by(archive.c.channel, archive.c.sent_at, archive.c.slug)
    )
    return [BackNumber(*row) for row in rows]


def last_sent(conn: sa.Connection) -> dict[str, dt.datetime]:
    """Each channel's latest post, whether its archive is public or not (第5条4: the site's
    最終配信日 tells that a channel is alive, not what it said)."""
    rows = conn.execute(
        sa.select(archive.c.channel, sa.func.max(archive.c.sent_at, type_=UTCDateTime())).group_by(
            archive.c.channel
        )
    )
    return {channel: at for channel, at in rows}


def add_archive(
    conn: sa.Connection, post: Post, slug: str, sent_at: dt.datetime, public: bool
) -> None:
    conn.execute(
        archive.insert(),
        {
            "post_id": post.id,
            "channel": post.channel,
            "slug": slug,
            "subject": post.subject,
            "text": post.text,
            "sent_at": sent_at,
            "public": public,
        },
    )
