"""The durable outbound queue: one rendered body, one row per recipient.

Designed for the posting issue's fan-out (a hundred thousand recipients per post): rows
are claimed in batches, in PostgreSQL with `FOR UPDATE SKIP LOCKED` so several daemons
share the work and each recipient is delivered once; a crashed sender's claimed rows go
back to the queue at start. Of those, only what was delivered and not yet settled goes out
twice: the sender settles each connection's chains as they finish, so that is at most
`outbound.chains.repeat_bound` (design.md: at most the in-flight batch is repeated).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import sqlalchemy as sa

from ..clock import utcnow
from .engine import reading
from .schema import UTCDateTime, outbound, outbound_messages
from .states import MessageKind, QueueState

log = logging.getLogger(__name__)

WORKER_ID = f"{uuid.uuid4().hex[:12]}"
"""Who claimed a row: this process."""


class Claimed(NamedTuple):
    """One claimed row with its body. A named tuple, not a frozen dataclass: a sender
    makes one per message, and a named tuple is one allocation where a frozen dataclass
    sets each field through object.__setattr__ (the same holds for `Result`)."""

    id: int
    mail_from: str
    rcpt: str
    attempts: int
    headers: bytes | None
    raw: bytes
    message_id: int = 0


_INSERT_MESSAGE = outbound_messages.insert()
ROWS_PER_INSERT = 5000
"""Rows per executemany: a post's rows stream in chunks, never all in memory."""


def add_message(conn: sa.Connection, raw: bytes, *, kind: MessageKind) -> int:
    """Store one rendered body (shared by all its recipients); returns its id."""
    result = conn.execute(_INSERT_MESSAGE, {"created_at": utcnow(), "kind": kind, "raw": raw})
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def add_rows(
    conn: sa.Connection,
    message_id: int,
    rows: Iterable[tuple[str, str, bytes | None]],
    *,
    not_before: dt.datetime | None = None,
) -> int:
    """Queue `(envelope sender, recipient, per-recipient headers)` rows for a stored body,
    in chunks inside the caller's transaction (a post's return path is per subscriber:
    VERP). Returns how many rows were added.

    A fan-out's hot path (design.md, Performance): what every row shares (its body, state
    and times) is converted for the database once per call, and the rows go to the
    driver's executemany as plain tuples, without a per-row pass through the statement's
    bind processing (two datetime conversions and a dict per row cost more than the
    insert itself on SQLite)."""
    now = utcnow()
    sql = _insert_sql(conn.dialect)
    shared = _shared_values(conn.dialect, message_id, not_before or now, now)
    added = 0
    chunk: list[tuple[object, ...]] = []
    for mail_from, rcpt, h in rows:
        chunk.append((*shared, mail_from, rcpt, h))
        if len(chunk) >= ROWS_PER_INSERT:
            conn.exec_driver_sql(sql, chunk)
            added += len(chunk)
            chunk = []
    if chunk:
        conn.exec_driver_sql(sql, chunk)
        added += len(chunk)
    return added


_SHARED = ("message_id", "state", "attempts", "next_try", "created_at")
_PER_ROW = ("mail_from", "rcpt", "headers")


def _shared_values(
    dialect: sa.Dialect, message_id: int, due: dt.datetime, now: dt.datetime
) -> tuple[object, ...]:
    """The values every row of one `add_rows` call shares, as the driver takes them (each
    through its column type's own conversion, once)."""
    given = {
        "message_id": message_id,
        "state": QueueState.QUEUED.value,
        "attempts": 0,
        "next_try": due,
        "created_at": now,
    }
    out = []
    for name in _SHARED:
        process = outbound.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(process(given[name]) if process else given[name])
    return tuple(out)


_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
"""A positional parameter in each DB-API style the store's drivers use (sqlite3: qmark;
psycopg: pyformat, which also takes %s with a tuple)."""


def _insert_sql(dialect: sa.Dialect) -> str:
    """The INSERT of one queue row, columns in the order `add_rows` builds its tuples."""
    names = _SHARED + _PER_ROW
    mark = _MARKS[dialect.paramstyle]
    return (
        f"INSERT INTO {outbound.name} ({', '.join(names)}) "
        f"VALUES ({', '.join([mark] * len(names))})"
    )


