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
import logging
from collections.abc import Callable, Iterator, Sequence
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
from .dkim import DkimKey, Header
from .render import RenderContext, Rendered, headers_bytes, render

log = logging.getLogger(__name__)

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


@dataclass
class _Batch:
    """Recipients read and handed to the signers, not yet written."""

    after: int
    """The cursor this batch starts after: it is written only if the post's is still it."""
    message: int
    envelopes: list[tuple[int, str, str, tuple[Header, Header]]]
    signed: Iterator[list[bytes]]

    def drop(self) -> None:
        """Not written after all: its signatures not yet made are not made."""
        if isinstance(self.signed, signing.Runs):
            self.signed.close()


class Stream:
    """One daemon's fan-out of one sending post, batch by batch (posting/release.py).

    With signing, the next batch is read and handed to the workers (signing.py) while
    this one's rows are written, so the workers never wait at a batch's end for the
    daemon to read, build and hand over the next (at 4,000 recipients a batch that was
    a tenth of the signing time). Without signing there is nothing to overlap: a batch
    is read when it is due.

    Each write moves the post's cursor with a compare-and-set, so if another daemon
    queued these recipients meanwhile, this copy is dropped and nobody gets the post
    twice; a batch read ahead is used only if the cursor is where it starts."""

    def __init__(
        self,
        engine: sa.Engine,
        ctx: Context,
        post_id: int,
        keys: Sequence[DkimKey],
        batch_size: int | None = None,
        queued: Callable[[], None] | None = None,
        *,
        read_ahead: bool = True,
    ) -> None:
        self.engine = engine
        self.ctx = ctx
        self.post_id = post_id
        self.keys = tuple(keys)
        self.batch_size = batch_size or (SIGNED_BATCH if keys else BATCH)
        self.queued = queued
        self.read_ahead = read_ahead
        """Whether the next batch is signed while this one is written (with keys)."""
        self._ahead: _Batch | None = None

    def next(self) -> bool:
        """Queue the next batch; False when the post is done (or no longer sending).
        `queued` is told after each write (the sender is woken for the first rows, not
        at its next poll)."""
        ahead, self._ahead = self._ahead, None
        with reading(self.engine) as conn:
            post = posts.get(conn, self.post_id)
        if post is None or post.state is not PostState.SENDING:
            if ahead is not None:
                ahead.drop()
            return False
        if ahead is not None and ahead.after != post.cursor:
            ahead.drop()  # another daemon wrote meanwhile: read again from its cursor
            ahead = None
        batch = ahead or self._prepare(post.cursor)
        if batch is None:
            return False
        cursor, done = batch.after, 0
        # a batch shorter than asked is the post's last: nothing to read ahead
        ahead_wanted = self.read_ahead and bool(self.keys)
        ahead_wanted = ahead_wanted and len(batch.envelopes) >= self.batch_size
        try:
            for signatures in batch.signed:
                chunk = batch.envelopes[done : done + len(signatures)]
                done += len(chunk)
                rows = [
                    (mail_from, address, sig + headers_bytes(personal))
                    for (_, mail_from, address, personal), sig in zip(
                        chunk, signatures, strict=True
                    )
                ]
                with self.engine.begin() as conn:
                    if not posts.advance(conn, self.post_id, cursor, chunk[-1][0], len(rows)):
                        batch.drop()
                        return True  # queued by another daemon: the next call reads on
                    queue.add_rows(conn, batch.message, rows)
                cursor = chunk[-1][0]
                if self.queued is not None:
                    self.queued()
                if ahead_wanted:
                    # the workers have the rest of this batch to sign: hand them the next
                    ahead_wanted = False
                    self._ahead = self._read_ahead(batch.envelopes[-1][0])
        except BaseException:
            batch.drop()  # a failed write: the workers stop on this batch too
            raise
        return True

    def _read_ahead(self, after: int) -> _Batch | None:
        """The next batch, if it can be read now; a failure here costs only the overlap
        (the batch is read when it is due), never the batch being written."""
        try:
            return self._prepare(after)
        except sa.exc.SQLAlchemyError:
            log.warning("fan-out: post#%d: reading the next batch ahead failed", self.post_id)
            return None

    def close(self) -> None:
        """The release stops (a hold, the daemon stopping): what was read ahead is let go."""
        if self._ahead is not None:
            self._ahead.drop()
            self._ahead = None

    def _prepare(self, after: int) -> _Batch | None:
        """Read the recipients after `after` and start their signatures. Read outside any
        write transaction (SQLite has one writer: inbound mail must not wait for this)."""
        with reading(self.engine) as conn:
            post = posts.get(conn, self.post_id)
            if post is None or post.state is not PostState.SENDING:
                return None
            batch = _active_after(conn, post.channel, after, self.batch_size)
            if not batch:
                return None
            rendered = _rendered(conn, self.ctx, post, self.keys)
        assert post.outbound_message is not None
        # per recipient only what differs: its two tokens, its return path, its headers
        now = utcnow()
        ctx = self.ctx
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
        signed: Iterator[list[bytes]] = iter([[b""] * len(envelopes)])
        if self.keys:
            signed = signing.signers(self.keys).sign(rendered.plan, [e[3] for e in envelopes])
        return _Batch(after, post.outbound_message, envelopes, signed)


def next_batch(
    engine: sa.Engine,
    ctx: Context,
    post_id: int,
    keys: Sequence[DkimKey],
    batch_size: int | None = None,
    queued: Callable[[], None] | None = None,
) -> bool:
    """Queue one batch of a sending post (a `Stream` of one step, nothing read ahead);
    False when done."""
    stream = Stream(engine, ctx, post_id, keys, batch_size, queued, read_ahead=False)
    try:
        return stream.next()
    finally:
        stream.close()
