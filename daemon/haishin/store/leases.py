"""The rows behind the limits the daemons of one PostgreSQL database share
(outbound/sharing.py holds the design): rate grants and lane leases.

Every time here is the database's (`now()`), never a host's: daemons on several hosts
then agree on when a grant starts and a lease ends whatever their clocks say.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..clock import utcnow
from .engine import reading
from .heartbeats import DEAD_AFTER
from .schema import lane_leases

LEASE = DEAD_AFTER
"""A lane lease lasts this long unless renewed: a dead daemon's connections are free
again within it (the same span as `heartbeats.DEAD_AFTER`, after which its claims go back)."""

_GRANT = sa.text(
    # one statement, one row lock: grants of the same bucket follow one another, each
    # starting where the last ended (or now, if that is past: nothing is saved up)
    "INSERT INTO rate_grants (key, due_at) "
    "VALUES (CAST(:key AS varchar), now() + make_interval(secs => CAST(:span AS float8))) "
    "ON CONFLICT (key) DO UPDATE SET due_at = "
    "greatest(rate_grants.due_at, now()) + make_interval(secs => CAST(:span AS float8)) "
    "RETURNING extract(epoch FROM rate_grants.due_at - now())::float8"
)


def grant(engine: sa.Engine, key: str, span: float) -> float:
    """Take the next `span` seconds of bucket `key`'s send times; returns in how many
    seconds they start (0 when the bucket was idle)."""
    with engine.begin() as conn:
        end = conn.execute(_GRANT, {"key": key, "span": span}).scalar_one()
    return max(0.0, float(end) - span)


_ACQUIRE = sa.text(
    # the lowest free slot; two daemons racing for it conflict on the primary key and
    # the loser's ON CONFLICT sees the winner's unexpired lease: it gets nothing
    "INSERT INTO lane_leases (key, slot, holder, expires_at) "
    "SELECT CAST(:key AS varchar), s, CAST(:holder AS varchar), "
    "now() + make_interval(secs => CAST(:lease AS float8)) "
    "FROM generate_series(0, CAST(:slots AS integer) - 1) AS s "
    "WHERE NOT EXISTS (SELECT 1 FROM lane_leases l "
    "  WHERE l.key = CAST(:key AS varchar) AND l.slot = s AND l.expires_at > now()) "
    # a fair share each: a daemon holding every slot would, once killed, stall the
    # domain for a lease time; with one slot in n it leaves the others theirs
    "AND (SELECT count(*) FROM lane_leases m WHERE m.key = CAST(:key AS varchar) "
    "  AND m.holder = CAST(:holder AS varchar) AND m.expires_at > now()) "
    "  < ceil(CAST(:slots AS float8) / greatest(1, (SELECT count(*) FROM senders "
    "    WHERE heartbeat_at >= CAST(:alive_since AS timestamptz)))) "
    "ORDER BY s LIMIT 1 "
    "ON CONFLICT (key, slot) DO UPDATE SET holder = excluded.holder, "
    "expires_at = excluded.expires_at WHERE lane_leases.expires_at <= now() "
    "RETURNING slot"
)


def acquire(engine: sa.Engine, key: str, slots: int, holder: str) -> int | None:
    """One of the `slots` connection slots of lane `key` for `holder`, or None if all
    are held by live leases, or `holder` has its share: `slots` over the live senders
    (those whose heartbeat `heartbeats.recover` trusts), rounded up."""
    params = {
        "key": key,
        "slots": slots,
        "holder": holder,
        "lease": LEASE.total_seconds(),
        "alive_since": utcnow() - DEAD_AFTER,
    }
    with engine.begin() as conn:
        got = conn.execute(_ACQUIRE, params).scalar_one_or_none()
    return None if got is None else int(got)


def release(engine: sa.Engine, key: str, slot: int, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            lane_leases.delete().where(
                lane_leases.c.key == key,
                lane_leases.c.slot == slot,
                lane_leases.c.holder == holder,
            )
        )


def renew(engine: sa.Engine, holder: str) -> None:
    """Every lease of `holder` lasts LEASE from now (the sender's heartbeat)."""
    with engine.begin() as conn:
        conn.execute(
            lane_leases.update()
            .where(lane_leases.c.holder == holder)
            .values(expires_at=sa.func.now() + LEASE)
        )


def held(engine: sa.Engine) -> dict[str, list[str]]:
    """Holder → the lanes it holds a live lease of (a lane once per connection)."""
    if engine.dialect.name == "sqlite":
        return {}  # one daemon per file: nothing is shared, nothing leased
    out: dict[str, list[str]] = {}
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(lane_leases.c.holder, lane_leases.c.key)
            .where(lane_leases.c.expires_at > sa.func.now())
            .order_by(lane_leases.c.key, lane_leases.c.slot)
        )
        for holder, key in rows:
            out.setdefault(str(holder), []).append(str(key))
    return out
