"""A month's figures per channel, exact for the month in Japan's time (issue 15 item 6).

Where each number comes from:
- new registrations and ended subscriptions (by cause): `subscription_events`
  (store/history.py), written with every change of a subscription's state;
- active at the month's end: today's active subscriptions, less those that joined since,
  plus those that left since (the history is complete from its migration on);
- posts: `posts` whose fan-out started (`sent_at`) in the month;
- deliveries: `outbound` rows of posts accepted by the smarthost (`done_at`) in the month;
- bounces by class: `bounce_events` whose service day (JST) is in the month.
Never an address: only counts leave this module (第4条).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..clock import JST
from .history import Cause, Change
from .posts import PostState
from .schema import bounce_events, outbound, posts, subscribers, subscription_events
from .states import QueueState

STARTED = (PostState.SENDING, PostState.SENT)  # a post whose fan-out began: it was sent


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in Japan: its first day, and its start and end as UTC instants."""

    first: dt.date

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`; ValueError otherwise."""
        # ASCII digits only: str.isdigit and int() would take full-width ones too
        found = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text)
        # the year leaves room for the 12-month trend before it and the month after it
        if found is None or not 1 < int(found[1]) < dt.MAXYEAR:
            raise ValueError(text)
        return cls(dt.date(int(found[1]), int(found[2]), 1))

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.replace(day=1))

    @property
    def label(self) -> str:
        # not %Y: glibc writes the year 2 as "2", and the label must read back (parse)
        return f"{self.first.year:04d}-{self.first.month:02d}"

    @property
    def last(self) -> dt.date:
        return self.next().first - dt.timedelta(days=1)

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(), JST).astimezone(dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.next().start

    def next(self) -> Month:
        return Month((self.first + dt.timedelta(days=32)).replace(day=1))

    def previous(self) -> Month:
        return Month.of(self.first - dt.timedelta(days=1))

    def trail(self, n: int) -> list[Month]:
        """The `n` months ending with this one, oldest first."""
        months = [self]
        while len(months) < n:
            months.append(months[-1].previous())
        return months[::-1]


@dataclass(frozen=True, slots=True)
class Figures:
    channel: str
    joined: int = 0
    left: dict[Cause, int] = field(default_factory=lambda: dict.fromkeys(Cause, 0))
    active: int = 0  # at the month's end
    posts: int = 0
    deliveries: int = 0
    bounces: dict[str, int] = field(default_factory=dict)  # BounceClass value → count


def _counts(conn: sa.Connection, query: sa.Select[Any]) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in conn.execute(query)}


def _events(
    conn: sa.Connection, channels: list[str], since: dt.datetime, until: dt.datetime | None
) -> dict[tuple[str, str, str | None], int]:
    e = subscription_events.c
    query = (
        sa.select(e.channel, e.change, e.cause, sa.func.count())
        .where(e.channel.in_(channels), e.at >= since)
        .group_by(e.channel, e.change, e.cause)
    )
    if until is not None:
        query = query.where(e.at < until)
    return {(c, ch, cause): int(n) for c, ch, cause, n in conn.execute(query)}


def figures(conn: sa.Connection, channels: Collection[str], month: Month) -> dict[str, Figures]:
    slugs = sorted(channels)
    within = _events(conn, slugs, month.start, month.end)
    since_end = _events(conn, slugs, month.end, None)
    s = subscribers.c
    active_now = _counts(
        conn,
        sa.select(s.channel, sa.func.count())
        .where(s.channel.in_(slugs), s.status == "active")
        .group_by(s.channel),
    )
    p = posts.c
    sent_posts = _counts(
        conn,
        sa.select(p.channel, sa.func.count())
        .where(
            p.channel.in_(slugs),
            p.state.in_(STARTED),
            p.sent_at >= month.start,
            p.sent_at < month.end,
        )
        .group_by(p.channel),
    )
    o = outbound.c
    deliveries = _counts(
        conn,
        sa.select(p.channel, sa.func.count())
        .select_from(outbound.join(posts, p.outbound_message == o.message_id))
        .where(
            p.channel.in_(slugs),
            p.sent_at < month.end,  # lets the planner start from the posts
            o.state == QueueState.SENT,
            o.done_at >= month.start,
            o.done_at < month.end,
        )
        .group_by(p.channel),
    )
    b = bounce_events.c
    bounces: dict[str, dict[str, int]] = {}
    for channel, kind, n in conn.execute(
        sa.select(b.channel, b.kind, sa.func.count())
        .where(b.channel.in_(slugs), b.day >= month.first, b.day <= month.last)
        .group_by(b.channel, b.kind)
    ):
        bounces.setdefault(channel, {})[kind] = int(n)
    out: dict[str, Figures] = {}
    for slug in slugs:

        def n(events: dict[tuple[str, str, str | None], int], change: Change) -> int:
            return sum(v for (c, ch, _), v in events.items() if c == slug and ch == change)  # noqa: B023

        out[slug] = Figures(
            channel=slug,
            joined=n(within, Change.JOINED),
            left={cause: within.get((slug, Change.LEFT, cause), 0) for cause in Cause},
            active=active_now.get(slug, 0)
            - n(since_end, Change.JOINED)
            + n(since_end, Change.LEFT),
            posts=sent_posts.get(slug, 0),
            deliveries=deliveries.get(slug, 0),
            bounces=bounces.get(slug, {}),
        )
    return out


def last_posts(conn: sa.Connection, channels: Collection[str]) -> dict[str, dt.datetime]:
    """When each channel's latest post began to go out (最終配信日); absent: never."""
    p = posts.c
    return {
        c: at
        for c, at in conn.execute(
            sa.select(p.channel, sa.func.max(p.sent_at))
            .where(p.channel.in_(sorted(channels)), p.state.in_(STARTED))
            .group_by(p.channel)
        )
        if at is not None
    }
