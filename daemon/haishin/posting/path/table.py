"""The order of the post path, and the walk through it."""

from __future__ import annotations

from ..policy.base import Finding, PostVerdict
from . import approval_mode, requirements, send_time, sender
from .base import Arrival, Step, Walked

PATH: tuple[Step, ...] = (
    Step(sender.check, after_refusal=False),
    Step(requirements.check, after_refusal=True),
    Step(send_time.check, after_refusal=True),
    Step(approval_mode.check, after_refusal=False),
)


def walk(arrival: Arrival) -> Walked:
    """Every step's findings in table order. A FORWARD ends the walk (a stranger's mail
    is not read as a post); after a REFUSE only the steps that name what to fix run."""
    found: list[Finding] = []
    for step in PATH:
        verdicts = {f.verdict for f in found}
        if PostVerdict.FORWARD in verdicts:
            break
        if PostVerdict.REFUSE in verdicts and not step.after_refusal:
            continue
        found.extend(step.rule(arrival))
    return Walked(tuple(found))
