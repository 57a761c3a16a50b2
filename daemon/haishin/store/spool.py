"""The inbound spool: every accepted message, committed before the front end says 250.

`put` is the one way in, for SMTP, LMTP and IMAP alike. The worker reads rows in id order
and marks each done in the same transaction as its effects (see `router.worker`), so a
crash repeats nothing that was visible.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from ..errors import HaishinError
from .engine import reading
from .schema import UTCDateTime, inbound
from .states import Intake, SpoolState

MAX_ATTEMPTS = 3
"""A message whose processing raised this many times is shunted (kept, state failed)."""


class Unstorable(HaishinError):
    """This message can never be stored as it is: the front end answers 5xx, not 4xx
    (RFC 5321 §4.2.1: a retry of the same data would fail the same way)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


_NOT_STORABLE = re.compile(r"[\x00\udc80-\udcff]")
"""NUL (PostgreSQL text cannot hold it) and lone surrogates (not UTF-8: neither engine
can encode them), in the text columns."""


def unstorable(mail_from: str, rcpts: Sequence[str]) -> str | None:
    """Why an envelope cannot be stored, or None. The SMTP front end refuses such paths
    at MAIL and RCPT already (inbound/paths.py); this guards every way in."""
    for text in (mail_from, *rcpts):
        if _NOT_STORABLE.search(text):
            return "the envelope holds bytes that cannot be stored (NUL or not UTF-8)"
    return None


def permanent(exc: BaseException) -> bool:
    """Would storing the same row fail again? Data the database refuses (a constraint, a
    value it cannot hold, text the driver cannot encode) fails every time; a lost
    connection, a lock or a full disk may pass on the next try (451)."""
    return isinstance(exc, Unstorable | sa.exc.IntegrityError | sa.exc.DataError | UnicodeError)


@dataclass(frozen=True)
class Spooled:
    id: int
    received_at: dt.datetime
    source: Intake
    mail_from: str
    rcpts: list[str]
    raw: bytes
    attempts: int
    client_address: str | None = None
    """Who handed it over (SMTP/LMTP peer, or the client Postfix saw); None for IMAP."""


def put(
    engine: sa.Engine,
    raw: bytes,
    mail_from: str,
    rcpts: Sequence[str],
    source: Intake = Intake.IMAP,
    key: str | None = None,
) -> int:
    """Store one message durably and return its id; raises if the commit fails.

    With a `key` (IMAP: the content hash), storing the same message again returns the
    first id and stores nothing."""
    if key is not None:
        existing = _by_key(engine, key)
        if existing is not None:
            return existing
    try:
        return put_many(engine, [(raw, mail_from, list(rcpts), source)], [key])[0]
    except sa.exc.IntegrityError:
        existing = _by_key(engine, key) if key is not None else None
        if existing is None:
            raise
        return existing  # a concurrent store of the same message won


def _by_key(engine: sa.Engine, key: str) -> int | None:
    with reading(engine) as conn:
        found = conn.execute(sa.select(inbound.c.id).where(inbound.c.dedupe_key == key)).scalar()
    return int(found) if found is not None else None


