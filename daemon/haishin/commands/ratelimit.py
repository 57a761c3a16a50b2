"""Confirmation requests, and every other automatic answer, are limited per address per
day and overall per hour (service.yaml `limits`), so the service cannot be used to flood
a stranger's mailbox with forged mail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from ..store import autoreplies, confirmations
from ..store.clock import utcnow
from .context import Context


def _within(
    conn: sa.Connection,
    to_address_today: int,
    per_day: int,
    sent_last_hour: Callable[[int], int],
    hourly: int,
    cache_key: str,
) -> bool:
    """One rule for both limits. The hourly count is taken once per transaction (a worker
    batch), then kept up to date here: the batch holds the write lock, so nobody else
    adds to it meanwhile."""
    if to_address_today >= per_day:
        return False
    cached = conn.info.get(cache_key)
    if cached is not None and cached[0] is conn.get_transaction():
        count = cached[1]
    else:
        count = sent_last_hour(hourly)
    if count >= hourly:
        return False
    conn.info[cache_key] = (conn.get_transaction(), count + 1)  # the caller sends one now
    return True


def allowed(conn: sa.Connection, ctx: Context, address: str) -> bool:
    """May one more confirmation request go to `address`?"""
    limits = ctx.service.limits
    now = utcnow()
    return _within(
        conn,
        confirmations.sent_to_address_since(conn, address, now - dt.timedelta(days=1)),
        limits.confirmations_per_address_per_day,
        lambda cap: confirmations.sent_since(conn, now - dt.timedelta(hours=1), cap),
        limits.confirmations_per_hour,
        "haishin_confirmations_last_hour",
    )


def answer_allowed(conn: sa.Connection, ctx: Context, address: str) -> bool:
    """May we send one more automatic answer (help, expired, already subscribed…) to
    `address`? If yes, it is counted now."""
    limits = ctx.service.limits
    now = utcnow()
    if not _within(
        conn,
        autoreplies.to_address_since(conn, address, now - dt.timedelta(days=1)),
        limits.auto_replies_per_address_per_day,
        lambda cap: autoreplies.since(conn, now - dt.timedelta(hours=1), cap),
        limits.auto_replies_per_hour,
        "haishin_auto_replies_last_hour",
    ):
        return False
    autoreplies.add(conn, address, now)
    return True
