"""One row of the reason table: a reason's name, the class it means, the RFC 3463 status
codes that say it and the reply-text patterns that say it (Sisimai's `Reason` modules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..model import BounceClass

P, T, R, C, N = (
    BounceClass.PERMANENT,
    BounceClass.TEMPORARY,
    BounceClass.REFUSED,
    BounceClass.COMPLAINT,
    BounceClass.NONE,
)


@dataclass(frozen=True, slots=True)
class Reason:
    name: str
    klass: BounceClass
    statuses: tuple[str, ...]  # RFC 3463 codes that mean this reason (X = 4 or 5)
    patterns: tuple[str, ...]  # reply-text patterns, matched case-insensitively
    regex: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.patterns:
            object.__setattr__(self, "regex", re.compile("|".join(self.patterns), re.I))
