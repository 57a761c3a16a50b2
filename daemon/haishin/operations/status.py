"""The service at a glance (第4条(1): failures must be findable): one snapshot of the store
that `haishin status` prints and the daemon's /metrics exposes to Prometheus."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..clock import utcnow
from ..store import outage_notices
from ..store.engine import reading
from ..store.outage_notices import NoticeRecord
from ..store.schema import (
    UTCDateTime,
    confirmations,
    inbound,
    outbound,
    outbound_messages,
    subscribers,
)
from ..store.schema import posts as posts_table
from ..store.states import QueueState
from . import outage_status

RATE_WINDOW = dt.timedelta(minutes=5)
OUTAGES_SHOWN = dt.timedelta(days=30)  # stops ended longer ago are in the monthly report


@dataclass(frozen=True)
class Snapshot:
    at: dt.datetime
    inbound: dict[str, int]
    outbound: dict[str, int]
    deferred: int
    """Queued rows that have failed at least once (4xx or connection) and wait to retry."""
    sent_recent: int
    """Rows sent within RATE_WINDOW: the delivery rate is this over the window."""
    oldest_queued_seconds: float
    subscribers: dict[tuple[str, str], int] = field(default_factory=dict)
    """(channel, status) → count."""
    confirmations_requested_24h: int = 0
    confirmations_used_24h: int = 0
    pending_by_post: dict[int, int] = field(default_factory=dict)
    """Post id (the id `held`, `status --message` and the logs use) → its rows queued or
    sending: the posts on their way out."""
    pending_by_kind: dict[str, int] = field(default_factory=dict)
    """Rows queued or sending by kind of mail (posts, replies, confirmations …)."""
    outages: list[NoticeRecord] = field(default_factory=list)
    """The stops to come, in force or recently ended, with their 第9条 notices."""

    @property
    def delivery_rate(self) -> float:
        return self.sent_recent / RATE_WINDOW.total_seconds()

    @property
    def confirmation_rate(self) -> float:
        if not self.confirmations_requested_24h:
            return 0.0
        return self.confirmations_used_24h / self.confirmations_requested_24h


def _by(conn: sa.Connection, column: sa.ColumnElement[str]) -> dict[str, int]:
    table = column.table
    rows = conn.execute(sa.select(column, sa.func.count()).select_from(table).group_by(column))
    return {str(k): int(n) for k, n in rows}


def snapshot(engine: sa.Engine, now: dt.datetime | None = None) -> Snapshot:
    now = now or utcnow()
    day = now - dt.timedelta(hours=24)
    with reading(engine) as conn:
        inbound_counts = _by(conn, inbound.c.state)
        outbound_counts = _by(conn, outbound.c.state)
        deferred = conn.execute(
            sa.select(sa.func.count()).where(
                outbound.c.state == QueueState.QUEUED, outbound.c.attempts > 0
            )
        ).scalar_one()
        sent_recent = conn.execute(
            sa.select(sa.func.count()).where(
                outbound.c.state == QueueState.SENT, outbound.c.done_at >= now - RATE_WINDOW
            )
        ).scalar_one()
        oldest = conn.execute(
            sa.select(sa.func.min(outbound.c.created_at)).where(
                outbound.c.state == QueueState.QUEUED
            )
        ).scalar_one()
        subs = {
            (str(c), str(s)): int(n)
            for c, s, n in conn.execute(
                sa.select(subscribers.c.channel, subscribers.c.status, sa.func.count()).group_by(
                    subscribers.c.channel, subscribers.c.status
                )
            )
        }
        pending_posts: dict[int, int] = {}
        pending_kinds: dict[str, int] = {}
        for kind, post_id, n in conn.execute(
            sa.select(outbound_messages.c.kind, posts_table.c.id, sa.func.count())
            .select_from(
                outbound.join(
                    outbound_messages, outbound_messages.c.id == outbound.c.message_id
                ).outerjoin(posts_table, posts_table.c.outbound_message == outbound.c.message_id)
            )
            .where(outbound.c.state.in_((QueueState.QUEUED, QueueState.SENDING)))
            .group_by(outbound_messages.c.kind, posts_table.c.id)
        ):
            pending_kinds[str(kind)] = pending_kinds.get(str(kind), 0) + int(n)
            if post_id is not None:
                pending_posts[int(post_id)] = int(n)
        requested = conn.execute(
            sa.select(sa.func.count()).where(confirmations.c.created_at >= day)
        ).scalar_one()
        stops = outage_notices.records(conn, since=now - OUTAGES_SHOWN)
        used = conn.execute(
            sa.select(sa.func.count()).where(
                confirmations.c.created_at >= day, confirmations.c.used_at.is_not(None)
            )
        ).scalar_one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return Snapshot(
        at=now,
        inbound=inbound_counts,
        outbound=outbound_counts,
        deferred=int(deferred),
        sent_recent=int(sent_recent),
        oldest_queued_seconds=(now - oldest).total_seconds() if oldest else 0.0,
        subscribers=subs,
        confirmations_requested_24h=int(requested),
        confirmations_used_24h=int(used),
        pending_by_post=pending_posts,
        pending_by_kind=pending_kinds,
        outages=stops,
    )


def describe(s: Snapshot) -> str:
    """`haishin status`: the same figures as /metrics, for a person."""
    lines = [
        f"時刻 {s.at:%Y-%m-%d %H:%M:%S} UTC",
        "受信: " + (", ".join(f"{k} {v}" for k, v in sorted(s.inbound.items())) or "なし"),
        "送信: " + (", ".join(f"{k} {v}" for k, v in sorted(s.outbound.items())) or "なし"),
        f"再送待ち {s.deferred} 件、最も古い送信待ち {s.oldest_queued_seconds:.0f} 秒",
        f"配信速度 {s.delivery_rate:.1f} 通/秒（直近 5 分）",
        f"確認依頼（24 時間）{s.confirmations_requested_24h} 件、うち確認済み "
        f"{s.confirmations_used_24h} 件（{s.confirmation_rate:.0%}）",
        "登録者:",
    ]
    channels = sorted({c for c, _ in s.subscribers})
    for channel in channels:
        parts = [f"{st} {n}" for (c, st), n in sorted(s.subscribers.items()) if c == channel]
        lines.append(f"  {channel}: " + ", ".join(parts))
    lines.extend(outage_status.describe(s.outages, s.at))
    return "\n".join(lines)


PROGRESS_WINDOW = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Progress:
    """One outbound message (a post: one body, a row per recipient) on its way out."""

    message_id: int
    states: dict[str, int]
    deferred: int
    """Queued rows that failed at least once (4xx, connection) or wait for their domain."""
    sent_recent: int
    """Rows sent within PROGRESS_WINDOW."""
    first_done: dt.datetime | None
    last_done: dt.datetime | None

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def sent(self) -> int:
        return self.states.get(QueueState.SENT, 0)

    @property
    def failed(self) -> int:
        return self.states.get(QueueState.BOUNCED, 0) + self.states.get(QueueState.FAILED, 0)

    @property
    def pending(self) -> int:
        return self.states.get(QueueState.QUEUED, 0) + self.states.get(QueueState.SENDING, 0)

    @property
    def rate(self) -> float:
        """Messages per second: over the last minute while sending, overall once done."""
        if self.pending:
            return self.sent_recent / PROGRESS_WINDOW.total_seconds()
        if self.first_done and self.last_done and self.last_done > self.first_done:
            return self.sent / (self.last_done - self.first_done).total_seconds()
        return 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.pending:
            return 0.0
        return self.pending / self.rate if self.rate else None


def progress(engine: sa.Engine, message_id: int, now: dt.datetime | None = None) -> Progress:
    now = now or utcnow()
    mine = outbound.c.message_id == message_id
    with reading(engine) as conn:
        states = {
            str(s): int(n)
            for s, n in conn.execute(
                sa.select(outbound.c.state, sa.func.count()).where(mine).group_by(outbound.c.state)
            )
        }
        deferred = conn.execute(
            sa.select(sa.func.count()).where(
                mine, outbound.c.state == QueueState.QUEUED, outbound.c.next_try > now
            )
        ).scalar_one()
        recent = conn.execute(
            sa.select(sa.func.count()).where(
                mine,
                outbound.c.state == QueueState.SENT,
                outbound.c.done_at >= now - PROGRESS_WINDOW,
            )
        ).scalar_one()
        first, last = conn.execute(
            sa.select(
                sa.func.min(outbound.c.done_at, type_=UTCDateTime()),
                sa.func.max(outbound.c.done_at, type_=UTCDateTime()),
            ).where(mine, outbound.c.state == QueueState.SENT)
        ).one()
    return Progress(message_id, states, int(deferred), int(recent), first, last)


def describe_progress(p: Progress) -> str:
    """`haishin status --message ID`: sent, deferred, failed, rate, eta."""
    if not p.total:
        return f"送信 #{p.message_id}: 該当する送信はありません"
    eta = p.eta_seconds
    when = "完了" if eta == 0 else ("不明" if eta is None else f"約 {eta:.0f} 秒")
    return "\n".join(
        [
            f"送信 #{p.message_id}: 宛先 {p.total} 件",
            f"送信済み {p.sent}、送信待ち {p.pending}（うち再送・ペース待ち {p.deferred}）、"
            f"失敗 {p.failed}",
            f"速度 {p.rate:.1f} 通/秒、残り {when}",
        ]
    )
