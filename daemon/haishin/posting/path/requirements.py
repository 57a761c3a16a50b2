"""Step 2, the basic requirements (第3条(2)): the policy table, each requirement's finding
kept (posting/policy/table.py)."""

from __future__ import annotations

from ..policy import evaluate
from ..policy.base import Finding
from .base import Arrival


def check(arrival: Arrival) -> tuple[Finding, ...]:
    return evaluate(arrival.view, arrival.policy).findings
