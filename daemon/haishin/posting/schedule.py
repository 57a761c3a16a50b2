"""配信時期 (第5条4): when the sender asks a post to go out.

A sender can write a line `配信日時: 2026-12-01 09:00` at the top of the body (what a
clerk can type on any mail app) or a `X-Haishin-Send-At:` header; the line is removed
from what subscribers read. Times are Japan time unless an offset is given.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from ..registry.model import JST

HEADER = "X-Haishin-Send-At"
_LINE_RE = re.compile(r"^\s*(?:配信日時|配信時刻|send-at)\s*[:：]\s*(?P<when>.+?)\s*$", re.I)
_WHEN_RE = re.compile(
    r"^(?P<y>\d{4})[-/年](?P<m>\d{1,2})[-/月](?P<d>\d{1,2})日?"
    r"(?:[ T]+(?P<H>\d{1,2})[:時](?P<M>\d{2})分?)?(?P<tz>[+-]\d{2}:?\d{2}|Z)?$"
)
LOOKAHEAD_LINES = 5
"""The request is honoured only near the top, so a quoted line deep in the text is not."""


@dataclass(frozen=True)
class Schedule:
    at: dt.datetime | None
    """None: send as soon as approved."""
    text: str
    """The body with the request line removed."""
    error: str | None = None
    """A Japanese explanation when the request could not be read."""


def parse_when(value: str) -> dt.datetime | None:
    text = unicodedata.normalize("NFKC", value).strip()
    m = _WHEN_RE.match(text)
    if not m:
        return None
    try:
        when = dt.datetime(
            int(m["y"]), int(m["m"]), int(m["d"]), int(m["H"] or 0), int(m["M"] or 0)
        )
    except ValueError:
        return None
    tz = m["tz"]
    if tz is None:
        return when.replace(tzinfo=JST)
    if tz == "Z":
        return when.replace(tzinfo=dt.UTC)
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when.replace(tzinfo=dt.timezone(sign * offset))


def requested(header: str | None, text: str, now: dt.datetime) -> Schedule:
    lines = text.split("\n")
    found: str | None = header
    for i, line in enumerate(lines[:LOOKAHEAD_LINES]):
        m = _LINE_RE.match(line)
        if m:
            found = found or m["when"]
            del lines[i]
            if i < len(lines) and not lines[i].strip():
                del lines[i]  # and the blank line that separated it from the text
            break
    body = "\n".join(lines)
    if found is None:
        return Schedule(None, body)
    at = parse_when(found)
    if at is None:
        return Schedule(
            None,
            body,
            f"配信日時「{found}」を読み取れません。「配信日時: 2026-12-01 09:00」の形で書いてください。",
        )
    if at < now - dt.timedelta(minutes=5):
        return Schedule(None, body, f"配信日時 {at:%Y-%m-%d %H:%M} はすでに過ぎています。")
    return Schedule(at, body)
