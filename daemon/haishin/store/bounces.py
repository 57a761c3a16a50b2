"""Bounce scores, bounce events and the weekly digests sent (issue 6, item 6).

Plain rows only: the scoring rule lives in `bounces/score.py`, which this module
does not import (the store stands below the daemon). Events never hold an address in
clear (第4条); they name the subscriber by id, and only the reports that staff may see
(the 情報管理者's, 第5条(2)) join the address back in.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import utcnow
from .schema import bounce_alarms, bounce_digests, bounce_events, bounce_scores, subscribers


class Source(enum.StrEnum):
    VERP = "verp"  # a report that came back to <slug>-bounces+<token>@
    SMTP = "smtp"  # a 5xx from the smarthost while we were sending
    PLAIN = "plain"  # a report to <slug>-bounces@ without a (valid) token


class BounceOutcome(enum.StrEnum):
    SCORED = "scored"
    DISABLED = "disabled"  # this event took the score to the threshold
    INACTIVE = "inactive"  # matched a subscription that is not active: nothing to score
    UNMATCHED = "unmatched"  # no subscription could be found for it
    REFUSED = "refused"  # a refusal: recorded, not scored (issue 12, item 2)
    UNSUBSCRIBED = "unsubscribed"  # a complaint (RFC 5965) ended the subscription


@dataclass(frozen=True, slots=True)
class StoredScore:
    score: float
    last_bounce: dt.date | None
    day_weight: float


@dataclass(frozen=True, slots=True)
class Event:
    day: dt.date
    channel: str | None
    subscriber_id: int | None
    source: Source
    kind: str
    outcome: BounceOutcome
    status: str | None = None
    diagnostic: str | None = None  # masked by the caller
    score: float | None = None
    inbound_id: int | None = None
    outbound_id: int | None = None
    reason: str | None = None  # Sisimai's vocabulary: userunknown, filtered, authfailure, ...
    domain: str | None = None  # the recipient's domain, never its local part


def _upsert(conn: sa.Connection) -> type[sqlite.Insert] | type[postgresql.Insert]:
    return postgresql.Insert if conn.dialect.name == "postgresql" else sqlite.Insert


def lock_subscriber(conn: sa.Connection, sub_id: int) -> str | None:
    """The subscriber's status, with its row locked on PostgreSQL until the commit.

    Two daemons may process two bounces for one subscriber at once; the score is read,
    changed and written, so the second must wait for the first. (SQLite has one writer.)
    """
    query = sa.select(subscribers.c.status).where(subscribers.c.id == sub_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    status = conn.execute(query).scalar()
    return None if status is None else str(status)


def load_score(conn: sa.Connection, sub_id: int) -> StoredScore:
    row = conn.execute(
        sa.select(
            bounce_scores.c.score, bounce_scores.c.last_bounce, bounce_scores.c.day_weight
        ).where(bounce_scores.c.subscriber_id == sub_id)
    ).first()
    if row is None:
        return StoredScore(0.0, None, 0.0)
    return StoredScore(float(row.score), row.last_bounce, float(row.day_weight))


def save_score(conn: sa.Connection, sub_id: int, score: StoredScore) -> None:
    values = {
        "score": score.score,
        "last_bounce": score.last_bounce,
        "day_weight": score.day_weight,
        "updated_at": utcnow(),
    }
    insert = _upsert(conn)(bounce_scores).values(subscriber_id=sub_id, **values)
    conn.execute(insert.on_conflict_do_update(index_elements=["subscriber_id"], set_=values))


def reset_score(conn: sa.Connection, sub_id: int) -> None:
    """A fresh start: the address proved again that it reads its mail."""
    conn.execute(bounce_scores.delete().where(bounce_scores.c.subscriber_id == sub_id))


def add_event(conn: sa.Connection, event: Event) -> None:
    conn.execute(
        bounce_events.insert().values(
            at=utcnow(),
            day=event.day,
            channel=event.channel,
            subscriber_id=event.subscriber_id,
            source=event.source,
            kind=event.kind,
            outcome=event.outcome,
            status=event.status,
            diagnostic=event.diagnostic[:500] if event.diagnostic else None,
            score=event.score,
            inbound_id=event.inbound_id,
            outbound_id=event.outbound_id,
            reason=event.reason,
            domain=event.domain,
        )
    )


def refusal_days(conn: sa.Connection, sub_id: int, reason: str, since: dt.date) -> list[dt.date]:
    """The days since `since` on which this subscription's mail was refused for `reason`."""
    rows = conn.execute(
        sa.select(bounce_events.c.day)
        .where(
            bounce_events.c.subscriber_id == sub_id,
            bounce_events.c.reason == reason,
            bounce_events.c.day >= since,
        )
        .order_by(bounce_events.c.day)
    ).scalars()
    return list(rows)


