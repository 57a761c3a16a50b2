"""The 第9条 notices and reports in the store: what each stop of the served registry owes
the other party, and whether the daemon has told them (schema.py `outage_notices`).

The claim is one conditional UPDATE in the transaction that queues the mail: on
PostgreSQL a second daemon's UPDATE waits for the first's row lock and then finds the
row no longer pending (READ COMMITTED re-reads it), so it queues nothing; SQLite has one
writer. No check-then-send race, and a rolled-back transaction leaves the row pending for
the next pass: nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .engine import dialect_insert
from .schema import outage_notices, outbound
from .states import QueueState

MAX_ATTEMPTS = 3
"""How often the daemon queues a notice whose mail failed for good (4xx past the retry
window); after that `haishin outage notify` queues it again by hand."""


class NoticeState(enum.StrEnum):
    """The `outage_notices.state` column."""

    PENDING = "pending"  # owed; the daemon queues it once due
    QUEUED = "queued"  # the daemon queued it (the outbound row says whether it went)
    RECORDED = "recorded"  # the registry file records it given by other means


@dataclass(frozen=True, slots=True)
class Owed:
    """What the served registry says is owed for one stop (one row to mirror)."""

    outage_id: str
    kind: str  # operations.outages.Announcement: notice | report
    stopped_by: str
    to_role: str
    reason: str
    start: dt.datetime
    end: dt.datetime | None
    due_at: dt.datetime
    recorded_at: dt.datetime | None  # the file's notice:/report: at, if any


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    """One stop and its notice or report, as `haishin status` and the 統括管理者's report
    show it."""

    outage_id: str
    kind: str
    stopped_by: str
    to_role: str
    reason: str
    start: dt.datetime
    end: dt.datetime | None
    due_at: dt.datetime
    state: NoticeState
    recorded_at: dt.datetime | None
    queued_at: dt.datetime | None
    sent_at: dt.datetime | None  # the smarthost took it (outbound row sent)
    delivery: str | None  # the outbound row's state, None when not queued or purged
    attempts: int


def mirror(conn: sa.Connection, owed: Sequence[Owed], now: dt.datetime) -> None:
    """Bring the rows in line with a served registry: new stops are added, changed windows
    updated, and a pending row whose stop left the registry (a cancelled draft) deleted.
    A queued row keeps its record whatever the registry says now."""
    c = outage_notices.c
    for o in owed:
        values = {
            "stopped_by": o.stopped_by,
            "to_role": o.to_role,
            "reason": o.reason,
            "start": o.start,
            "end": o.end,
            "due_at": o.due_at,
            "recorded_at": o.recorded_at,
            "seen_at": now,
        }
        state = NoticeState.RECORDED if o.recorded_at is not None else NoticeState.PENDING
        insert = dialect_insert(conn)(outage_notices).values(
            outage_id=o.outage_id, kind=o.kind, state=state, **values
        )
        # a queued row is not turned back into pending or recorded by a later registry
        update_state = sa.case((c.state == NoticeState.QUEUED, c.state), else_=state)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["outage_id", "kind"],
                set_={**values, "state": update_state},
            )
        )
    kept = [(o.outage_id, o.kind) for o in owed]
    gone = c.state != NoticeState.QUEUED
    if kept:
        gone = sa.and_(gone, sa.tuple_(c.outage_id, c.kind).not_in(kept))
    conn.execute(outage_notices.delete().where(gone))


def due(conn: sa.Connection, now: dt.datetime) -> list[tuple[str, str]]:
    """(outage id, kind) of the pending rows due at `now`; a notice whose stop has begun
    is no longer an advance notice (第9条2・4) and is left for staff (status shows it)."""
    c = outage_notices.c
    rows = conn.execute(
        sa.select(c.outage_id, c.kind).where(
            c.state == NoticeState.PENDING,
            c.due_at <= now,
            sa.or_(c.kind != "notice", c.start > now),
        )
    )
    return [(str(i), str(k)) for i, k in rows]


def claim(conn: sa.Connection, outage_id: str, kind: str, now: dt.datetime) -> bool:
    """Mark the row queued now, inside the caller's transaction; False if another daemon
    (or an earlier pass) has, or it is not due."""
    c = outage_notices.c
    claimed = (
        outage_notices.update()
        .where(
            c.outage_id == outage_id,
            c.kind == kind,
            c.state == NoticeState.PENDING,
            c.due_at <= now,
        )
        .values(state=NoticeState.QUEUED, queued_at=now, attempts=c.attempts + 1)
        .returning(c.outage_id)
    )
    return conn.execute(claimed).first() is not None


def set_message(conn: sa.Connection, outage_id: str, kind: str, message_id: int) -> None:
    c = outage_notices.c
    conn.execute(
        outage_notices.update()
        .where(c.outage_id == outage_id, c.kind == kind)
        .values(message_id=message_id)
    )


def requeue_failed(conn: sa.Connection) -> int:
    """Queued notices whose mail failed for good (4xx past the retry window) are pending
    again, up to MAX_ATTEMPTS: a failed send is retried, not lost. A 5xx (bounced) says the
    address is wrong: staff correct service.yaml and force it (`haishin outage notify`)."""
    c = outage_notices.c
    failed = sa.select(outbound.c.message_id).where(outbound.c.state == QueueState.FAILED)
    done = conn.execute(
        outage_notices.update()
        .where(
            c.state == NoticeState.QUEUED,
            c.attempts < MAX_ATTEMPTS,
            c.message_id.in_(failed),
        )
        .values(state=NoticeState.PENDING, due_at=c.queued_at)
        .returning(c.outage_id)
    )
    return len(done.all())


class Forced(enum.Enum):
    """What `haishin outage notify` did."""

    DUE_NOW = "the daemon queues it at its next pass"
    UNKNOWN = "no such stop in the served registry (yet)"
    SENT = "already queued and not failed"
    RECORDED = "the registry file records it given by other means"
    STARTED = "the stop has begun: an advance notice is no longer possible"


def force(conn: sa.Connection, outage_id: str, now: dt.datetime) -> tuple[Forced, str | None]:
    """Make the stop's notice or report due now (or due again, after a failed or bounced
    send); the daemon sends it. Returns what was done and the kind."""
    c = outage_notices.c
    row = conn.execute(
        sa.select(c.kind, c.state, c.start, c.message_id)
        .where(c.outage_id == outage_id)
        .with_for_update()
    ).first()
    if row is None:
        return Forced.UNKNOWN, None
    kind = str(row.kind)
    if row.state == NoticeState.RECORDED:
        return Forced.RECORDED, kind
    if kind == "notice" and row.start <= now:
        return Forced.STARTED, kind
    if row.state == NoticeState.QUEUED:
        delivery = conn.execute(
            sa.select(outbound.c.state).where(outbound.c.message_id == row.message_id)
        ).scalar()
        if delivery not in (QueueState.FAILED, QueueState.BOUNCED):
            return Forced.SENT, kind
    conn.execute(
        outage_notices.update()
        .where(c.outage_id == outage_id, c.kind == kind)
        .values(state=NoticeState.PENDING, due_at=now)
    )
    return Forced.DUE_NOW, kind


def records(
    conn: sa.Connection, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[NoticeRecord]:
    """The stops and their notices or reports, by start; with `since`/`until`, only the
    stops whose window or notice touches [since, until) (a month of the report)."""
    c = outage_notices.c
    o = outbound.c
    query = (
        sa.select(outage_notices, o.state.label("delivery"), o.done_at)
        .select_from(outage_notices.outerjoin(outbound, o.message_id == c.message_id))
        .order_by(c.start, c.outage_id)
    )
    if until is not None:
        query = query.where(sa.or_(c.start < until, c.queued_at < until))
    if since is not None:
        query = query.where(
            sa.or_(c.end.is_(None), c.end >= since, c.queued_at >= since, c.recorded_at >= since)
        )
    out = []
    for r in conn.execute(query):
        delivery = None if r.delivery is None else str(r.delivery)
        out.append(
            NoticeRecord(
                outage_id=r.outage_id,
                kind=r.kind,
                stopped_by=r.stopped_by,
                to_role=r.to_role,
                reason=r.reason,
                start=r.start,
                end=r.end,
                due_at=r.due_at,
                state=NoticeState(r.state),
                recorded_at=r.recorded_at,
                queued_at=r.queued_at,
                sent_at=r.done_at if delivery == QueueState.SENT else None,
                delivery=delivery,
                attempts=int(r.attempts),
            )
        )
    return out
