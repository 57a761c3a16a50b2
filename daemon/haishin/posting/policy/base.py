"""What a policy rule sees of a post, and what it answers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PostVerdict(enum.StrEnum):
    """What one rule says about a post (recorded as `verdict` in the post's findings).
    Named apart from the token's `Verdict` (tokens.py: ok, expired, invalid)."""

    PASS = "pass"
    WARN = "warn"  # goes on, and the approver is told (第3条(2), a `warn` requirement)
    REFUSE = "refuse"  # not sent; the sender is told what to fix
    # the post path's own (posting/path/): the 第3条(2) rules above never return these
    FORWARD = "forward"  # not a post at all: forwarded to the 情報管理者 (第5条3(3))
    HOLD = "hold"  # held until approved (第5条), or held from going out (posting/holds/)
    VERIFY = "verify"  # held until the daemon's own DKIM check decides (`authenticated`)


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One leaf of the MIME tree."""

    content_type: str
    filename: str | None = None
    attachment: bool = False
    size: int = 0


@dataclass(frozen=True)
class PostView:
    """A post reduced once to what the rules read: decoded subject and text, the parts."""

    subject: str
    text: str
    parts: tuple[PartInfo, ...]
    size: int
    """Octets of the message as received."""


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    verdict: PostVerdict
    message: str = ""
    """For the sender, in Japanese: what is wrong and how to fix it."""


@dataclass(frozen=True)
class PolicyResult:
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> bool:
        return any(f.verdict is PostVerdict.REFUSE for f in self.findings)

    @property
    def refusals(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict is PostVerdict.REFUSE]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict is PostVerdict.WARN]

    def explain(self) -> str:
        """The numbered list for the reply to the sender (refusals first)."""
        lines = []
        for n, f in enumerate([*self.refusals, *self.warnings], start=1):
            mark = "" if f.verdict is PostVerdict.REFUSE else "（注意）"
            lines.append(f"{n}. {mark}{f.message}")
        return "\n".join(lines)


def passed(rule: str) -> Finding:
    return Finding(rule, PostVerdict.PASS)
