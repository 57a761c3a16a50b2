"""The sample registry in config/ is valid and means what its comments say."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from haishin.registry import State, channel_states, check

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_sample_registry_passes_check() -> None:
    _reg, problems = check(CONFIG)
    assert [str(p) for p in problems] == []


def test_sample_registry_states() -> None:
    reg, _ = check(CONFIG)
    states = {slug: s.state for slug, s in channel_states(reg, dt.date(2026, 11, 25)).items()}
    assert states == {
        "gomi-recycle": State.ACTIVE,  # legacy, no application
        "kosodate-news": State.ACTIVE,  # start, then change
        "kenshin-info": State.ACTIVE,  # a later change was rejected: nothing changed
        "kaigo-yobou": State.ACTIVE,
        "sports-event": State.PAUSED,  # 第3条5
        "shogai-gakushu": State.ACTIVE,  # legacy, later changed
        "kigyou-shien": State.STOPPED,
        "nakahara-kurashi": State.ACTIVE,
        "noriai-bus": State.PENDING,
        "recycle-market": State.ACTIVE,
    }