@dataclass(frozen=True, slots=True)
class Refusal:
    at: dt.datetime
    reason: str
    status: str | None
    diagnostic: str | None  # masked when it was stored


def refusals(
    conn: sa.Connection, domain: str, reasons: tuple[str, ...], since: dt.datetime
) -> list[Refusal]:
    """Refusals of `reasons` for recipients at `domain` since `since`, oldest first."""
    rows = conn.execute(
        sa.select(
            bounce_events.c.at,
            bounce_events.c.reason,
            bounce_events.c.status,
            bounce_events.c.diagnostic,
        )
        .where(
            bounce_events.c.domain == domain,
            bounce_events.c.reason.in_(reasons),
            bounce_events.c.at >= since,
        )
        .order_by(bounce_events.c.at, bounce_events.c.id)
    ).all()
    return [Refusal(r.at, str(r.reason), r.status, r.diagnostic) for r in rows]


def claim_alarm(conn: sa.Connection, domain: str, since: dt.datetime, events: int) -> bool:
    """Record that the alarm for `domain` goes out now, unless one went out since `since`
    (the window). Insert-or-nothing on (domain, window start): two daemons send it once."""
    recent = conn.execute(
        sa.select(bounce_alarms.c.domain).where(
            bounce_alarms.c.domain == domain, bounce_alarms.c.sent_at >= since
        )
    ).first()
    if recent is not None:
        return False
    insert = _upsert(conn)(bounce_alarms).values(
        domain=domain, window_start=since, sent_at=utcnow(), events=events
    )
    claimed = insert.on_conflict_do_nothing(index_elements=["domain", "window_start"]).returning(
        bounce_alarms.c.domain
    )
    return conn.execute(claimed).first() is not None


def set_alarm_message(
    conn: sa.Connection, domain: str, since: dt.datetime, message_id: int
) -> None:
    conn.execute(
        bounce_alarms.update()
        .where(bounce_alarms.c.domain == domain, bounce_alarms.c.window_start == since)
        .values(message_id=message_id)
    )


def refusal_counts(conn: sa.Connection, reasons: tuple[str, ...]) -> dict[tuple[str, str], int]:
    """(reason, domain) → refusals recorded, for the Prometheus counter."""
    rows = conn.execute(
        sa.select(bounce_events.c.reason, bounce_events.c.domain, sa.func.count())
        .where(bounce_events.c.reason.in_(reasons), bounce_events.c.domain.is_not(None))
        .group_by(bounce_events.c.reason, bounce_events.c.domain)
    ).all()
    return {(str(r), str(d)): int(n) for r, d, n in rows}


# --- reading, for the report and the digest ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scored:
    """A subscription with a stored score (the caller decides whether it is current)."""

    subscriber_id: int
    address: str = ""  # personal data: shown only where the 情報管理者 asked for it
    status: str = ""
    score: StoredScore = StoredScore(0.0, None, 0.0)


