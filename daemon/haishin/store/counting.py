"""Counts for the rate limits (outbound/ratelimit.py), one query for a worker batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from .schema import UTCDateTime


class PerValue:
    """Rows per value of `key` at or after a time, for the values a worker batch asks
    about (its clients' networks, its senders' address keys): one query for all of them,
    exact like one query per value. The statement is built once, with an expanding IN
    list: building it per batch cost twice as much as running it (bench/inbound_subscribe.py).
    """

    def __init__(self, key: sa.Column[Any], at: sa.Column[Any]) -> None:
        self._query = (
            sa.select(key, sa.func.count())
            .where(
                key.in_(sa.bindparam("b_values", expanding=True)),
                at >= sa.bindparam("b_since", type_=UTCDateTime()),
            )
            .group_by(key)
        )

    def count(
        self, conn: sa.Connection, values: Collection[str], since: dt.datetime
    ) -> dict[str, int]:
        params = {"b_values": list(values), "b_since": since}
        found = {str(v): int(n) for v, n in conn.execute(self._query, params)}
        return {v: found.get(v, 0) for v in values}
