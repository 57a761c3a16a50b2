"""The order in which the 第3条(2) requirements are checked, and the runner."""

from __future__ import annotations

from collections.abc import Callable

from ...registry.model import Policy
from . import attachments, characters, content_types, size, subject
from .base import Finding, PolicyResult, PostView

Rule = Callable[[PostView, Policy], Finding]

RULES: tuple[Rule, ...] = (
    size.check,
    content_types.check,
    attachments.check,
    subject.check,
    characters.check_machine_dependent,
    characters.check_halfwidth_kana,
)


def evaluate(post: PostView, policy: Policy) -> PolicyResult:
    """Every rule's outcome, in table order; the post is refused if any rule refuses."""
    return PolicyResult(tuple(rule(post, policy) for rule in RULES))
