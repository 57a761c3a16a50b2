"""One post's delivery, by the post's own id: the id `haishin held` lists, the logs write
as `post#N`, and `haishin status --message N` takes (issue 16 item 3; one id per post).

A post's state says where its fan-out is (rows being queued: `sending`; all queued:
`sent` in the store), not where its mail is: after the fan-out, rows are still queued
and deferred for a while. So what is shown to staff is the delivery as well: queued,
sent, deferred and failed rows, and the post is called `sent` only once no row waits.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ..store import posts
from ..store.engine import reading
from ..store.posts import Post, PostState
from ..store.schema import outbound
from ..store.states import QueueState
from .status import Progress, progress

DELIVERING = "delivering"
"""Shown for a post whose fan-out is done while some of its rows still wait."""

ENDED = (PostState.REJECTED, PostState.REFUSED, PostState.WITHDRAWN, PostState.EXPIRED)

RATE_WINDOW = 10.0
"""Seconds over which `--follow` measures the rate: recent enough to show a stall."""


@dataclass(frozen=True)
class PostDelivery:
    post: Post
    rows: Progress | None
    """None until the fan-out stored the post's body."""

    @property
    def total(self) -> int:
        return self.rows.total if self.rows else 0

    @property
    def sent(self) -> int:
        return self.rows.sent if self.rows else 0

    @property
    def failed(self) -> int:
        return self.rows.failed if self.rows else 0

    @property
    def deferred(self) -> int:
        return self.rows.deferred if self.rows else 0

    @property
    def queued(self) -> int:
        """Rows waiting for their first try or on the wire (deferred ones apart)."""
        return self.rows.pending - self.rows.deferred if self.rows else 0

    @property
    def state(self) -> str:
        """The post's state for a person: never `sent` while one of its rows waits."""
        if self.post.state is PostState.SENT and self.rows and self.rows.pending:
            return DELIVERING
        return str(self.post.state)

    @property
    def done(self) -> bool:
        """Nothing more will happen to its delivery: all rows settled, or it ended unsent."""
        if self.post.state in ENDED:
            return True
        return self.post.state is PostState.SENT and not (self.rows and self.rows.pending)


def of_post(engine: sa.Engine, post_id: int, now: dt.datetime | None = None) -> PostDelivery | None:
    with reading(engine) as conn:
        post = posts.get(conn, post_id)
    if post is None:
        return None
    rows = None if post.outbound_message is None else progress(engine, post.outbound_message, now)
    return PostDelivery(post, rows)


def pending_of(conn: sa.Connection, found: list[Post]) -> dict[int, int]:
    """Post id → its rows still queued or sending, for a listing (one query)."""
    by_message = {p.outbound_message: p.id for p in found if p.outbound_message is not None}
    if not by_message:
        return {}
    rows = conn.execute(
        sa.select(outbound.c.message_id, sa.func.count())
        .where(
            outbound.c.message_id.in_(list(by_message)),
            outbound.c.state.in_((QueueState.QUEUED, QueueState.SENDING)),
        )
        .group_by(outbound.c.message_id)
    )
    return {by_message[int(m)]: int(n) for m, n in rows}


def shown_state(post: Post, pending: int) -> str:
    """`PostDelivery.state` for a listing, from the pending count of `pending_of`."""
    return DELIVERING if post.state is PostState.SENT and pending else str(post.state)


def counts(d: PostDelivery) -> str:
    """`haishin held show`: the delivery counts, in one line."""
    return (
        f"delivery: queued {d.queued}, sent {d.sent}, deferred {d.deferred}, "
        f"failed {d.failed} (rows {d.total} of {d.post.recipients} recipient(s) queued)"
    )


def describe_post(d: PostDelivery) -> str:
    """`haishin status --message ID`: sent, queued, deferred, failed, rate, eta."""
    head = f"post#{d.post.id} {d.post.channel} {d.state}"
    if d.rows is None or not d.total:
        return f"{head}: まだ配信を始めていません"
    eta = 0.0 if d.done else d.rows.eta_seconds
    return "\n".join(
        [
            f"{head}: 宛先 {d.total} 件",
            f"送信済み {d.sent}、送信待ち {d.queued}、再送・ペース待ち {d.deferred}、"
            f"失敗 {d.failed}",
            f"速度 {d.rows.rate:.1f} 通/秒、{'完了' if eta == 0 else _eta(eta)}",
        ]
    )


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "残り 不明"
    return f"残り 約 {seconds:.0f} 秒"


def progress_line(d: PostDelivery, rate: float) -> str:
    """One line of `--follow`: sent / total, rate, eta (Japanese, for staff)."""
    if d.rows is None and not d.done:  # held, scheduled or waiting: nothing queued yet
        return f"post#{d.post.id} {d.state}: まだ配信を始めていません"
    head = f"post#{d.post.id} {d.state}: 送信済み {d.sent} / {d.total}"
    if d.done:
        if d.post.state in ENDED:
            return f"{head}（終了: {d.post.state}）"
        return f"{head}、失敗 {d.failed}、完了"
    left = d.queued + d.deferred
    eta = left / rate if rate > 0 else None
    return f"{head}、再送待ち {d.deferred}、失敗 {d.failed}、{rate:.1f} 通/秒、{_eta(eta)}"


def follow(
    engine: sa.Engine,
    post_id: int,
    show: Callable[[str], None],
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PostDelivery | None:
    """Show a progress line every `interval` seconds until the post is done; the rate is
    measured between looks over the last RATE_WINDOW seconds (not the store's 1-minute
    count, which lags a fan-out that just started or stalled). None: no such post."""
    seen: deque[tuple[float, int]] = deque()
    while True:
        d = of_post(engine, post_id)
        if d is None:
            return None
        now = clock()
        seen.append((now, d.sent + d.failed))
        while len(seen) > 2 and now - seen[0][0] > RATE_WINDOW:
            seen.popleft()
        elapsed = now - seen[0][0]
        rate = (seen[-1][1] - seen[0][1]) / elapsed if elapsed > 0 else 0.0
        show(progress_line(d, rate))
        if d.done:
            return d
        sleep(interval)
