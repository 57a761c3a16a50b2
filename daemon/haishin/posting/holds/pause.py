"""第3条5: a channel (or its department) paused by the 統括管理者 sends nothing until the
pause ends; a channel no longer in the registry, or no longer active, neither."""

from __future__ import annotations

import datetime as dt

from ...context import Context
from ...registry import State
from ...store.posts import Post
from .base import Hold, HoldKind


def check(ctx: Context, post: Post, now: dt.datetime) -> Hold | None:
    state = ctx.directory.states().get(post.channel)
    if state is None:
        return Hold(HoldKind.PAUSE, "held: the channel is no longer in the registry")
    if state.state is not State.ACTIVE:
        return Hold(HoldKind.PAUSE, f"held: channel {state.state} (第3条5): {state.reason}")
    return None
