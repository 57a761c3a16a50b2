"""第9条: while an outage is in force nothing goes out; posts wait for its end."""

from __future__ import annotations

import datetime as dt

from ...context import Context
from ...registry import outages_in_force
from ...store.posts import Post
from .base import Hold, HoldKind


def check(ctx: Context, post: Post, now: dt.datetime) -> Hold | None:
    for outage in outages_in_force(ctx.registry, now):
        return Hold(HoldKind.OUTAGE, f"held: outage {outage.id} in force (第9条)")
    return None
