"""The order of the holds, and the first that applies."""

from __future__ import annotations

import datetime as dt

from ...context import Context
from ...store.posts import Post
from . import outage, pause, send_at
from .base import Hold, HoldRule

HOLDS: tuple[HoldRule, ...] = (
    outage.check,  # 第9条: the whole service first
    pause.check,  # 第3条5: then the channel or its department
    send_at.check,  # 第5条4: then the post's own time
)


def hold_of(ctx: Context, post: Post, now: dt.datetime) -> Hold | None:
    """The hold that keeps `post` from going out at `now`, or None."""
    for rule in HOLDS:
        hold = rule(ctx, post, now)
        if hold is not None:
            return hold
    return None