def row(
    message_id: int, mail_from: str, rcpt: str, h: bytes | None, due: dt.datetime, now: dt.datetime
) -> dict[str, object]:
    """One recipient's queue row, as `add_rows` and store.deferred write it."""
    return {
        "message_id": message_id,
        "mail_from": mail_from,
        "rcpt": rcpt,
        "headers": h,
        "state": QueueState.QUEUED,
        "attempts": 0,
        "next_try": due,
        "created_at": now,
    }


def enqueue(
    conn: sa.Connection,
    raw: bytes,
    mail_from: str,
    rcpts: Sequence[str],
    *,
    kind: MessageKind,
    headers: Sequence[bytes | None] | None = None,
    not_before: dt.datetime | None = None,
) -> int:
    """Queue one message for several recipients inside the caller's transaction."""
    message_id = add_message(conn, raw, kind=kind)
    per = headers or [None] * len(rcpts)
    add_rows(
        conn,
        message_id,
        ((mail_from, rcpt, h) for rcpt, h in zip(rcpts, per, strict=True)),
        not_before=not_before,
    )
    return message_id


def claim(
    engine: sa.Engine,
    limit: int,
    now: dt.datetime | None = None,
    bodies: dict[int, bytes] | None = None,
    *,
    kinds: frozenset[MessageKind] | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due rows for this process and return them with their bodies.
    With `kinds`, only rows of messages of those kinds (an outage, 第9条: the rest wait).

    One statement claims and returns the rows (UPDATE ... RETURNING; on PostgreSQL the
    inner SELECT takes `FOR UPDATE SKIP LOCKED`, so daemons sharing the database never
    claim the same row). Bodies are read once per message and kept in `bodies`, a cache
    the caller owns: a post's 4 KB body is not copied a hundred thousand times."""
    now = now or utcnow()
    bodies = {} if bodies is None else bodies
    with engine.begin() as conn:
        due = (
            sa.select(outbound.c.id)
            .where(outbound.c.state == QueueState.QUEUED, outbound.c.next_try <= now)
            .order_by(outbound.c.next_try, outbound.c.id)
            .limit(limit)
        )
        if kinds is not None:
            due = due.where(
                outbound.c.message_id.in_(
                    sa.select(outbound_messages.c.id).where(outbound_messages.c.kind.in_(kinds))
                )
            )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        # a CTE, evaluated once: as a plain IN (subquery) PostgreSQL may run the locking
        # subquery again per row, and rows it already updated no longer match, so the
        # LIMIT is exceeded (seen: 250 rows for a limit of 100)
        picked = due.cte("due")
        rows = list(
            conn.execute(
                outbound.update()
                .where(outbound.c.id == picked.c.id, outbound.c.state == QueueState.QUEUED)
                .values(state=QueueState.SENDING, claimed_at=now, claimed_by=WORKER_ID)
                .returning(
                    outbound.c.id,
                    outbound.c.message_id,
                    outbound.c.mail_from,
                    outbound.c.rcpt,
                    outbound.c.attempts,
                    outbound.c.headers,
                )
            )
        )
        if not rows:
            return []
        missing = {r[1] for r in rows} - bodies.keys()
        if missing:
            for mid, raw in conn.execute(
                sa.select(outbound_messages.c.id, outbound_messages.c.raw).where(
                    outbound_messages.c.id.in_(missing)
                )
            ):
                bodies[int(mid)] = bytes(raw)
    rows.sort(key=lambda r: r[0])  # by id: the order they were queued in
    # bytes() of bytes is the same object, not a copy (a driver may give a memoryview)
    return [
        Claimed(i, f, r, a, None if h is None else bytes(h), bodies[m], m)
        for i, m, f, r, a, h in rows
    ]


def release(engine: sa.Engine, stamps: Sequence[dt.datetime]) -> int:
    """The rows of this process's claims made at `stamps` go back to the queue untried.

    For a claim whose answer was lost: the database may have committed it while the
    connection broke before the reply arrived (a commit's outcome is unknown to the
    client then), and its rows would stay `sending` under a live sender's id, which
    `recover` never takes back. Nobody sent them (the caller never had them), so nothing
    goes out twice; no attempt is counted."""
    if not stamps:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            outbound.update()
            .where(
                outbound.c.state == QueueState.SENDING,
                outbound.c.claimed_by == WORKER_ID,
                outbound.c.claimed_at.in_(list(stamps)),
            )
            .values(state=QueueState.QUEUED, claimed_by=None)
        )
    return result.rowcount


