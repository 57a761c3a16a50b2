"""The daemon's automatic answers, counted per address and overall (abuse limits)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from .schema import auto_replies
from .subscribers import address_key

_PER_ADDRESS = sa.select(sa.func.count()).where(
    auto_replies.c.address_key == sa.bindparam("b_key"),
    auto_replies.c.at >= sa.bindparam("b_since"),
)
_RECENT = sa.select(sa.func.count()).select_from(
    sa.select(auto_replies.c.id)
    .where(auto_replies.c.at >= sa.bindparam("b_since"))
    .limit(sa.bindparam("b_limit"))
    .subquery()
)


def to_address_since(conn: sa.Connection, address: str, since: dt.datetime) -> int:
    return int(
        conn.execute(_PER_ADDRESS, {"b_key": address_key(address), "b_since": since}).scalar_one()
    )


def since(conn: sa.Connection, when: dt.datetime, limit: int) -> int:
    """Counted up to `limit`: bounded work per answer."""
    return int(conn.execute(_RECENT, {"b_since": when, "b_limit": limit}).scalar_one())


def add(conn: sa.Connection, address: str, at: dt.datetime) -> None:
    conn.execute(auto_replies.insert().values(address_key=address_key(address), at=at))


def forget_before(conn: sa.Connection, when: dt.datetime) -> int:
    return conn.execute(auto_replies.delete().where(auto_replies.c.at < when)).rowcount
