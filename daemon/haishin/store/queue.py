"""The durable outbound queue: one rendered body, one row per recipient.

Designed for the posting issue's fan-out (a hundred thousand recipients per post): rows
are claimed in batches, in PostgreSQL with `FOR UPDATE SKIP LOCKED` so several daemons
share the work and each recipient is delivered once; a crashed sender's claimed rows go
back to the queue at start, so at most the in-flight batch is repeated (design.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .clock import utcnow
from .engine import reading
from .schema import UTCDateTime, outbound, outbound_messages, senders

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
BOUNCED = "bounced"  # 5xx: permanent, recorded (design.md reliability promises)
FAILED = "failed"  # 4xx or connection failures for longer than the retry window

WORKER_ID = f"{uuid.uuid4().hex[:12]}"
"""Who claimed a row: this process."""


@dataclass(frozen=True)
class Claimed:
    id: int
    mail_from: str
    rcpt: str
    attempts: int
    headers: bytes | None
    raw: bytes


_INSERT_MESSAGE = outbound_messages.insert()
_INSERT_ROW = outbound.insert()


def enqueue(
    conn: sa.Connection,
    raw: bytes,
    mail_from: str,
    rcpts: Sequence[str],
    *,
    kind: str,
    headers: Sequence[bytes | None] | None = None,
    not_before: dt.datetime | None = None,
) -> int:
    """Queue one message for several recipients inside the caller's transaction."""
    now = utcnow()
    result = conn.execute(_INSERT_MESSAGE, {"created_at": now, "kind": kind, "raw": raw})
    assert result.inserted_primary_key is not None
    message_id = int(result.inserted_primary_key[0])
    per = headers or [None] * len(rcpts)
    if rcpts:
        conn.execute(
            _INSERT_ROW,
            [
                {
                    "message_id": message_id,
                    "mail_from": mail_from,
                    "rcpt": rcpt,
                    "headers": h,
                    "state": QUEUED,
                    "attempts": 0,
                    "next_try": not_before or now,
                    "created_at": now,
                }
                for rcpt, h in zip(rcpts, per, strict=True)
            ],
        )
    return message_id


def add_message(conn: sa.Connection, raw: bytes, *, kind: str) -> int:
    """Store one rendered body; its recipients follow with `add_rows`."""
    result = conn.execute(_INSERT_MESSAGE, {"created_at": utcnow(), "kind": kind, "raw": raw})
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def add_rows(
    conn: sa.Connection,
    message_id: int,
    rows: Sequence[tuple[str, str, bytes | None]],
    not_before: dt.datetime | None = None,
) -> None:
    """Queue (envelope sender, recipient, per-recipient headers) rows for one body, each
    with its own return path (VERP), in one executemany."""
    if not rows:
        return
    now = utcnow()
    conn.execute(
        _INSERT_ROW,
        [
            {
                "message_id": message_id,
                "mail_from": mail_from,
                "rcpt": rcpt,
                "headers": headers,
                "state": QUEUED,
                "attempts": 0,
                "next_try": not_before or now,
                "created_at": now,
            }
            for mail_from, rcpt, headers in rows
        ],
    )


