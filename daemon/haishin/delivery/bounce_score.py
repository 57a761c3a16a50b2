"""A subscriber's bounce score, as a pure state machine the store persists (issue 6, item 6).

The policy is GNU Mailman's (bounce_score_threshold 5, bounce_info_stale_after 7 days),
with Mailman 2.1's weights (hard bounce 1.0, soft 0.5):

- a subscription bounces for days before it is disabled, never for one bad night: the
  score rises at most once per calendar day, however many posts bounced that day;
- bounces must keep coming: when the last one is older than the stale period the score
  starts again from zero, so a rare temporary failure never adds up to a disable;
- at the threshold the subscription is disabled (not removed) and the 情報管理者 hears
  of it in the weekly digest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..registry.model import Service
from .bounces import BounceKind, BounceReport


@dataclass(frozen=True, slots=True)
class BounceSettings:
    """From service.yaml, loaded once at the edge; tests clone with dataclasses.replace."""

    threshold: float = 5.0
    stale_days: int = 7
    permanent_weight: float = 1.0
    temporary_weight: float = 0.5
    # something came back to the VERP address that we could not read: likely a failure,
    # but one garbled message must not weigh like a sure "user unknown"
    unknown_weight: float = 0.5

    def weight(self, kind: BounceKind) -> float:
        """Auto-replies and success-only reports weigh nothing."""
        return {
            BounceKind.PERMANENT: self.permanent_weight,
            BounceKind.TEMPORARY: self.temporary_weight,
            BounceKind.UNKNOWN: self.unknown_weight,
        }.get(kind, 0.0)


DEFAULTS = BounceSettings()


def settings_of(service: Service) -> BounceSettings:
    """The `bounces:` block of service.yaml (第10条: settings, not code)."""
    b = service.bounces
    return BounceSettings(
        threshold=b.threshold,
        stale_days=b.stale_days,
        permanent_weight=b.permanent_weight,
        temporary_weight=b.temporary_weight,
        unknown_weight=b.unknown_weight,
    )


@dataclass(frozen=True, slots=True)
class BounceScore:
    """One subscription's bounce state; `BounceScore()` is a clean slate."""

    score: float = 0.0
    last_bounce: dt.date | None = None
    day_weight: float = 0.0
    """The weight already counted on `last_bounce`: a permanent bounce after a temporary
    one on the same day raises that day's increment to 1.0, never beyond."""


def is_stale(state: BounceScore, today: dt.date, settings: BounceSettings) -> bool:
    return state.last_bounce is None or (today - state.last_bounce).days > settings.stale_days


def current(state: BounceScore, today: dt.date, settings: BounceSettings) -> BounceScore:
    """The score as it stands today: a stale one reads as zero (for reports)."""
    return BounceScore() if is_stale(state, today, settings) else state


def apply(
    state: BounceScore,
    report: BounceReport,
    today: dt.date,
    settings: BounceSettings = DEFAULTS,
) -> tuple[BounceScore, bool]:
    """The new state after `report` arrived `today`, and whether to disable now.

    `today` is the service's calendar day (JST, as the registry counts days), so "once a
    day" means once per Japanese day, not per UTC day.
    """
    weight = settings.weight(report.kind)
    if weight <= 0:
        return state, False
    if is_stale(state, today, settings):
        new = BounceScore(weight, today, weight)
    elif state.last_bounce is not None and today <= state.last_bounce:
        # the same day (or a clock that stepped back): one increment per day at most
        extra = max(0.0, weight - state.day_weight)
        new = BounceScore(state.score + extra, state.last_bounce, state.day_weight + extra)
    else:
        new = BounceScore(state.score + weight, today, weight)
    return new, new.score >= settings.threshold
