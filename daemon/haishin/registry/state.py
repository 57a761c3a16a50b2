"""What the registry means now: each channel's state and why, and the outage in force.

The site lists what is `listed`; the daemon serves what is `served`. Both derive from
the approvals (第6条・第7条), the 附則 legacy rule and the pauses of 第3条5.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from ..clock import jstnow, today
from .load import Located, Registry
from .model import KIND_NAMES, RULES_REVISED, Application, ApplicationKind, Outage, Pause


class State(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    PENDING = "pending"
    REJECTED = "rejected"


STATE_NAMES = {
    State.ACTIVE: "配信中",
    State.PAUSED: "一時停止中",
    State.STOPPED: "利用停止",
    State.PENDING: "承認待ち",
    State.REJECTED: "不承認",
}


@dataclass(frozen=True)
class ChannelState:
    state: State
    reason: str
    legacy: bool
    decided_by: str | None = None
    """The number of the application that decided this state, if any."""
    pause: Pause | None = None

    @property
    def served(self) -> bool:
        """The daemon accepts mail for it; a paused channel's posts are held, not refused."""
        return self.state in (State.ACTIVE, State.PAUSED)

    listed = served
    """第7条: the site shows exactly the channels the daemon serves."""


def is_legacy(registered: dt.date) -> bool:
    """附則2: registered before the 2021-12-24 revision, so the former rules apply."""
    return registered < RULES_REVISED


def history(reg: Registry, slug: str) -> list[Located[Application]]:
    """The channel's applications in the order they were made."""
    return reg.applications_of(slug)


def _pause_in_force(pause: Pause | None, on: dt.date) -> bool:
    return pause is not None and pause.since <= on and (pause.until is None or on <= pause.until)


def channel_state(reg: Registry, slug: str, on: dt.date | None = None) -> ChannelState:
    on = on or today()
    channel = reg.channels[slug].value
    legacy = is_legacy(channel.registered)
    apps = [a.value for a in history(reg, slug)]
    approved = [a for a in apps if a.approved]

    if approved:
        last = approved[-1]
        assert last.decision is not None
        base = f"申請 {last.number}（{KIND_NAMES[last.kind]}）が {last.decision.date} に承認済み"
        if last.kind is ApplicationKind.STOP:
            return ChannelState(State.STOPPED, base, legacy, last.number)
        decided: str | None = last.number
    elif legacy:
        base = f"附則により従前の例による登録（{channel.registered} 登録）"
        decided = None
    elif any(a.decision is None and a.kind is ApplicationKind.START for a in apps):
        return ChannelState(State.PENDING, "利用開始の申請が承認待ちです", legacy)
    elif any(a.rejected for a in apps):
        return ChannelState(State.REJECTED, "利用開始の申請は承認されませんでした", legacy)
    else:
        return ChannelState(State.PENDING, "承認された申請がありません（第6条）", legacy)

    department = reg.departments.get(channel.department)
    for pause, whose in ((channel.paused, "チャネル"), (department and department.paused, "所属")):
        if pause and _pause_in_force(pause, on):
            why = f"統括管理者により{whose}の配信を一時停止中（第3条5）: {pause.reason}"
            return ChannelState(State.PAUSED, why, legacy, decided, pause)
    return ChannelState(State.ACTIVE, base, legacy, decided)


def channel_states(reg: Registry, on: dt.date | None = None) -> dict[str, ChannelState]:
    on = on or today()
    return {slug: channel_state(reg, slug, on) for slug in reg.channels}


def outages_in_force(reg: Registry, at: dt.datetime | None = None) -> list[Outage]:
    """第9条: the stops whose window contains `at` (an open-ended one lasts until ended)."""
    at = at or jstnow()
    return [
        o.value
        for o in reg.outages.values()
        if o.value.start <= at and (o.value.end is None or at < o.value.end)
    ]
