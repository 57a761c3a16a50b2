"""Confirmation requests are limited per address per day and overall per hour
(service.yaml `limits`), so the service cannot be used to flood a stranger's mailbox."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..store import confirmations
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
    return confirmations.sent_since(conn, now - dt.timedelta(hours=1), hourly) < hourly
