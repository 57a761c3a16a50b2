"""The daemon's automatic answers, counted per address, per client network and overall
(abuse limits, outbound/ratelimit.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import sqlalchemy as sa

from . import deferred
from .counting import PerValue
from .schema import UTCDateTime, auto_replies
from .subscribers import address_key

_PER_ADDRESS = sa.select(sa.func.count()).where(
    auto_replies.c.address_key == sa.bindparam("b_key"),
    auto_replies.c.at >= sa.bindparam("b_since", type_=UTCDateTime()),
)
_RECENT = sa.select(sa.func.count()).select_from(
    sa.select(auto_replies.c.id)
    .where(auto_replies.c.at >= sa.bindparam("b_since", type_=UTCDateTime()))
    .limit(sa.bindparam("b_limit"))
    .subquery()
)
_PER_NETWORK = sa.select(sa.func.count()).select_from(
    sa.select(auto_replies.c.id)
    .where(
        auto_replies.c.client_network == sa.bindparam("b_network"),
        auto_replies.c.at >= sa.bindparam("b_since", type_=UTCDateTime()),
    )
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


_PER_NETWORKS = PerValue(auto_replies.c.client_network, auto_replies.c.at)
_PER_ADDRESSES = PerValue(auto_replies.c.address_key, auto_replies.c.at)


def from_networks_since(
    conn: sa.Connection, networks: Collection[str], when: dt.datetime
) -> dict[str, int]:
    """`from_network_since` for several networks in one query (a worker batch's clients)."""
    return _PER_NETWORKS.count(conn, networks, when)


def to_addresses_since(
    conn: sa.Connection, keys: Collection[str], since: dt.datetime
) -> dict[str, int]:
    """The per-address count for several address keys (`address_key`) in one query (a
    worker batch's senders); exact, like one query per address."""
    return _PER_ADDRESSES.count(conn, keys, since)


def from_network_since(conn: sa.Connection, network: str, when: dt.datetime, limit: int) -> int:
    """Answers to mail from one client network, counted up to `limit`
    (ix_auto_replies_network_at)."""
    params = {"b_network": network, "b_since": when, "b_limit": limit}
    return int(conn.execute(_PER_NETWORK, params).scalar_one())


def add(conn: sa.Connection, address: str, at: dt.datetime, network: str | None = None) -> None:
    """Count an answer; in a worker batch the row is written at the batch's end
    (store.deferred), and the batch's counts (outbound.ratelimit) already have it."""
    row = {"address_key": address_key(address), "at": at, "client_network": network}
    deferred.insert(conn, auto_replies, row)


def forget_before(conn: sa.Connection, when: dt.datetime) -> int:
    return conn.execute(auto_replies.delete().where(auto_replies.c.at < when)).rowcount
