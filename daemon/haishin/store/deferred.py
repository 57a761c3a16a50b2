"""Inserts held back to the end of a worker batch: one statement per table for the batch,
not one round trip per request (issue 16 item 6).

On PostgreSQL every statement is a round trip; a subscribe request made five (find the
address, its pending row, the confirmation, the answer's body and its queue row), which
held the worker at about 300 requests/s whatever the CPU (bench/inbound_subscribe.py).
Inside `batched(conn)` the inserts whose results the request does not read go into a
buffer, and leave as one executemany per table when the block ends, in the same
transaction as the rest of the batch: they commit with its "done" or not at all. Outside
`batched` (the web pages, the CLI, the row-by-row retry of a failed batch) each insert
runs at once, as before.

Nothing in the transaction may miss a held insert: before any other statement that names
a table with held rows (or that cannot be read, as plain SQL), the buffer is written out
first. A statement that looks at the held rows itself says so with `LOOKED`
(`subscribers.find`). Ids that are needed before the row is written (a confirmation's
token is made from its id; an answer's queue row names its body) are reserved: from the
table's sequence on PostgreSQL, a block per round trip; on SQLite past the largest id,
which no one else can take while the transaction holds the write lock (read again after
any other insert into the table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.util import find_tables

from ..clock import utcnow
from . import queue
from .schema import auto_replies, confirmations, outbound, outbound_messages, subscribers
from .states import MessageKind

_KEY = "haishin_deferred"
LOOKED = {"haishin_looked_at_deferred": True}
"""Execution options of a statement whose caller took the held rows into account."""
RESERVE = 128
"""Ids taken from a PostgreSQL sequence per round trip (a worker batch there is up to 128
messages, router.worker; unused ones are gaps, as after a rollback)."""

_ORDER = (subscribers, confirmations, auto_replies, outbound_messages, outbound)
"""The order the held rows are written in (a queue row names its body)."""


@dataclasses.dataclass
class _Held:
    rows: dict[sa.Table, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    subscriber_keys: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    """(channel, address_key) of the held subscriber rows."""
    ids: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    """By table: ids reserved and not yet handed out (the next one last)."""
    read_ahead: dict[str, dict[Any, Any]] = dataclasses.field(default_factory=dict)
    """Rows read for the whole batch at its start, by table name (`ahead`); dropped when a
    statement writes to that table in this transaction."""
    writing: bool = False

    def tables(self) -> set[str]:
        return {t.name for t, rows in self.rows.items() if rows}


def _held(conn: sa.Connection) -> _Held | None:
    held = conn.info.get(_KEY)
    return held if isinstance(held, _Held) else None


@contextlib.contextmanager
def batched(conn: sa.Connection) -> Iterator[None]:
    """Hold this transaction's inserts until the block ends, then write them; on an
    exception they are dropped with the transaction that rolls back."""
    if _held(conn) is not None:
        yield  # already batching: the outer block writes
        return
    conn.info[_KEY] = _Held()
    sa.event.listen(conn, "before_execute", _before_execute)
    try:
        yield
        flush(conn)
    finally:
        sa.event.remove(conn, "before_execute", _before_execute)
        conn.info.pop(_KEY, None)


def _before_execute(
    conn: sa.Connection, statement: Any, multiparams: Any, params: Any, options: Any
) -> None:
    held = _held(conn)
    if held is None:
        return
    if isinstance(statement, sa.sql.dml.UpdateBase) and isinstance(statement.table, sa.Table):
        held.read_ahead.pop(statement.table.name, None)
        if not held.writing and conn.dialect.name == "sqlite":
            held.ids.pop(statement.table.name, None)  # it may take the next id: read again
    elif not isinstance(statement, sa.sql.Select):
        held.read_ahead.clear()  # plain SQL (or a write we cannot read) may change anything
        if conn.dialect.name == "sqlite":
            held.ids.clear()
    if held.writing or options.get("haishin_looked_at_deferred"):
        return
    names = held.tables()
    if not names:
        return
    if isinstance(statement, sa.sql.ClauseElement):
        touched = find_tables(
            statement, include_aliases=True, include_joins=True, include_crud=True
        )
        if not {t.name for t in touched if isinstance(t, sa.Table)} & names:
            return
    flush(conn)  # a statement that names a held table, or plain SQL: write first


def flush(conn: sa.Connection) -> None:
    """Write the held inserts now (one statement per table)."""
    held = _held(conn)
    if held is None or held.writing:
        return
    held.writing = True
    try:
        for table in _ORDER:
            rows = held.rows.pop(table, None)
            if rows:
                conn.execute(table.insert(), rows)  # (drops what was read ahead of it)
        held.subscriber_keys.clear()
    finally:
        held.writing = False


def insert(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> None:
    """Insert `row` now, or at the end of the batch when batching."""
    held = _held(conn)
    if held is None:
        conn.execute(table.insert(), row)
        return
    assert table in _ORDER, table.name
    held.rows.setdefault(table, []).append(row)
    if table is subscribers:
        held.subscriber_keys.add((row["channel"], row["address_key"]))


def ahead(conn: sa.Connection, table: sa.Table) -> dict[Any, Any] | None:
    """The batch's rows of `table` read ahead, to fill or to read; None outside a batch.
    Whoever reads them answers for what they cover; any write to the table empties them,
    since it may change what was read."""
    held = _held(conn)
    if held is None:
        return None
    return held.read_ahead.setdefault(table.name, {})


def holds_subscriber(conn: sa.Connection, channel: str, key: str) -> bool:
    held = _held(conn)
    return held is not None and (channel, key) in held.subscriber_keys


def enqueue(
    conn: sa.Connection, raw: bytes, mail_from: str, rcpts: Sequence[str], *, kind: MessageKind
) -> None:
    """Queue a message for its recipients (store.queue.enqueue, without its id), now or at
    the end of the batch."""
    message_id = reserve(conn, outbound_messages)
    if message_id is None:
        queue.enqueue(conn, raw, mail_from, rcpts, kind=kind)
        return
    now = utcnow()
    insert(conn, outbound_messages, {"id": message_id, "created_at": now, "kind": kind, "raw": raw})
    for rcpt in rcpts:
        insert(conn, outbound, queue.row(message_id, mail_from, rcpt, None, now, now))


def reserve(conn: sa.Connection, table: sa.Table) -> int | None:
    """An id for a new row of `table` when batching (its insert is held), else None (the
    insert runs now and the database picks it)."""
    held = _held(conn)
    if held is None:
        return None
    ids = held.ids.get(table.name)
    if not ids:
        if conn.dialect.name == "postgresql":
            found = conn.execute(_nextval(table), {"n": RESERVE}, execution_options=LOOKED)
            ids = sorted((int(i) for i in found.scalars()), reverse=True)
        else:
            # the write lock is held (BEGIN IMMEDIATE, engine.py) until this transaction
            # ends; the held rows count too, so the read need not write them out first
            top = conn.execute(_max_id(table), execution_options=LOOKED).scalar_one()
            top = max([int(top), *(int(r["id"]) for r in held.rows.get(table, ()))])
            ids = [top + 1]
        held.ids[table.name] = ids
    found_id = ids.pop()
    if conn.dialect.name == "sqlite":
        ids.append(found_id + 1)  # the next after it, while no one else inserts
    return found_id


@functools.cache
def _nextval(table: sa.Table) -> sa.Select[int]:
    sequence = sa.func.pg_get_serial_sequence(table.name, table.c.id.name)
    return sa.select(sa.func.nextval(sequence)).select_from(
        sa.func.generate_series(1, sa.bindparam("n"))
    )


@functools.cache
def _max_id(table: sa.Table) -> sa.Select[int]:
    return sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))
