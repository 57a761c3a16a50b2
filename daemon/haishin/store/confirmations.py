"""Pending actions waiting for proof that the address reads its mail (double opt-in).

The rows also carry the rate limits: how many requests an address got, how many were asked
from one client network and how many went out overall, each in its window, so that nobody
can use the service to flood a stranger's mailbox (subscription bombing) or use up the
share of everyone else.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from . import deferred
from .counting import PerValue
from .schema import UTCDateTime, confirmations
from .subscribers import address_key


class Action(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True)
class Pending:
    id: int
    channel: str
    address: str
    action: Action
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None


def create(
    conn: sa.Connection,
    channel: str,
    address: str,
    action: Action,
    ttl: dt.timedelta,
    origin: str,
    network: str | None = None,
) -> Pending:
    now = utcnow()
    row = {
        "channel": channel,
        "address": address,
        "address_key": address_key(address),
        "action": action,
        "created_at": now,
        "expires_at": now + ttl,
        "origin": origin[:500],
        "client_network": network,
    }
    reserved = deferred.reserve(conn, confirmations)
    if reserved is None:
        result = conn.execute(_INSERT, row)
        assert result.inserted_primary_key is not None
        reserved = int(result.inserted_primary_key[0])
    else:  # a worker batch: the id is known now, the row written at the batch's end
        deferred.insert(conn, confirmations, {"id": reserved, **row})
    return Pending(reserved, channel, address, action, now, now + ttl, None)


def get(conn: sa.Connection, pending_id: int) -> Pending | None:
    row = conn.execute(sa.select(confirmations).where(confirmations.c.id == pending_id)).first()
    if row is None:
        return None
    m = row._mapping
    return Pending(
        m["id"],
        m["channel"],
        m["address"],
        Action(m["action"]),
        m["created_at"],
        m["expires_at"],
        m["used_at"],
    )


def use(conn: sa.Connection, pending_id: int) -> bool:
    """Spend a confirmation once; False when it had already been used."""
    result = conn.execute(
        confirmations.update()
        .where(confirmations.c.id == pending_id, confirmations.c.used_at.is_(None))
        .values(used_at=utcnow())
    )
    return result.rowcount == 1


def waiting(conn: sa.Connection, channel: str, address: str, action: Action) -> bool:
    """Is a request for this mailbox (`address_key`) still open: not used, not expired?"""
    query = sa.select(confirmations.c.id).where(
        confirmations.c.channel == channel,
        confirmations.c.address_key == address_key(address),
        confirmations.c.action == action,
        confirmations.c.used_at.is_(None),
        confirmations.c.expires_at > utcnow(),
    )
    return conn.execute(query.limit(1)).first() is not None


_INSERT = confirmations.insert()
_PER_ADDRESS = sa.select(sa.func.count()).where(
    confirmations.c.address_key == sa.bindparam("b_key"),
    confirmations.c.created_at >= sa.bindparam("b_since", type_=UTCDateTime()),
)
_RECENT = sa.select(sa.func.count()).select_from(
    sa.select(confirmations.c.id)
    .where(confirmations.c.created_at >= sa.bindparam("b_since", type_=UTCDateTime()))
    .limit(sa.bindparam("b_limit"))
    .subquery()
)
_PER_NETWORK = sa.select(sa.func.count()).select_from(
    sa.select(confirmations.c.id)
    .where(
        confirmations.c.client_network == sa.bindparam("b_network"),
        confirmations.c.created_at >= sa.bindparam("b_since", type_=UTCDateTime()),
    )
    .limit(sa.bindparam("b_limit"))
    .subquery()
)


_PER_NETWORKS = PerValue(confirmations.c.client_network, confirmations.c.created_at)
_PER_ADDRESSES = PerValue(confirmations.c.address_key, confirmations.c.created_at)


def sent_to_address_since(conn: sa.Connection, address: str, since: dt.datetime) -> int:
    params = {"b_key": address_key(address), "b_since": since}
    return int(conn.execute(_PER_ADDRESS, params).scalar_one())


def sent_since(conn: sa.Connection, since: dt.datetime, limit: int) -> int:
    """How many went out since `since`, counted up to `limit` (bounded work per request)."""
    return int(conn.execute(_RECENT, {"b_since": since, "b_limit": limit}).scalar_one())


def from_networks_since(
    conn: sa.Connection, networks: Collection[str], since: dt.datetime
) -> dict[str, int]:
    """`from_network_since` for several networks in one query (a worker batch's clients);
    exact counts, bounded all the same: rows exist only for requests the caps allowed."""
    return _PER_NETWORKS.count(conn, networks, since)


def to_addresses_since(
    conn: sa.Connection, keys: Collection[str], since: dt.datetime
) -> dict[str, int]:
    """The per-address count for several address keys (`address_key`) in one query (a
    worker batch's senders); exact, like one query per address."""
    return _PER_ADDRESSES.count(conn, keys, since)


def from_network_since(conn: sa.Connection, network: str, since: dt.datetime, limit: int) -> int:
    """How many were asked from one client network since `since`, counted up to `limit`
    (ix_confirmations_network_created)."""
    params = {"b_network": network, "b_since": since, "b_limit": limit}
    return int(conn.execute(_PER_NETWORK, params).scalar_one())
