"""Each daemon's liveness (issue 16 item 3, 第4条(1): failures must be findable): its
last heartbeat, what it holds (claimed rows, connection slots of limited domains) and
its rate over the last 10 seconds, for `haishin status` and /metrics.

A daemon whose heartbeat is older than `heartbeats.DEAD_AFTER` is gone: its claimed rows go
back to the queue and its connection leases run out (store/leases.py) within that span,
so it is shown as gone no later than what it held is given back. A gone daemon stays
listed until the heartbeat table forgets it (100 × DEAD_AFTER).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from ..store import leases
from ..store.engine import reading
from ..store.heartbeats import DEAD_AFTER
from ..store.schema import outbound, senders
from ..store.states import QueueState


@dataclass(frozen=True)
class DaemonState:
    id: str
    host: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    alive: bool
    claimed: int
    """Rows it claimed and has not settled."""
    lanes: tuple[str, ...]
    """The limited domains it holds a connection slot of, once per connection."""
    rate: float
    """Messages per second over the last 10 seconds, as it said in its last heartbeat."""

    def silent_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.heartbeat_at).total_seconds())


def daemons(engine: sa.Engine, now: dt.datetime | None = None) -> list[DaemonState]:
    """Every sender the heartbeat table knows, the live ones first, newest first."""
    now = now or utcnow()
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(
                senders.c.id,
                senders.c.host,
                senders.c.started_at,
                senders.c.heartbeat_at,
                senders.c.rate,
            )
        ).all()
        claimed = {
            str(by): int(n)
            for by, n in conn.execute(
                sa.select(outbound.c.claimed_by, sa.func.count())
                .where(outbound.c.state == QueueState.SENDING)
                .group_by(outbound.c.claimed_by)
            )
        }
    held = leases.held(engine)
    out = [
        DaemonState(
            id=str(r.id),
            host=str(r.host or "?"),
            started_at=r.started_at,
            heartbeat_at=r.heartbeat_at,
            alive=r.heartbeat_at >= now - DEAD_AFTER,
            claimed=claimed.get(str(r.id), 0),
            lanes=tuple(held.get(str(r.id), ())),
            rate=float(r.rate or 0.0),
        )
        for r in rows
    ]
    out.sort(key=lambda d: (not d.alive, -d.heartbeat_at.timestamp()))
    return out


def _lanes(d: DaemonState) -> str:
    if not d.lanes:
        return "なし"
    return ", ".join(f"{k}×{n}" for k, n in sorted(Counter(d.lanes).items()))


def describe_daemons(states: list[DaemonState], now: dt.datetime | None = None) -> str:
    """`haishin status`: one line per daemon."""
    now = now or utcnow()
    if not states:
        return "デーモン: 送信中のものはありません"
    live = [d for d in states if d.alive]
    lines = [
        f"デーモン: 稼働 {len(live)}、停止 {len(states) - len(live)}、"
        f"合計 {sum(d.rate for d in live):.1f} 通/秒（直近 10 秒）"
    ]
    for d in states:
        silent = d.silent_seconds(now)
        if d.alive:
            lines.append(
                f"  {d.id} {d.host} 稼働中（最終応答 {silent:.0f} 秒前）、"
                f"送信中 {d.claimed} 件、接続枠 {_lanes(d)}、速度 {d.rate:.1f} 通/秒（直近 10 秒）"
            )
        else:
            lines.append(
                f"  {d.id} {d.host} 停止（最終応答 {silent:.0f} 秒前）、取り戻し待ち {d.claimed} 件"
            )
    return "\n".join(lines)
