"""Where a value stands in the registry, and what is wrong with it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """A position in a registry file; line and column count from 1, as editors do."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: `path:line:col: 日本語の説明 [english-key]`."""

    pos: Pos
    key: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "" if self.severity is Severity.ERROR else "警告: "
        return f"{self.pos}: {prefix}{self.message} [{self.key}]"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR
