"""What the post path's rules read of a post, and what a walk through them found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...registry.model import Channel, Policy
from ..policy.base import Finding, PolicyResult, PostVerdict, PostView
from ..schedule import Schedule


@dataclass(frozen=True)
class Arrival:
    """A post reduced once to what the rules read (style.md 3: decisions apart from
    actions; reading the mail is done before, acting on the findings after)."""

    channel: Channel
    sender: str
    view: PostView
    schedule: Schedule
    """The 配信日時 the sender asked for, read from the header or the text's top."""
    policy: Policy


Rule = Callable[[Arrival], tuple[Finding, ...]]
"""One step of the path: its findings, one each (the 第3条(2) step: one per requirement)."""


@dataclass(frozen=True)
class Step:
    rule: Rule
    after_refusal: bool
    """Run even when an earlier step refused: every requirement the sender must fix is
    named in one reply (第3条(2)); whether to hold a refused post is not a question."""


RANK = (
    PostVerdict.PASS,
    PostVerdict.WARN,
    PostVerdict.HOLD,
    PostVerdict.VERIFY,
    PostVerdict.REFUSE,
    PostVerdict.FORWARD,
)
"""Which verdict decides the walk: the last in this order among the findings."""


@dataclass(frozen=True)
class Walked:
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> PostVerdict:
        """What is done with the post: FORWARD, REFUSE, VERIFY or HOLD."""
        return max((f.verdict for f in self.findings), key=RANK.index, default=PostVerdict.PASS)

    def explain(self) -> str:
        """The numbered list of what to fix, for the refusal (refusals, then warnings)."""
        return PolicyResult(self.findings).explain()

    def record(self) -> list[dict[str, str]]:
        """The findings as stored with the post (posts.findings, JSON)."""
        return [
            {"rule": f.rule, "verdict": str(f.verdict), "message": f.message} for f in self.findings
        ]
