"""A channel's bounces over some days: what the weekly digest and `haishin bounces` show.

It carries addresses, because both are for the 情報管理者, who manages the channel's
recipients (第5条(2)); whoever prints it decides whether to mask them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from ..store import bounces as stored
from .score import DEFAULTS, BounceScore, BounceSettings, current

KINDS = ("permanent", "temporary", "refused", "complaint", "unmatched")
"""The order in which counts are shown."""


@dataclass(frozen=True, slots=True)
class Scoring:
    subscriber_id: int
    address: str
    status: str
    score: float
    last_bounce: dt.date


@dataclass(frozen=True, slots=True)
class Summary:
    channel: str
    since: dt.date  # first day counted
    until: dt.date  # first day not counted
    counts: dict[str, int]
    disabled: list[stored.Disabled]
    scoring: list[Scoring]  # current score above zero, as of the day it was made

    @property
    def empty(self) -> bool:
        return not any(self.counts.values()) and not self.disabled

    @property
    def last_day(self) -> dt.date:
        return self.until - dt.timedelta(days=1)


def summarize(
    conn: sa.Connection,
    channel: str,
    since: dt.date,
    until: dt.date,
    today: dt.date,
    settings: BounceSettings = DEFAULTS,
) -> Summary:
    """Counts and disables on days in [since, until); scores as they stand `today`."""
    scoring = []
    for s in stored.scores(conn, channel):
        now = current(
            BounceScore(s.score.score, s.score.last_bounce, s.score.day_weight), today, settings
        )
        if now.score > 0 and now.last_bounce is not None:
            scoring.append(
                Scoring(s.subscriber_id, s.address, s.status, now.score, now.last_bounce)
            )
    counts = stored.counts(conn, channel, since, until)
    return Summary(
        channel=channel,
        since=since,
        until=until,
        counts={k: counts.get(k, 0) for k in KINDS},
        disabled=stored.disabled(conn, channel, since, until),
        scoring=scoring,
    )