def scores(conn: sa.Connection, channel: str) -> list[Scored]:
    rows = conn.execute(
        sa.select(
            subscribers.c.id,
            subscribers.c.address,
            subscribers.c.status,
            bounce_scores.c.score,
            bounce_scores.c.last_bounce,
            bounce_scores.c.day_weight,
        )
        .join(bounce_scores, bounce_scores.c.subscriber_id == subscribers.c.id)
        .where(subscribers.c.channel == channel)
        .order_by(bounce_scores.c.score.desc(), subscribers.c.id)
    ).all()
    return [
        Scored(r.id, r.address, r.status, StoredScore(r.score, r.last_bounce, r.day_weight))
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Disabled:
    subscriber_id: int
    address: str
    day: dt.date
    status: str | None  # the RFC 3463 code of the bounce that disabled it
    reason: str | None = None  # e.g. "filtered": the subscriber's 受信拒否設定


def counts(conn: sa.Connection, channel: str, since: dt.date, until: dt.date) -> dict[str, int]:
    """Bounces per kind on days in [since, until): those that counted against an active
    subscription, and the unmatched ones under "unmatched". Bounces of mail to addresses
    that were not subscribed (a confirmation request to a mistyped address) are left out:
    they say nothing about the channel's recipients."""
    kind = sa.case(
        (bounce_events.c.outcome == BounceOutcome.UNMATCHED, "unmatched"),
        else_=bounce_events.c.kind,
    )
    rows = conn.execute(
        sa.select(kind, sa.func.count())
        .where(
            bounce_events.c.channel == channel,
            bounce_events.c.outcome != BounceOutcome.INACTIVE,
            bounce_events.c.day >= since,
            bounce_events.c.day < until,
        )
        .group_by(kind)
    ).all()
    return {str(k): int(n) for k, n in rows}


def disabled(conn: sa.Connection, channel: str, since: dt.date, until: dt.date) -> list[Disabled]:
    """Subscriptions that bounces disabled on days in [since, until)."""
    rows = conn.execute(
        sa.select(
            subscribers.c.id,
            subscribers.c.address,
            bounce_events.c.day,
            bounce_events.c.status,
            bounce_events.c.reason,
        )
        .join(subscribers, subscribers.c.id == bounce_events.c.subscriber_id)
        .where(
            bounce_events.c.channel == channel,
            bounce_events.c.outcome == BounceOutcome.DISABLED,
            bounce_events.c.day >= since,
            bounce_events.c.day < until,
        )
        .order_by(bounce_events.c.day, bounce_events.c.id)
    ).all()
    return [Disabled(r.id, r.address, r.day, r.status, r.reason) for r in rows]


def channels_with_events(conn: sa.Connection, since: dt.date, until: dt.date) -> list[str]:
    rows = conn.execute(
        sa.select(bounce_events.c.channel)
        .where(
            bounce_events.c.channel.is_not(None),
            bounce_events.c.outcome != BounceOutcome.INACTIVE,
            bounce_events.c.day >= since,
            bounce_events.c.day < until,
        )
        .distinct()
        .order_by(bounce_events.c.channel)
    ).scalars()
    return [str(c) for c in rows]


def claim_digest(conn: sa.Connection, channel: str, week: dt.date) -> bool:
    """Record that this week's digest for `channel` goes out now; False if it already did.

    Insert-or-nothing, so two daemons on one PostgreSQL database send it once.
    """
    insert = _upsert(conn)(bounce_digests).values(channel=channel, week=week, sent_at=utcnow())
    # RETURNING, not rowcount: PostgreSQL drivers report -1 for a primary-key insert
    claimed = insert.on_conflict_do_nothing(index_elements=["channel", "week"]).returning(
        bounce_digests.c.week
    )
    return conn.execute(claimed).first() is not None


def set_digest_message(conn: sa.Connection, channel: str, week: dt.date, message_id: int) -> None:
    conn.execute(
        bounce_digests.update()
        .where(bounce_digests.c.channel == channel, bounce_digests.c.week == week)
        .values(message_id=message_id)
    )


def digest_sent(conn: sa.Connection, channel: str, week: dt.date) -> bool:
    row = conn.execute(
        sa.select(bounce_digests.c.channel).where(
            bounce_digests.c.channel == channel, bounce_digests.c.week == week
        )
    ).first()
    return row is not None
