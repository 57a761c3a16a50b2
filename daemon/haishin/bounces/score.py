"""A subscriber's bounce score, as a pure state machine the store persists (issue 6,
item 6; issue 12, item 2).

The policy is GNU Mailman's (bounce_score_threshold 5, bounce_info_stale_after 7 days),
with Mailman 2.1's weights (hard bounce 1.0, soft 0.5), applied per class:

| class | what it does |
|---|---|
| permanent | scores `permanent_weight` (1.0) |
| temporary | scores `temporary_weight` (0.5) |
| refused | scores nothing: it says little about the address (a carrier's `filtered`, repeated, disables: bounce_record.py) |
| complaint | ends the subscription at once (bounce_record.py) |
| none | nothing |

- a subscription bounces for days before it is disabled, never for one bad night: the
  score rises at most once per calendar day, however many posts bounced that day;
- bounces must keep coming: when the last one is older than the stale period the score
  starts again from zero, so a rare temporary failure never adds up to a disable;
- at the threshold the subscription is disabled (not removed) and the 情報管理者 hears
  of it in the weekly digest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..registry.model import CARRIER_DOMAINS, Role, Service
from .classify.model import BounceClass

ABOUT_US = ("authfailure", "requireptr", "badreputation", "blocked", "spamdetected")
"""Refusals whose reason is our own sending (issue 12, item 3)."""


@dataclass(frozen=True, slots=True)
class AlarmTo:
    """Where the sender-side alarm goes: the role holder, from the registry."""

    role: str  # its Japanese title, e.g. クラウドサービス管理者
    name: str
    address: str
    service: str  # the service's name, for the mail
    from_addr: str
    mail_domain: str


@dataclass(frozen=True, slots=True)
class BounceSettings:
    """From service.yaml, loaded once at the edge; tests clone with dataclasses.replace."""

    threshold: float = 5.0
    stale_days: int = 7
    permanent_weight: float = 1.0
    temporary_weight: float = 0.5
    # something came back to the VERP address that names no recipient we can read:
    # likely a failure, but one garbled message must not weigh like a sure "user unknown"
    unknown_weight: float = 0.5
    filtered_domains: tuple[str, ...] = CARRIER_DOMAINS
    filtered_times: int = 3
    filtered_span_days: int = 7
    alarm_reasons: tuple[str, ...] = ABOUT_US
    alarm_threshold: int = 20
    alarm_window: dt.timedelta = dt.timedelta(hours=1)
    alarm_to: AlarmTo | None = field(default=None)

    def weight(self, klass: BounceClass) -> float:
        """Only what speaks about the address weighs (design.md, reliability)."""
        return {
            BounceClass.PERMANENT: self.permanent_weight,
            BounceClass.TEMPORARY: self.temporary_weight,
        }.get(klass, 0.0)

    def carrier(self, domain: str) -> bool:
        domain = domain.lower()
        return any(domain == d or domain.endswith("." + d) for d in self.filtered_domains)


DEFAULTS = BounceSettings()


def settings_of(service: Service) -> BounceSettings:
    """The `bounces:` block of service.yaml (第10条: settings, not code)."""
    from ..registry.model import ROLE_NAMES

    b = service.bounces
    holder = service.roles.get(b.sender_alarm.role)
    alarm_to = None
    if holder is not None:
        alarm_to = AlarmTo(
            role=ROLE_NAMES.get(Role(b.sender_alarm.role), str(b.sender_alarm.role)),
            name=holder.name,
            address=holder.address,
            service=service.name,
            from_addr=service.inquiry_address,
            mail_domain=service.mail_domain,
        )
    return BounceSettings(
        threshold=b.threshold,
        stale_days=b.stale_days,
        permanent_weight=b.permanent_weight,
        temporary_weight=b.temporary_weight,
        unknown_weight=b.unknown_weight,
        filtered_domains=tuple(d.lower() for d in b.filtered.domains),
        filtered_times=b.filtered.times,
        filtered_span_days=b.filtered.span_days,
        alarm_reasons=tuple(b.sender_alarm.reasons),
        alarm_threshold=b.sender_alarm.threshold,
        alarm_window=dt.timedelta(minutes=b.sender_alarm.window_minutes),
        alarm_to=alarm_to,
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
    weight: float,
    today: dt.date,
    settings: BounceSettings = DEFAULTS,
) -> tuple[BounceScore, bool]:
    """The new state after a bounce of `weight` arrived `today`, and whether to disable.

    `today` is the service's calendar day (JST, as the registry counts days), so "once a
    day" means once per Japanese day, not per UTC day.
    """
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
