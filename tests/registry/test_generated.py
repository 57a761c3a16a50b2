"""The benchmark's generated registry is valid, so the benchmark times the whole path."""

from __future__ import annotations

import sys
from pathlib import Path

from haishin.registry import State, channel_states, check

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_registry import generate


def test_generated_registry_is_valid(tmp_path: Path) -> None:
    generate(tmp_path / "config", channels=40, departments=5)
    reg, problems = check(tmp_path / "config")
    assert [str(p) for p in problems] == []
    assert len(reg.channels) == 40
    assert len(reg.applications) == 100
    states = [s.state for s in channel_states(reg).values()]
    assert states.count(State.STOPPED) == 8
    assert states.count(State.ACTIVE) == 32
