"""A hold, and how it is recorded with the post."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass

from ...context import Context
from ...store.posts import RELEASABLE, Post
from ..policy.base import PostVerdict


class HoldKind(enum.StrEnum):
    """The rule that holds; recorded as the finding's `rule`."""

    OUTAGE = "outage"  # 第9条: the service is stopped
    PAUSE = "pause"  # 第3条5: the channel or its department paused, or no longer active
    SEND_AT = "send-at"  # 第5条4: the send time the sender or the approver set


@dataclass(frozen=True)
class Hold:
    kind: HoldKind
    note: str
    """Why, for the post's note and the log (for staff; it names the article)."""

    def finding(self, at: dt.datetime) -> dict[str, str]:
        """The record appended to the post's findings when this hold starts."""
        return {
            "rule": str(self.kind),
            "verdict": str(PostVerdict.HOLD),
            "message": self.note,
            "at": at.isoformat(),
        }


HoldRule = Callable[[Context, Post, dt.datetime], Hold | None]

_KINDS = frozenset(HoldKind)  # str members: "outage" in _KINDS


def recorded(post: Post, hold: Hold, now: dt.datetime) -> dict[str, object]:
    """The columns that record `hold` with `post`: its note, and its finding appended."""
    findings = [*post.findings, hold.finding(now)]
    return {"note": hold.note, "findings": json.dumps(findings, ensure_ascii=False)}


def current(post: Post) -> Hold | None:
    """The hold last recorded with a post that has not gone out, while its note says so
    (a hold that ended clears the note; a sent or ended post has none)."""
    if post.state not in RELEASABLE or post.note is None:
        return None
    for f in reversed(post.findings):
        if f["verdict"] == PostVerdict.HOLD and f["rule"] in _KINDS:
            return Hold(HoldKind(f["rule"]), f["message"]) if f["message"] == post.note else None
    return None
