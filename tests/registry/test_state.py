"""Derived state: what the site lists and the daemon serves, and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from haishin.registry import State, channel_state, check, outages_in_force
from haishin.registry.model import JST

from .conftest import Reg

DAY = dt.date(2026, 11, 25)


def _state(slug: str, on: dt.date = DAY) -> tuple[State, str]:
    reg, problems = check(Path("config"))
    assert [str(p) for p in problems] == []
    s = channel_state(reg, slug, on)
    return s.state, s.reason


def test_reasons_of_the_sample(reg: Reg) -> None:
    assert _state("gomi-recycle") == (
        State.ACTIVE,
        "附則により従前の例による登録（2015-04-01 登録）",
    )
    assert _state("kosodate-news") == (State.ACTIVE, "申請 R6-0007（変更）が 2024-03-15 に承認済み")
    assert _state("kigyou-shien") == (
        State.STOPPED,
        "申請 R7-0002（利用停止）が 2025-03-03 に承認済み",
    )
    assert _state("noriai-bus") == (State.PENDING, "利用開始の申請が承認待ちです")
    state, reason = _state("sports-event")
    assert state is State.PAUSED and reason.startswith(
        "統括管理者によりチャネルの配信を一時停止中（第3条5）"
    )


def test_pause_before_it_starts_and_after_it_ends(reg: Reg) -> None:
    reg.edit(
        "channels/sports-event.yaml",
        "  by: general_manager",
        "  until: 2026-11-20\n  by: general_manager",
    )
    assert _state("sports-event", dt.date(2026, 11, 9))[0] is State.ACTIVE
    assert _state("sports-event", dt.date(2026, 11, 15))[0] is State.PAUSED
    assert _state("sports-event", dt.date(2026, 11, 21))[0] is State.ACTIVE


def test_department_pause_holds_all_its_channels(reg: Reg) -> None:
    reg.edit(
        "departments.yaml",
        "      hours: 平日 8時30分〜17時15分\n\n  kenko-zoshin:",
        "      hours: 平日 8時30分〜17時15分\n    paused:\n      since: 2026-11-01\n"
        "      by: general_manager\n      reason: 確認のため\n\n  kenko-zoshin:",
    )
    state, reason = _state("kosodate-news")
    assert state is State.PAUSED
    assert reason == "統括管理者により所属の配信を一時停止中（第3条5）: 確認のため"


def test_rejected_start_is_neither_served_nor_an_error(reg: Reg) -> None:
    reg.edit(
        "applications/R8-0004.yaml",
        "purpose: 乗合バスの実証運行の開始と運行変更を利用者へ案内するため\n",
        "purpose: 乗合バスの実証運行の開始と運行変更を利用者へ案内するため\n"
        "decision:\n  result: rejected\n  date: 2026-11-24\n  by: general_manager\n"
        "  notice_number: 川シ第9001号\n  reason: 不備\n",
    )
    state, _ = _state("noriai-bus")
    assert state is State.REJECTED


def test_outage_in_force(reg: Reg) -> None:
    reg_, _ = check(Path("config"))
    during = dt.datetime(2026, 12, 13, 2, 0, tzinfo=JST)
    after = dt.datetime(2026, 12, 13, 5, 0, tzinfo=JST)
    assert [o.id for o in outages_in_force(reg_, during)] == ["R8-12-maintenance"]
    assert outages_in_force(reg_, after) == []
    # a time written without an offset is Japan time
    naive = reg_.outages["R8-12-maintenance"].value.start
    assert naive.utcoffset() == dt.timedelta(hours=9)
