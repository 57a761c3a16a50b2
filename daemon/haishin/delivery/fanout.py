"""Fan-out: one approved post → one stored body and one outbound row per active subscriber.

The post is rendered once (delivery/render.py); per recipient only To, List-Unsubscribe
with that subscriber's token, the DKIM signatures and the VERP return path differ
(design.md, Performance). Subscribers are read and rows written in batches, never all
addresses in memory; each batch commits together with the post's cursor (the last
subscriber id queued), so a crash resumes after the last committed batch and nobody is
queued twice (design.md: each active subscriber once).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .. import addresses as contract
from .. import urls
from ..clock import utcnow
from ..context import UNSUBSCRIBE_TOKEN_TTL, Context
from ..registry.model import JST
from ..store import posts, queue
from ..store.engine import reading
from ..store.posts import Post, PostState
from ..store.schema import outbound_messages, subscribers
from ..store.states import MessageKind
from ..store.subscribers import Status
from ..tokens import Purpose
from . import signing
from .dkim import DkimKey
from .render import RenderContext, Rendered, headers_bytes, render

BATCH = 1000
SIGNED_BATCH = 4000
"""Recipients read at once when signing: the workers sign them in chunks, ahead of the
writes (signing.CHUNK)."""

VERP_TOKEN_TTL = dt.timedelta(days=30)
"""Bounces arrive within days (RFC 5321 §4.5.4.1 gives up after 4-5); a month is ample."""


@dataclass(frozen=True)
class Delivered:
    post_id: int
    recipients: int


def archive_slug(post: Post, sent_at: dt.datetime) -> str:
    """The post's name in its archive URL and file: stable and unique (site/archive.py)."""
    return f"{sent_at.astimezone(JST):%Y-%m-%d}-{post.id:04d}"


def archived_url(ctx: Context, slug: str, name: str) -> str:
    """Where the site publishes post `name` of channel `slug` (posting/archive.py exports it
    to the folder the site reads: site/archive.py)."""
    return urls.at(ctx.service.site_url, urls.ARCHIVED_POST, channel=slug, slug=name)


def render_context(ctx: Context, slug: str, keys: Sequence[DkimKey]) -> RenderContext:
    service = ctx.service
    channel = ctx.registry.channels[slug].value
    department = ctx.registry.departments[channel.department]
    public = channel.archive == "public"
    return RenderContext(
        service,
        channel,
        department,
        web_url=ctx.public_url,
        channel_url=urls.at(service.site_url, urls.CHANNEL, slug=slug),
        archive_url=urls.at(service.site_url, urls.BACKNUMBERS, slug=slug) if public else None,
        dkim_keys=tuple(keys),
    )


def _references(conn: sa.Connection, post: Post) -> str | None:
    if post.correction_of is None:
        return None
    corrected = posts.get(conn, post.correction_of)
    return corrected.out_message_id if corrected else None


def start(conn: sa.Connection, ctx: Context, post: Post, keys: Sequence[DkimKey]) -> Post | None:
    """Render the post once, store its body, and mark it sending; None if it was taken."""
    now = utcnow()
    rctx = render_context(ctx, post.channel, keys)
    name = archive_slug(post, now)
    post_url = archived_url(ctx, post.channel, name) if rctx.archive_url else None
    rendered = render(
        rctx,
        name,
        post.subject,
        post.text,
        html=post.html,
        now=now,
        post_url=post_url,
        references=_references(conn, post),
    )
    message = queue.add_message(conn, rendered.common(), kind=MessageKind.POST)
    if not posts.transition(
        conn,
        post.id,
        (PostState.APPROVED, PostState.SCHEDULED),
        state=PostState.SENDING,
        sent_at=now,
        archive_slug=name,
        out_message_id=rendered.message_id,
        outbound_message=message,
    ):
        return None
    return posts.get(conn, post.id)


def _active_after(
    conn: sa.Connection, channel: str, after: int, batch: int
) -> list[tuple[int, str]]:
    rows = conn.execute(
        sa.select(subscribers.c.id, subscribers.c.address)
        .where(
            subscribers.c.channel == channel,
            subscribers.c.status == Status.ACTIVE,
            subscribers.c.id > after,
        )
        .order_by(subscribers.c.id)
        .limit(batch)
    ).all()
    return [(int(i), str(a)) for i, a in rows]


def _rendered(conn: sa.Connection, ctx: Context, post: Post, keys: Sequence[DkimKey]) -> Rendered:
    assert post.outbound_message is not None
    raw = conn.execute(
        sa.select(outbound_messages.c.raw).where(outbound_messages.c.id == post.outbound_message)
    ).scalar_one()
    rctx = render_context(ctx, post.channel, keys)
    return Rendered.from_common(rctx, bytes(raw), post.out_message_id or "")


def next_batch(
    engine: sa.Engine,
    ctx: Context,
    post_id: int,
    keys: Sequence[DkimKey],
    batch_size: int | None = None,
    queued: Callable[[], None] | None = None,
) -> bool:
    """Queue the next batch of a sending post; False when it is done. `queued` is told
    after each write (the sender is woken for the first rows, not at its next poll).

    The batch is read and signed outside any write transaction (SQLite has one writer:
    inbound mail must not wait for signatures); the signatures are made on every core
    (signing.py), and each chunk's rows are written as soon as its signatures are back,
    while the workers sign the next chunks. Each write moves the cursor with a
    compare-and-set, so if another daemon queued these recipients meanwhile, this copy
    is dropped and nobody gets the post twice.
    """
    batch_size = batch_size or (SIGNED_BATCH if keys else BATCH)
    with reading(engine) as conn:
        post = posts.get(conn, post_id)
        if post is None or post.state is not PostState.SENDING:
            return False
        batch = _active_after(conn, post.channel, post.cursor, batch_size)
        if not batch:
            return False
        rendered = _rendered(conn, ctx, post, keys)
    assert post.outbound_message is not None
    # per recipient only what differs: its two tokens, its return path, its headers
    now = utcnow()
    verp = ctx.keyring.maker(Purpose.VERP, now + VERP_TOKEN_TTL)
    # the same tokens as ctx.unsubscribe_token(sub_id, now), keyed once for the batch
    unsubscribe = ctx.keyring.maker(Purpose.UNSUBSCRIBE, now + UNSUBSCRIBE_TOKEN_TTL)
    bounces = ctx.address(post.channel, contract.BOUNCES, "\0").split("\0")
    envelopes = [
        (
            sub_id,
            bounces[0] + verp(sub_id) + bounces[1],
            address,
            rendered.personal_headers(address, unsubscribe(sub_id)),
        )
        for sub_id, address in batch
    ]
    if keys:
        signed = signing.signers(keys).sign(rendered.plan, [e[3] for e in envelopes])
    else:
        signed = iter([[b""] * len(envelopes)])
    cursor, done = post.cursor, 0
    for signatures in signed:
        chunk = envelopes[done : done + len(signatures)]
        done += len(chunk)
        rows = [
            (mail_from, address, sig + headers_bytes(personal))
            for (_, mail_from, address, personal), sig in zip(chunk, signatures, strict=True)
        ]
        with engine.begin() as conn:
            if not posts.advance(conn, post.id, cursor, chunk[-1][0], len(rows)):
                return True  # queued by another daemon: the next call reads on from there
            queue.add_rows(conn, post.outbound_message, rows)
        cursor = chunk[-1][0]
        if queued is not None:
            queued()
    return True
