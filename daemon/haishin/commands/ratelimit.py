"""Confirmation requests, and every other automatic answer, are limited per address per
day and overall per hour (service.yaml `limits`), so the service cannot be used to flood
a stranger's mailbox with forged mail."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..store import autoreplies, confirmations
from ..store.clock import utcnow
from .context import Context


def allowed(conn: sa.Connection, ctx: Context, address: str) -> bool:
    limits = ctx.service.limits
    now = utcnow()
    if (
        confirmations.sent_to_address_since(conn, address, now - dt.timedelta(days=1))
        >= limits.confirmations_per_address_per_day
    ):
        return False
    hourly = limits.confirmations_per_hour
    # Counted once per transaction (a worker batch), then kept up to date here: the batch
    # holds the write lock, so nobody else adds confirmations meanwhile.
    cached = conn.info.get(_HOURLY)
    if cached is not None and cached[0] is conn.get_transaction():
        count = cached[1]
    else:
        count = confirmations.sent_since(conn, now - dt.timedelta(hours=1), hourly)
    if count >= hourly:
        return False
    conn.info[_HOURLY] = (conn.get_transaction(), count + 1)  # the caller sends one now
    return True


_HOURLY = "haishin_confirmations_last_hour"


def answer_allowed(conn: sa.Connection, ctx: Context, address: str) -> bool:
    """May we send one more automatic answer (help, expired, already subscribed…) to
    `address`? If yes, it is counted now."""
    limits = ctx.service.limits
    now = utcnow()
    if (
        autoreplies.to_address_since(conn, address, now - dt.timedelta(days=1))
        >= limits.auto_replies_per_address_per_day
    ):
        return False
    hourly = limits.auto_replies_per_hour
    if autoreplies.since(conn, now - dt.timedelta(hours=1), hourly) >= hourly:
        return False
    autoreplies.add(conn, address, now)
    return True