class Claims:
    """One sender's claims, one at a time, and those whose outcome it never learnt.

    A claim that fails is remembered by its stamp (`claimed_at`, unique per claim
    because they run one after another) and released before the next claim is made:
    so while a release is due no later claim shares a stamp, and what is released was
    never handed out. Not thread-safe: one caller at a time (the sender's loop)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.unsure: list[dt.datetime] = []

    def claim(
        self,
        limit: int,
        bodies: dict[int, bytes] | None = None,
        *,
        kinds: frozenset[MessageKind] | None = None,
    ) -> list[Claimed]:
        """As `claim`; a failure here (even at the release) leaves nothing stranded:
        the next call releases it first, and raises again while the database is away."""
        if self.unsure:
            released = release(self.engine, self.unsure)
            self.unsure = []
            if released:
                log.warning(
                    "queue: %d row(s) of a claim whose answer was lost back to the queue",
                    released,
                )
        stamp = utcnow()
        try:
            return claim(self.engine, limit, stamp, bodies, kinds=kinds)
        except Exception:
            self.unsure.append(stamp)
            raise


class Result(NamedTuple):
    """What became of a claimed row, for `settle`."""

    id: int
    state: QueueState  # QUEUED again: a retry
    error: str | None = None
    next_try: dt.datetime | None = None
    attempted: bool = True
    """False when the row goes back untried (its domain's pace): no attempt is counted."""

    @classmethod
    def untried(cls, row_id: int, next_try: dt.datetime | None = None) -> Result:
        """The row goes back to the queue without an attempt (an outage, its domain's pace,
        a stop): no attempt is counted."""
        return cls(row_id, QueueState.QUEUED, None, next_try, attempted=False)


_IDS_PER_STATEMENT = 5000  # below SQLite's bound on host parameters


def settle(
    engine: sa.Engine,
    results: Sequence[Result],
    then: Callable[[sa.Connection], None] | None = None,
) -> None:
    """Record the outcome of claimed rows in one transaction: one UPDATE for the sent
    rows (the common case), one executemany for the rest. `then` runs inside it (the
    bounce score of 5xx replies commits with the rows, or neither does)."""
    now = utcnow()
    sent = [r.id for r in results if r.state == QueueState.SENT]
    again = [
        {
            "rid": r.id,
            "st": r.state,
            "err": r.error,
            "inc": 1 if r.attempted else 0,
            "nt": r.next_try or now,
        }
        for r in results
        if r.state == QueueState.QUEUED
    ]
    done = [
        {"rid": r.id, "st": r.state, "err": r.error}
        for r in results
        if r.state not in (QueueState.SENT, QueueState.QUEUED)
    ]
    with engine.begin() as conn:
        for i in range(0, len(sent), _IDS_PER_STATEMENT):
            conn.execute(
                outbound.update()
                .where(outbound.c.id.in_(sent[i : i + _IDS_PER_STATEMENT]))
                .values(
                    state=QueueState.SENT,
                    attempts=outbound.c.attempts + 1,
                    done_at=now,
                    last_error=None,
                )
            )
        if again:
            conn.execute(
                outbound.update()
                .where(outbound.c.id == sa.bindparam("rid"))
                .values(
                    state=sa.bindparam("st"),
                    last_error=sa.bindparam("err"),
                    attempts=outbound.c.attempts + sa.bindparam("inc"),
                    next_try=sa.bindparam("nt", type_=UTCDateTime()),
                    claimed_by=None,
                ),
                again,
            )
        if done:
            conn.execute(
                outbound.update()
                .where(outbound.c.id == sa.bindparam("rid"))
                .values(
                    state=sa.bindparam("st"),
                    last_error=sa.bindparam("err"),
                    attempts=outbound.c.attempts + 1,
                    done_at=now,
                ),
                done,
            )
        if then is not None:
            then(conn)


def next_due(engine: sa.Engine) -> dt.datetime | None:
    with reading(engine) as conn:
        return conn.execute(
            sa.select(sa.func.min(outbound.c.next_try, type_=UTCDateTime())).where(
                outbound.c.state == QueueState.QUEUED
            )
        ).scalar()


def counts(engine: sa.Engine) -> dict[str, int]:
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(outbound.c.state, sa.func.count()).group_by(outbound.c.state)
        ).all()
    return {str(s): int(n) for s, n in rows}
