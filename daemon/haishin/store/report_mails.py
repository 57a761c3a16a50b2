"""Mails sent once per period and recipient (issue 15): the monthly report and the
dormancy reminder. The row is the claim: inserted in the transaction that queues the mail,
so several daemons on one PostgreSQL database, or a restart, queue it once; a transaction
that fails leaves no row, and the next check tries again."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import utcnow
from .schema import report_mails


class Kind(enum.StrEnum):
    MONTHLY = "monthly"  # subject: a department's id, or ALL; period: the month's first day
    DORMANT = "dormant"  # subject: a channel; period: the day its quiet span began


ALL = "*"  # the 統括管理者's report: every channel


def claim(
    conn: sa.Connection, kind: Kind, subject: str, period: dt.date, message_id: int | None = None
) -> bool:
    """True when this transaction is the one that sends it (the row was not there)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    claimed = (
        insert(report_mails)
        .values(kind=kind, subject=subject, period=period, sent_at=utcnow(), message_id=message_id)
        .on_conflict_do_nothing()
        # RETURNING, not rowcount: PostgreSQL drivers report -1 for a primary-key insert
        .returning(report_mails.c.period)
    )
    return conn.execute(claimed).first() is not None


def set_message(
    conn: sa.Connection, kind: Kind, subject: str, period: dt.date, message_id: int
) -> None:
    r = report_mails.c
    conn.execute(
        report_mails.update()
        .where(r.kind == kind, r.subject == subject, r.period == period)
        .values(message_id=message_id)
    )


def sent(conn: sa.Connection, kind: Kind, subject: str, period: dt.date) -> dt.datetime | None:
    r = report_mails.c
    return conn.execute(
        sa.select(r.sent_at).where(r.kind == kind, r.subject == subject, r.period == period)
    ).scalar_one_or_none()


def latest(conn: sa.Connection, kind: Kind) -> dict[str, tuple[dt.date, dt.datetime]]:
    """Per subject, the latest period sent and when."""
    r = report_mails.c
    out: dict[str, tuple[dt.date, dt.datetime]] = {}
    for subject, period, at in conn.execute(
        sa.select(r.subject, r.period, r.sent_at).where(r.kind == kind).order_by(r.period)
    ):
        out[subject] = (period, at)
    return out
