"""store.deferred on SQLite and PostgreSQL: held inserts are never missed by a later
statement of their transaction, are dropped with it, and their reserved ids never
collide with rows the database numbers itself."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from haishin.store import confirmations, deferred, open_store, queue, subscribers
from haishin.store.confirmations import Action
from haishin.store.schema import outbound, outbound_messages
from haishin.store.states import MessageKind
from haishin.store.subscribers import Status

TTL = dt.timedelta(hours=1)


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_later_statement_sees_the_held_rows(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.begin() as conn, deferred.batched(conn):
        pending = confirmations.create(
            conn, "gomi-recycle", "a@example.jp", Action.SUBSCRIBE, TTL, "t"
        )
        deferred.enqueue(conn, b"body", "b@x", ["a@example.jp"], kind=MessageKind.CONFIRM)
        subscribers.hold_pending(conn, "gomi-recycle", "a@example.jp")
        # each read names a held table: the rows are written first, in this transaction
        assert confirmations.waiting(conn, "gomi-recycle", "A@example.jp", Action.SUBSCRIBE)
        assert confirmations.get(conn, pending.id) is not None
        assert _count(conn, outbound) == 1
        found = subscribers.find(conn, "gomi-recycle", "a@example.jp")
        assert found is not None and found.status is Status.PENDING
    with engine.connect() as conn:
        (row,) = conn.execute(sa.select(outbound.c.message_id, outbound.c.rcpt)).all()
        assert conn.execute(sa.select(outbound_messages.c.id)).scalar_one() == row.message_id
    engine.dispose()


def test_held_rows_leave_with_a_failed_transaction(db_url: str) -> None:
    engine = open_store(db_url)
    with pytest.raises(RuntimeError), engine.begin() as conn, deferred.batched(conn):
        confirmations.create(conn, "gomi-recycle", "a@example.jp", Action.SUBSCRIBE, TTL, "t")
        deferred.enqueue(conn, b"body", "b@x", ["a@example.jp"], kind=MessageKind.CONFIRM)
        raise RuntimeError("the batch failed")
    with engine.begin() as conn:  # not batching any more: written at once
        assert deferred.reserve(conn, outbound_messages) is None
        confirmations.create(conn, "gomi-recycle", "b@example.jp", Action.SUBSCRIBE, TTL, "t")
        assert _count(conn, outbound_messages) == 0
    with engine.connect() as conn:
        assert _count(conn, confirmations.confirmations) == 1
    engine.dispose()


def test_reserved_ids_never_meet_the_databases_own(db_url: str) -> None:
    """An insert that runs at once (queue.enqueue: a forward in the same batch) between
    held ones, and transactions with and without batching: every id distinct, every
    queue row with its own body."""
    engine = open_store(db_url)
    for n in range(3):
        with engine.begin() as conn, deferred.batched(conn):
            deferred.enqueue(conn, b"held 1", "f", [f"a{n}@x"], kind=MessageKind.REPLY)
            queue.enqueue(conn, b"at once", "f", [f"b{n}@x"], kind=MessageKind.FORWARD)
            deferred.enqueue(conn, b"held 2", "f", [f"c{n}@x"], kind=MessageKind.REPLY)
        with engine.begin() as conn:
            deferred.enqueue(conn, b"alone", "f", [f"d{n}@x"], kind=MessageKind.REPLY)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbound.c.rcpt, outbound_messages.c.raw).join(
                outbound_messages, outbound_messages.c.id == outbound.c.message_id
            )
        ).all()
    expected = {"a": b"held 1", "b": b"at once", "c": b"held 2", "d": b"alone"}
    assert sorted((r.rcpt, bytes(r.raw)) for r in rows) == sorted(
        (f"{k}{n}@x", v) for n in range(3) for k, v in expected.items()
    )
    engine.dispose()


def test_rows_read_ahead_are_dropped_by_a_write(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.begin() as conn, deferred.batched(conn):
        subscribers.add_pending(conn, "kosodate-news", "a@example.jp")
        subscribers.read_ahead(conn, ["gomi-recycle"], ["a@example.jp"])
        assert subscribers.find(conn, "gomi-recycle", "a@example.jp") is None
        # a channel not read ahead is read from the table
        assert subscribers.find(conn, "kosodate-news", "a@example.jp") is not None
        subscribers.add_pending(conn, "gomi-recycle", "A@example.jp")  # written at once
        found = subscribers.find(conn, "gomi-recycle", "a@example.jp")
        assert found is not None and found.address == "A@example.jp"
        subscribers.read_ahead(conn, ["gomi-recycle"], ["a@example.jp"])
        subscribers.activate(conn, "gomi-recycle", "a@example.jp", method="t", evidence="t")
        found = subscribers.find(conn, "gomi-recycle", "a@example.jp")
        assert found is not None and found.status is Status.ACTIVE
    engine.dispose()
