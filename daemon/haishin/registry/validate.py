"""Load the registry and run every cross-file rule: what `haishin check` shows, and the
only way the site and the daemon get a registry (`load_valid`)."""

from __future__ import annotations

import gc
from pathlib import Path

from ..errors import RegistryInvalid
from .load import Overrides, Registry, load
from .problems import Problem
from .rules import RULES


def check(root: Path, overrides: Overrides | None = None) -> tuple[Registry, list[Problem]]:
    """Load and validate; problems sorted by file and line."""
    # Loading allocates millions of small acyclic objects; the cyclic collector would
    # rescan them all again and again, doubling the time of a large registry's check.
    collecting = gc.isenabled()
    gc.disable()
    try:
        reg, problems = load(root, overrides)
        for rule in RULES:
            problems.extend(rule(reg))
    finally:
        if collecting:
            gc.enable()
    problems.sort(key=lambda p: (p.pos, p.key))
    return reg, problems


def load_valid(root: Path) -> Registry:
    """The registry, or `RegistryInvalid` with every error: what the site and daemon use."""
    reg, problems = check(root)
    errors = [p for p in problems if p.is_error]
    if errors:
        raise RegistryInvalid(errors)
    return reg
