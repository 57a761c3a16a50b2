"""A private copy of the sample registry per test, and a way to see what `check` says."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from haishin.registry import check, validate
from haishin.registry.problems import Problem

from .leaks import english_in

SAMPLE = Path(__file__).resolve().parents[2] / "config"


class Reg:
    """The copy at ./config of a temporary working directory, as a clerk's checkout."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, text: str | bytes) -> None:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")

    def edit(self, rel: str, old: str, new: str) -> None:
        text = self.path(rel).read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new, 1))

    def findings(self) -> list[str]:
        _reg, problems = check(Path("config"))
        return [str(p) for p in problems]


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Reg:
    shutil.copytree(SAMPLE, tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    return Reg(tmp_path / "config")


Edit = Callable[[Reg], None]


@pytest.fixture(autouse=True)
def no_english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every finding any registry test makes is Japanese (issue 15 item 3): each test's
    loads and rules are recorded, and an English message fails the test that made it."""
    seen: list[Problem] = []

    def load(*args: Any, **kwargs: Any) -> Any:
        reg, problems = real_load(*args, **kwargs)
        seen.extend(problems)
        return reg, problems

    def recorded(rule: Callable[..., list[Problem]]) -> Callable[..., list[Problem]]:
        def run(*args: Any) -> list[Problem]:
            found = list(rule(*args))
            seen.extend(found)
            return found

        return run

    real_load = validate.load
    monkeypatch.setattr(validate, "load", load)
    monkeypatch.setattr(validate, "RULES", [recorded(rule) for rule in validate.RULES])
    yield
    english = [f"{p}  <- {english_in(p.message)}" for p in seen if english_in(p.message)]
    assert not english, "English reaches staff:\n" + "\n".join(english)
