"""Each sender's heartbeat, and what becomes of a silent one's claims: rows claimed by a
sender whose heartbeat stopped (killed, machine lost) go back to the queue, while live
daemons sharing a PostgreSQL database keep theirs (design.md: at most the in-flight batch
is repeated).
"""

from __future__ import annotations

import datetime as dt
import os
import socket

import sqlalchemy as sa

from ..clock import utcnow
from .queue import WORKER_ID
from .schema import outbound, senders
from .states import QueueState

HEARTBEAT_EVERY = dt.timedelta(seconds=2)
DEAD_AFTER = dt.timedelta(seconds=10)
"""A sender silent this long is dead: its claimed rows are queued again."""
HOST = f"{socket.gethostname()}[{os.getpid()}]"  # where this sender runs, for people


def heartbeat(engine: sa.Engine, rate: float | None = None) -> None:
    """Say this sender is alive (insert on first call, update after), with its rate over
    the last seconds (messages/s) for `haishin status`."""
    now = utcnow()
    row = {"heartbeat_at": now, "rate": rate}
    with engine.begin() as conn:
        updated = conn.execute(senders.update().where(senders.c.id == WORKER_ID).values(row))
        if not updated.rowcount:
            conn.execute(senders.insert().values(id=WORKER_ID, started_at=now, host=HOST, **row))
        # forget senders long dead, so the table stays small
        conn.execute(senders.delete().where(senders.c.heartbeat_at < now - 100 * DEAD_AFTER))


def recover(engine: sa.Engine, *, mine: bool = False) -> int:
    """Rows claimed by a sender that is no longer alive go back to the queue.

    SQLite has one daemon per file, so every claim but ours is stale; on PostgreSQL other
    daemons may be sending right now, and only a stopped heartbeat makes a claim stale.
    With `mine`, this process's own claims too: the sender task starting again after an
    error holds none of them, and an earlier run's results it could not write (the
    database away) would otherwise stay `sending` until the process restarts. Those go
    out again, as after a crash: at most `outbound.chains.repeat_bound` of them."""
    stale = outbound.c.claimed_by != WORKER_ID
    if engine.dialect.name != "sqlite":
        alive = sa.select(senders.c.id).where(senders.c.heartbeat_at >= utcnow() - DEAD_AFTER)
        stale = sa.and_(stale, outbound.c.claimed_by.not_in(alive))
    if mine:
        stale = sa.or_(stale, outbound.c.claimed_by == WORKER_ID)
    with engine.begin() as conn:
        result = conn.execute(
            outbound.update()
            .where(outbound.c.state == QueueState.SENDING, stale)
            .values(state=QueueState.QUEUED, claimed_by=None)
        )
    return result.rowcount