def claim(engine: sa.Engine, limit: int, now: dt.datetime | None = None) -> list[Claimed]:
    """Claim up to `limit` due rows for this process and return them with their bodies."""
    now = now or utcnow()
    with engine.begin() as conn:
        due = (
            sa.select(outbound.c.id)
            .where(outbound.c.state == QUEUED, outbound.c.next_try <= now)
            .order_by(outbound.c.next_try, outbound.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = [int(i) for i in conn.execute(due).scalars()]
        if not ids:
            return []
        conn.execute(
            outbound.update()
            .where(outbound.c.id.in_(ids), outbound.c.state == QUEUED)
            .values(state=SENDING, claimed_at=now, claimed_by=WORKER_ID)
        )
        rows = conn.execute(
            sa.select(
                outbound.c.id,
                outbound.c.mail_from,
                outbound.c.rcpt,
                outbound.c.attempts,
                outbound.c.headers,
                outbound_messages.c.raw,
            )
            .join(outbound_messages, outbound_messages.c.id == outbound.c.message_id)
            .where(outbound.c.id.in_(ids), outbound.c.claimed_by == WORKER_ID)
            .order_by(outbound.c.id)
        ).all()
    return [
        Claimed(
            id=r.id,
            mail_from=r.mail_from,
            rcpt=r.rcpt,
            attempts=r.attempts,
            headers=bytes(r.headers) if r.headers is not None else None,
            raw=bytes(r.raw),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Result:
    id: int
    state: str  # SENT | BOUNCED | FAILED | QUEUED (retry)
    error: str | None = None
    next_try: dt.datetime | None = None


def settle(
    engine: sa.Engine,
    results: Sequence[Result],
    then: Callable[[sa.Connection], None] | None = None,
) -> None:
    """Record the outcome of a claimed batch in one transaction; `then` runs inside it
    (the bounce score of 5xx replies commits with the rows, or neither does)."""
    now = utcnow()
    sent = [r.id for r in results if r.state == SENT]
    with engine.begin() as conn:
        if sent:  # the common case, in one statement
            conn.execute(
                outbound.update()
                .where(outbound.c.id.in_(sent))
                .values(state=SENT, attempts=outbound.c.attempts + 1, done_at=now, last_error=None)
            )
        for r in results:
            if r.state == SENT:
                continue
            values: dict[str, object] = {"state": r.state, "last_error": r.error}
            if r.state == QUEUED:
                values |= {
                    "attempts": outbound.c.attempts + 1,
                    "next_try": r.next_try or now,
                    "claimed_by": None,
                }
            else:
                values |= {"attempts": outbound.c.attempts + 1, "done_at": now}
            conn.execute(outbound.update().where(outbound.c.id == r.id).values(**values))
        if then is not None:
            then(conn)


HEARTBEAT_EVERY = dt.timedelta(seconds=2)
DEAD_AFTER = dt.timedelta(seconds=10)
"""A sender silent this long is dead: its claimed rows are queued again."""


def heartbeat(engine: sa.Engine) -> None:
    """Say this sender is alive (insert on first call, update after)."""
    now = utcnow()
    with engine.begin() as conn:
        updated = conn.execute(
            senders.update().where(senders.c.id == WORKER_ID).values(heartbeat_at=now)
        ).rowcount
        if not updated:
            conn.execute(senders.insert().values(id=WORKER_ID, started_at=now, heartbeat_at=now))
        # forget senders long dead, so the table stays small
        conn.execute(senders.delete().where(senders.c.heartbeat_at < now - 100 * DEAD_AFTER))


def recover(engine: sa.Engine) -> int:
    """Rows claimed by a sender that is no longer alive go back to the queue.

    SQLite has one daemon per file, so every claim but ours is stale; on PostgreSQL other
    daemons may be sending right now, and only a stopped heartbeat makes a claim stale."""
    cond = [outbound.c.state == SENDING, outbound.c.claimed_by != WORKER_ID]
    if engine.dialect.name != "sqlite":
        alive = sa.select(senders.c.id).where(senders.c.heartbeat_at >= utcnow() - DEAD_AFTER)
        cond.append(outbound.c.claimed_by.not_in(alive))
    with engine.begin() as conn:
        result = conn.execute(outbound.update().where(*cond).values(state=QUEUED, claimed_by=None))
    return result.rowcount


def next_due(engine: sa.Engine) -> dt.datetime | None:
    with reading(engine) as conn:
        return conn.execute(
            sa.select(sa.func.min(outbound.c.next_try, type_=UTCDateTime())).where(
                outbound.c.state == QUEUED
            )
        ).scalar()


def counts(engine: sa.Engine) -> dict[str, int]:
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(outbound.c.state, sa.func.count()).group_by(outbound.c.state)
        ).all()
    return {str(s): int(n) for s, n in rows}
