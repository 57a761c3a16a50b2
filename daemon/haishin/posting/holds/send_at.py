"""第5条4 (配信時期): a post with a send time waits for it."""

from __future__ import annotations

import datetime as dt

from ...context import Context
from ...registry.model import JST
from ...store.posts import Post
from .base import Hold, HoldKind


def check(ctx: Context, post: Post, now: dt.datetime) -> Hold | None:
    if post.send_at is None or post.send_at <= now:
        return None
    at = post.send_at.astimezone(JST)
    return Hold(HoldKind.SEND_AT, f"held: to be sent at {at:%Y-%m-%d %H:%M} JST (第5条4)")
