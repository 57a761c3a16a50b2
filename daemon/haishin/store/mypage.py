"""The citizen's own page in the store: the links mailed in answer to `mypage@`, the
address changes waiting for the new address, and the subscriptions of one address.

A link is a row whose id its token carries (tokens.py): the row names the one address the
page may show and change, so a token can never reach another address; when the address
moves away the row is revoked, so "a link to the old address stops working" holds exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from .schema import address_moves, mypage_links
from .subscribers import address_key


@dataclass(frozen=True)
class Link:
    id: int
    address: str
    expires_at: dt.datetime
    revoked_at: dt.datetime | None

    def usable(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class Move:
    id: int
    link: int
    old_address: str
    new_address: str
    expires_at: dt.datetime
    used_at: dt.datetime | None


def create_link(conn: sa.Connection, address: str, ttl: dt.timedelta) -> Link:
    now = utcnow()
    result = conn.execute(
        mypage_links.insert().values(
            address=address,
            address_key=address_key(address),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    assert result.inserted_primary_key is not None
    return Link(int(result.inserted_primary_key[0]), address, now + ttl, None)


def link(conn: sa.Connection, link_id: int, *, lock: bool = False) -> Link | None:
    """`lock`: for a change the page makes (PostgreSQL), so that a change of address
    confirmed meanwhile (`revoke_links`, first in its transaction) waits for it or is
    waited for, and neither acts on what the other has just changed."""
    query = sa.select(mypage_links).where(mypage_links.c.id == link_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        return None
    m = row._mapping
    return Link(m["id"], m["address"], m["expires_at"], m["revoked_at"])


def revoke_links(conn: sa.Connection, address: str) -> int:
    """Every link of `address` stops working (its subscriptions moved away)."""
    return conn.execute(
        mypage_links.update()
        .where(
            mypage_links.c.address_key == address_key(address), mypage_links.c.revoked_at.is_(None)
        )
        .values(revoked_at=utcnow())
    ).rowcount


def create_move(
    conn: sa.Connection,
    link_id: int,
    old: str,
    new: str,
    ttl: dt.timedelta,
    requested_from: str | None,
) -> Move:
    now = utcnow()
    result = conn.execute(
        address_moves.insert().values(
            link=link_id,
            old_address=old,
            old_key=address_key(old),
            new_address=new,
            new_key=address_key(new),
            created_at=now,
            expires_at=now + ttl,
            requested_from=(requested_from or "")[:64] or None,
        )
    )
    assert result.inserted_primary_key is not None
    return Move(int(result.inserted_primary_key[0]), link_id, old, new, now + ttl, None)


def moves_of_link(conn: sa.Connection, link_id: int) -> int:
    """How many changes of address one link has asked (a cap per link, commands/moves).

    The link's row is locked first (PostgreSQL; SQLite has one writer anyway), so requests
    of one link made at the same moment count one after the other: 20 at once had mailed
    8 strangers past a cap of 3, each reading the count before any had written."""
    conn.execute(sa.select(mypage_links.c.id).where(mypage_links.c.id == link_id).with_for_update())
    query = sa.select(sa.func.count()).where(address_moves.c.link == link_id)
    return int(conn.execute(query).scalar_one())


def move(conn: sa.Connection, move_id: int) -> Move | None:
    row = conn.execute(sa.select(address_moves).where(address_moves.c.id == move_id)).first()
    if row is None:
        return None
    m = row._mapping
    return Move(
        m["id"], m["link"], m["old_address"], m["new_address"], m["expires_at"], m["used_at"]
    )


def use_move(conn: sa.Connection, move_id: int, how: str) -> bool:
    """Mark a move done; False when it was already used (two clicks, a replay)."""
    result = conn.execute(
        address_moves.update()
        .where(address_moves.c.id == move_id, address_moves.c.used_at.is_(None))
        .values(used_at=utcnow(), confirmed_by=how[:500])
    )
    return result.rowcount == 1


def void_moves_from(conn: sa.Connection, old: str) -> None:
    """Other changes asked for an address that has just moved away: nothing left to move."""
    conn.execute(
        address_moves.update()
        .where(address_moves.c.old_key == address_key(old), address_moves.c.used_at.is_(None))
        .values(used_at=utcnow(), confirmed_by="void: the address moved by another request")
    )


def forget_before(
    conn: sa.Connection, cutoff: dt.datetime, alias: Callable[[str], str], done_prefix: str
) -> int:
    """Addresses no longer needed (第4条(3), store/retention.py): a link that expired before
    `cutoff`, and a change of address never confirmed (the new address may be a stranger's
    that somebody typed in), get `alias` (a keyed pseudonym, starting `done_prefix`). A confirmed change
    keeps both addresses: it is part of the consent record."""
    done = 0
    links = conn.execute(
        sa.select(mypage_links.c.id, mypage_links.c.address).where(
            mypage_links.c.expires_at < cutoff, ~mypage_links.c.address.startswith(done_prefix)
        )
    ).all()
    for link_id, address in links:
        a = alias(address)
        conn.execute(
            mypage_links.update()
            .where(mypage_links.c.id == link_id)
            .values(address=a, address_key=a)
        )
        done += 1
    moves = conn.execute(
        sa.select(
            address_moves.c.id, address_moves.c.old_address, address_moves.c.new_address
        ).where(
            address_moves.c.expires_at < cutoff,
            sa.or_(
                address_moves.c.confirmed_by.is_(None),
                address_moves.c.confirmed_by.startswith("void"),
            ),
            ~address_moves.c.new_address.startswith(done_prefix),
        )
    ).all()
    for move_id, old, new in moves:
        conn.execute(
            address_moves.update()
            .where(address_moves.c.id == move_id)
            .values(
                old_address=alias(old),
                old_key=alias(old),
                new_address=alias(new),
                new_key=alias(new),
            )
        )
        done += 1
    return done
