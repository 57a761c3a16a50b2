"""Release: approved posts go out when their time has come and nothing holds them.

What holds a post is decided apart (posting/holds/: an outage in force, 第9条; its channel
or department paused by the 統括管理者, 第3条5; its send time, 第5条4); here the post
then simply waits, the hold recorded with it (its note and a finding), until a registry
reload shows the hold ended, and the note is cleared. Nothing held is dropped. Held
posts that nobody approved in time expire here too, with a notice to the sender.

Daemons sharing one store release each post once (issue 16 item 2): a daemon fans a post
out only while it holds the post's lease (store/posts.py `lease_release`), renewed batch
by batch; the post's end (sent, and its back number in the `archive` table, which the
site build reads: `haishin site build --db`) is a compare-and-set on its state, so a
second daemon arriving at the end finds nothing left to do rather than an error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..clock import utcnow
from ..context import Context
from ..delivery import fanout
from ..delivery.dkim import DkimKey
from ..store import posts
from ..store.engine import reading
from ..store.posts import PostState
from . import decisions
from .holds import Hold, current, hold_of, recorded

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=30)
"""How long a daemon holds a post it releases without renewing it (once per batch, a
second or two even when signing): a daemon that dies gives the post up after this."""


def daemon_name() -> str:
    """This daemon among those sharing the store: host, process, and a random part (a
    restarted daemon may reuse a pid)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ReleaseSettings:
    dkim_keys: tuple[DkimKey, ...] = field(default_factory=tuple)
    poll: float = 1.0
    """Seconds between looks for due posts (scheduled times, ended holds)."""
    owner: str = field(default_factory=daemon_name)
    """Who holds the lease of a post being released (store/posts.py `lease_release`)."""
    lease: dt.timedelta = LEASE


def _record_hold(engine: sa.Engine, post: posts.Post, hold: Hold | None, now: dt.datetime) -> None:
    """A hold that starts is recorded (note and finding); one that ended clears the note."""
    if hold is not None and post.note != hold.note:
        with engine.begin() as conn:
            done = posts.transition(conn, post.id, posts.RELEASABLE, **recorded(post, hold, now))
        if done:
            log.info("post#%d %s", post.id, hold.note)
    elif hold is None and current(post) is not None:
        with engine.begin() as conn:
            posts.transition(conn, post.id, posts.RELEASABLE, note=None)
        log.info("post#%d hold ended", post.id)


def _finish(engine: sa.Engine, ctx: Context, post_id: int) -> bool:
    """Mark the post sent and keep its back number, once: the state's compare-and-set
    comes first, so only the daemon that made it writes the archive row (the row's key
    is the post) and logs the release; False for anyone else."""
    with engine.begin() as conn:
        if not posts.transition(
            conn,
            post_id,
            (PostState.SENDING,),
            state=PostState.SENT,
            note=None,
            release_owner=None,
            release_until=None,
        ):
            return False
        post = posts.get(conn, post_id)
        assert post is not None and post.sent_at is not None and post.archive_slug is not None
        public = ctx.registry.channels[post.channel].value.archive == "public"
        posts.add_archive(conn, post, post.archive_slug, post.sent_at, public)
    log.info("post#%d queued for %d recipient(s)", post.id, post.recipients)
    return True


def _start(engine: sa.Engine, ctx: Context, post: posts.Post, keys: tuple[DkimKey, ...]) -> bool:
    """Render and store the post's body and mark it sending; False when it was decided
    otherwise meanwhile (withdrawn), and then the stored body is not kept either."""
    with engine.connect() as conn, conn.begin() as tx:
        if fanout.start(conn, ctx, post, keys) is None:
            tx.rollback()
            return False
    return True


def _lease(engine: sa.Engine, post_id: int, settings: ReleaseSettings) -> bool:
    with engine.begin() as conn:
        return posts.lease_release(conn, post_id, settings.owner, utcnow(), settings.lease)


def _let_go(engine: sa.Engine, post_id: int, settings: ReleaseSettings) -> None:
    with engine.begin() as conn:
        posts.let_go_release(conn, post_id, settings.owner)


def release_due(
    engine: sa.Engine,
    ctx: Context,
    settings: ReleaseSettings,
    now: dt.datetime | None = None,
    stopping: Callable[[], bool] = lambda: False,
    queued: Callable[[], None] | None = None,
) -> int:
    """Expire stale held posts, then send what is due; returns how many posts went out.
    Thread context (blocking database work). `stopping` is asked between batches, so a
    daemon told to stop does not wait for a large fan-out to finish (it resumes later);
    `queued` is told whenever rows were queued (the sender starts on them at once)."""
    now = now or utcnow()
    with engine.begin() as conn:
        expired = decisions.expire(conn, ctx, now)
    if expired:
        log.info("%d held post(s) expired", expired)
    with reading(engine) as conn:
        due = posts.due(conn, now)
    released = 0
    keys = settings.dkim_keys
    for post in due:
        hold = hold_of(ctx, post, now)
        _record_hold(engine, post, hold, now)
        if hold is not None or not _lease(engine, post.id, settings):
            continue  # held, or another daemon is releasing it
        if post.state is not PostState.SENDING and not _start(engine, ctx, post, keys):
            _let_go(engine, post.id, settings)
            continue
        stream = fanout.Stream(engine, ctx, post.id, keys, queued=queued)
        try:
            while True:
                # a pause or an outage that starts during a large fan-out stops it
                # between batches; the cursor keeps its place
                if hold_of(ctx, post, utcnow()) is not None or stopping():
                    _let_go(engine, post.id, settings)
                    break
                if not stream.next():
                    released += _finish(engine, ctx, post.id)
                    break
                if not _lease(engine, post.id, settings):
                    break  # this daemon was too slow to renew, and another took it over
        finally:
            stream.close()
    return released


async def run(
    engine: sa.Engine,
    ctx_of: Callable[[], Context],
    settings: ReleaseSettings,
    wake_sender: Callable[[], None],
) -> None:
    """Forever: release what is due, then wait `settings.poll` seconds."""
    stop = threading.Event()
    loop = asyncio.get_running_loop()

    def queued() -> None:  # from the release thread: the sender's event is the loop's
        loop.call_soon_threadsafe(wake_sender)

    try:
        while True:
            try:
                if await asyncio.to_thread(
                    release_due, engine, ctx_of(), settings, None, stop.is_set, queued
                ):
                    wake_sender()
            except Exception:  # the database away, or a bug: logged, and the task goes on
                log.exception("release: failed; retrying")
            await asyncio.sleep(settings.poll)
    finally:
        stop.set()  # the thread stops after its current batch
