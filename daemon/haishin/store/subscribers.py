"""Subscribers per channel and their consent record (第5条(2): the channel's recipients).

Statuses: pending (asked, not yet confirmed), active, unsubscribed, disabled (by staff or
by bounces). A subscriber becomes active only through a confirmation, never by import.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..clock import utcnow
from . import bounces, deferred, history
from .schema import subscribers


class Status(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    DISABLED = "disabled"


def address_key(address: str) -> str:
    """The lookup key of an address: lower-cased, since carriers and MTAs fold case."""
    return address.lower()


@dataclass(frozen=True)
class Subscriber:
    id: int
    channel: str
    address: str
    status: Status
    created_at: dt.datetime
    updated_at: dt.datetime
    confirmed_at: dt.datetime | None
    consent_method: str | None
    consent_evidence: str | None
    unsubscribed_at: dt.datetime | None
    unsubscribe_method: str | None


def _sub(r: sa.Row[tuple[object, ...]]) -> Subscriber:
    m = r._mapping
    return Subscriber(
        id=m["id"],
        channel=m["channel"],
        address=m["address"],
        status=Status(m["status"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        confirmed_at=m["confirmed_at"],
        consent_method=m["consent_method"],
        consent_evidence=m["consent_evidence"],
        unsubscribed_at=m["unsubscribed_at"],
        unsubscribe_method=m["unsubscribe_method"],
    )


# Statements built once: building them per call cost more than running them (bench).
_FIND = sa.select(subscribers).where(
    subscribers.c.channel == sa.bindparam("b_channel"),
    subscribers.c.address_key == sa.bindparam("b_key"),
)
_INSERT = subscribers.insert()
_BY_KEYS = sa.select(subscribers).where(
    subscribers.c.channel.in_(sa.bindparam("b_channels", expanding=True)),
    subscribers.c.address_key.in_(sa.bindparam("b_keys", expanding=True)),
)


def find(conn: sa.Connection, channel: str, address: str) -> Subscriber | None:
    key = address_key(address)
    if deferred.holds_subscriber(conn, channel, key):
        deferred.flush(conn)  # its pending row is still held: written first, then read
    ahead = deferred.ahead(conn, subscribers)
    if ahead is not None and (channel, key) in ahead:
        found: Subscriber | None = ahead[channel, key]
        return found
    params = {"b_channel": channel, "b_key": key}
    row = conn.execute(_FIND, params, execution_options=deferred.LOOKED).first()
    return _sub(row) if row else None


def read_ahead(conn: sa.Connection, channels: Collection[str], addresses: Collection[str]) -> None:
    """Read the rows of a worker batch's senders in `channels`, in one query: `find` then
    answers from them instead of one query per request, until the batch writes to the
    table (store.deferred). A row that another transaction changes meanwhile is seen as
    it was when the batch began, as if its mail had come a moment earlier. Both lists
    are given so that the unique index (channel, address_key) finds the rows, one probe
    per pair: there is no index on the address alone (PostgreSQL, a million rows, 10
    channels and 120 addresses: 9 ms)."""
    ahead = deferred.ahead(conn, subscribers)
    if ahead is None or not channels or not addresses:
        return
    keys = sorted({address_key(a) for a in addresses})
    found: dict[tuple[str, str], Subscriber | None] = {(c, k): None for c in channels for k in keys}
    params = {"b_channels": sorted(channels), "b_keys": keys}
    for row in conn.execute(_BY_KEYS, params, execution_options=deferred.LOOKED):
        sub = _sub(row)
        found[sub.channel, row._mapping["address_key"]] = sub
    ahead.update(found)


def by_id(conn: sa.Connection, sub_id: int) -> Subscriber | None:
    row = conn.execute(sa.select(subscribers).where(subscribers.c.id == sub_id)).first()
    return _sub(row) if row else None


def of_address(conn: sa.Connection, address: str) -> dict[str, Subscriber]:
    """Every subscription row of one address, by channel (the citizen's own page)."""
    rows = conn.execute(
        sa.select(subscribers).where(subscribers.c.address_key == address_key(address))
    )
    return {s.channel: s for s in map(_sub, rows)}


def ensure_pending(conn: sa.Connection, channel: str, address: str) -> Subscriber:
    """The subscriber row for a new request: created pending, or kept as it is."""
    existing = find(conn, channel, address)
    if existing is not None:
        return existing
    return add_pending(conn, channel, address)


def add_pending(conn: sa.Connection, channel: str, address: str) -> Subscriber:
    """A new pending row, for a caller that has just found none in its transaction."""
    row = _pending_row(channel, address)
    result = conn.execute(_INSERT, row)
    assert result.inserted_primary_key is not None
    now = row["created_at"]
    sub_id = int(result.inserted_primary_key[0])
    return Subscriber(
        sub_id, channel, address, Status.PENDING, now, now, None, None, None, None, None
    )


def hold_pending(conn: sa.Connection, channel: str, address: str) -> None:
    """`add_pending` for a caller that needs no id: inside a worker batch the insert is
    held to the batch's end (store.deferred)."""
    deferred.insert(conn, subscribers, _pending_row(channel, address))


def _pending_row(channel: str, address: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "channel": channel,
        "address": address,
        "address_key": address_key(address),
        "status": Status.PENDING,
        "created_at": now,
        "updated_at": now,
    }


def activate(
    conn: sa.Connection, channel: str, address: str, *, method: str, evidence: str
) -> Subscriber:
    """Record consent and make the address active (特定電子メール法: keep the record)."""
    sub = ensure_pending(conn, channel, address)
    now = utcnow()
    if sub.status != Status.ACTIVE:
        history.joined(conn, channel, sub.id)
    conn.execute(
        subscribers.update()
        .where(subscribers.c.id == sub.id)
        .values(
            status=Status.ACTIVE,
            updated_at=now,
            confirmed_at=now,
            consent_method=method,
            consent_evidence=evidence[:1000],
            unsubscribed_at=None,
            unsubscribe_method=None,
        )
    )
    # a disabled address that confirms again starts with a clean bounce record
    bounces.reset_score(conn, sub.id)
    result = by_id(conn, sub.id)
    assert result is not None
    return result


def unsubscribe(conn: sa.Connection, sub_id: int, *, method: str) -> bool:
    """End a subscription; False when it was not active (nothing changes then)."""
    now = utcnow()
    result = conn.execute(
        subscribers.update()
        .where(subscribers.c.id == sub_id, subscribers.c.status == Status.ACTIVE)
        .values(
            status=Status.UNSUBSCRIBED,
            updated_at=now,
            unsubscribed_at=now,
            unsubscribe_method=method,
        )
        .returning(subscribers.c.channel)
    )
    return _ended(conn, result.scalar_one_or_none(), sub_id, method)


def disable(conn: sa.Connection, sub_id: int, *, method: str) -> bool:
    """Stop mailing an active subscription (e.g. after bounces); the row and its consent
    record stay, and a new confirmed subscribe makes it active again. False when it was
    not active."""
    now = utcnow()
    result = conn.execute(
        subscribers.update()
        .where(subscribers.c.id == sub_id, subscribers.c.status == Status.ACTIVE)
        .values(status=Status.DISABLED, updated_at=now, unsubscribe_method=method)
        .returning(subscribers.c.channel)
    )
    return _ended(conn, result.scalar_one_or_none(), sub_id, method)


def _ended(conn: sa.Connection, channel: str | None, sub_id: int, method: str) -> bool:
    """Record the end of a subscription that the update just ended (its channel came back:
    the row was active), once even when two daemons tried."""
    if channel is None:
        return False
    history.left(conn, channel, sub_id, method)
    return True


def remove(conn: sa.Connection, channel: str, address: str) -> bool:
    """Staff removal (第5条(2)): the row is kept as disabled, so the record stays."""
    found = find(conn, channel, address)
    if found is None or found.status == Status.DISABLED:
        return False
    result = conn.execute(
        subscribers.update()
        # the state it was read in: a concurrent change makes this a no-op, not a double end
        .where(subscribers.c.id == found.id, subscribers.c.status == found.status)
        .values(status=Status.DISABLED, updated_at=utcnow(), unsubscribe_method="staff")
    )
    if result.rowcount != 1:
        return False
    if found.status == Status.ACTIVE:
        history.left(conn, channel, found.id, "staff")
    return True


def count(conn: sa.Connection, channel: str) -> dict[Status, int]:
    rows = conn.execute(
        sa.select(subscribers.c.status, sa.func.count())
        .where(subscribers.c.channel == channel)
        .group_by(subscribers.c.status)
    ).all()
    found = {Status(s): int(n) for s, n in rows}
    return {s: found.get(s, 0) for s in Status}


def iterate(
    conn: sa.Connection, channel: str, status: Status | None = None
) -> Iterator[Subscriber]:
    query = sa.select(subscribers).where(subscribers.c.channel == channel)
    if status is not None:
        query = query.where(subscribers.c.status == status)
    for row in conn.execution_options(yield_per=1000).execute(query.order_by(subscribers.c.id)):
        yield _sub(row)