class Spool:
    """The spool as the IMAP ingester sees it: `put(raw, mail_from, rcpts) -> id`, sync,
    committed before it returns; `on_stored` wakes the worker (thread-safe callable)."""

    def __init__(
        self,
        engine: sa.Engine,
        source: Intake = Intake.IMAP,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._source = source
        self._on_stored = on_stored

    def put(self, raw: bytes, mail_from: str, rcpts: list[str], key: str | None = None) -> int:
        spool_id = put(self._engine, raw, mail_from, rcpts, self._source, key)
        if self._on_stored is not None:
            self._on_stored()
        return spool_id


Item = tuple[bytes, str, list[str], str] | tuple[bytes, str, list[str], str, str | None]
"""(raw, mail_from, rcpts, source[, client address])"""


def put_many(
    engine: sa.Engine,
    items: Sequence[Item],
    keys: Sequence[str | None] | None = None,
) -> list[int]:
    """Store several messages in one transaction (group commit: one fsync for all)."""
    for item in items:
        if (reason := unstorable(item[1], item[2])) is not None:
            raise Unstorable(reason)
    if not items:
        return []
    now = utcnow()
    rows = [
        {
            "received_at": now,
            "source": item[3],
            "mail_from": item[1],
            "rcpts": json.dumps(item[2]),
            "raw": item[0],
            "state": SpoolState.NEW,
            "dedupe_key": key,
            "client_address": item[4] if len(item) > 4 else None,
        }
        for item, key in zip(items, keys or [None] * len(items), strict=True)
    ]
    with engine.begin() as conn:
        # one statement for the group (SQLAlchemy's "insertmanyvalues": INSERT ... VALUES
        # (...), (...) RETURNING id), not one per message; the ids come back in the order
        # of the rows, which the sessions' futures rely on
        result = conn.execute(_INSERT, rows)
        return [int(i) for i in result.scalars().all()]


_INSERT = inbound.insert().returning(inbound.c.id, sort_by_parameter_order=True)


def _row(r: sa.Row[tuple[object, ...]]) -> Spooled:
    m = r._mapping
    return Spooled(
        id=m["id"],
        received_at=m["received_at"],
        source=Intake(m["source"]),
        mail_from=m["mail_from"],
        rcpts=json.loads(m["rcpts"]),
        raw=bytes(m["raw"]),
        attempts=m["attempts"],
        client_address=m["client_address"],
    )


def fetch_new(engine: sa.Engine, limit: int) -> list[Spooled]:
    """The oldest unprocessed messages."""
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(inbound)
            .where(inbound.c.state == SpoolState.NEW)
            .order_by(inbound.c.id)
            .limit(limit)
        ).all()
    return [_row(r) for r in rows]


_TAKE = (
    inbound.update()
    .where(inbound.c.id == sa.bindparam("b_id"), inbound.c.state == SpoolState.NEW)
    .values(
        state=sa.bindparam("b_state"),
        outcome=sa.bindparam("b_outcome"),
        done_at=sa.bindparam("b_at", type_=UTCDateTime()),
    )
)


def take(conn: sa.Connection, spool_id: int, state: SpoolState, outcome: str) -> bool:
    """Mark a new message processed inside the caller's transaction.

    False when another worker (or an earlier run) already took it: the caller then rolls
    back its effects, which makes processing idempotent per spool row.
    """
    params = {"b_id": spool_id, "b_state": state, "b_outcome": outcome[:2000], "b_at": utcnow()}
    result = conn.execute(_TAKE, params)
    return result.rowcount == 1


def take_many(conn: sa.Connection, taken: Sequence[tuple[int, str, str]]) -> bool:
    """`take` for a batch in one statement; False unless every row was still new."""
    if not taken:
        return True
    now = utcnow()
    params = [
        {"b_id": i, "b_state": state, "b_outcome": outcome[:2000], "b_at": now}
        for i, state, outcome in taken
    ]
    return conn.execute(_TAKE, params).rowcount == len(taken)


def record_failure(engine: sa.Engine, spool_id: int, error: str) -> SpoolState:
    """Count a failed attempt; after MAX_ATTEMPTS the message is shunted, evidence kept."""
    with engine.begin() as conn:
        conn.execute(
            inbound.update()
            .where(inbound.c.id == spool_id, inbound.c.state == SpoolState.NEW)
            .values(attempts=inbound.c.attempts + 1, outcome=f"error: {error}"[:2000])
        )
        conn.execute(
            inbound.update()
            .where(
                inbound.c.id == spool_id,
                inbound.c.state == SpoolState.NEW,
                inbound.c.attempts >= MAX_ATTEMPTS,
            )
            .values(state=SpoolState.FAILED, done_at=utcnow())
        )
        state = conn.execute(
            sa.select(inbound.c.state).where(inbound.c.id == spool_id)
        ).scalar_one()
    return SpoolState(state)


def counts(engine: sa.Engine) -> dict[str, int]:
    with reading(engine) as conn:
        rows = conn.execute(
            sa.select(inbound.c.state, sa.func.count()).group_by(inbound.c.state)
        ).all()
    return {str(s): int(n) for s, n in rows}
