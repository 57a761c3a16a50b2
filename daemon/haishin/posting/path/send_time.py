"""Step 3, the send time (配信時期, 第5条4): a request that cannot be read, or is already
past, refuses the post with the way to write it (posting/schedule.py reads it)."""

from __future__ import annotations

from ...registry.model import JST
from ..policy.base import Finding, PostVerdict
from .base import Arrival

NAME = "schedule"


def check(arrival: Arrival) -> tuple[Finding, ...]:
    schedule = arrival.schedule
    if schedule.error:
        return (Finding(NAME, PostVerdict.REFUSE, schedule.error),)
    if schedule.at is None:
        return (Finding(NAME, PostVerdict.PASS, "配信日時の指定なし: 承認しだい配信します"),)
    at = schedule.at.astimezone(JST)
    return (Finding(NAME, PostVerdict.PASS, f"配信日時 {at:%Y-%m-%d %H:%M}（日本時間）"),)
