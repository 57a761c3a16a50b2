"""The subscription history (store/history.py) written by every change of state in
store/subscribers.py, on SQLite and PostgreSQL: each start and end once, with its cause."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from haishin.store import open_store, subscribers
from haishin.store.schema import subscribers as subscribers_table
from haishin.store.schema import subscription_events

CH = "gomi-recycle"


def _history(engine: sa.Engine) -> list[tuple[int | None, str, str | None]]:
    e = subscription_events.c
    with engine.connect() as conn:
        return [
            (r[0], str(r[1]), r[2])
            for r in conn.execute(sa.select(e.subscriber_id, e.change, e.cause).order_by(e.id))
        ]


def test_each_start_and_end_once_with_its_cause(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.begin() as conn:
        pending = subscribers.ensure_pending(conn, CH, "p@example.jp")
        a = subscribers.activate(conn, CH, "a@example.jp", method="mail-reply", evidence="t").id
        # confirming again while active is no new registration
        subscribers.activate(conn, CH, "A@example.jp", method="web-button", evidence="t")
        b = subscribers.activate(conn, CH, "b@example.jp", method="mail-reply", evidence="t").id
        c = subscribers.activate(conn, CH, "c@example.jp", method="mail-reply", evidence="t").id
        d = subscribers.activate(conn, CH, "d@example.jp", method="mail-reply", evidence="t").id
        e = subscribers.activate(conn, CH, "e@example.jp", method="mail-reply", evidence="t").id
    with engine.begin() as conn:
        assert subscribers.unsubscribe(conn, a, method="one-click")
        assert not subscribers.unsubscribe(conn, a, method="one-click")  # once
        assert subscribers.disable(conn, b, method="bounce")
        assert subscribers.disable(conn, c, method="bounce-filtered")
        assert subscribers.unsubscribe(conn, d, method="complaint")
        assert subscribers.remove(conn, CH, "E@example.jp")
        assert not subscribers.remove(conn, CH, "e@example.jp")  # once
        # removing one that had left, or never joined, ends no subscription
        assert subscribers.remove(conn, CH, "a@example.jp")
        assert subscribers.remove(conn, CH, "p@example.jp")
    with engine.begin() as conn:
        # back again: a new registration
        subscribers.activate(conn, CH, "a@example.jp", method="mail-reply", evidence="t")
    assert _history(engine) == [
        (a, "joined", None),
        (b, "joined", None),
        (c, "joined", None),
        (d, "joined", None),
        (e, "joined", None),
        (a, "left", "citizen"),
        (b, "left", "bounce"),
        (c, "left", "bounce"),
        (d, "left", "complaint"),
        (e, "left", "staff"),
        (a, "joined", None),
    ]
    assert pending.id not in {s for s, _, _ in _history(engine)}
    engine.dispose()


def test_the_migration_fills_the_history_from_the_subscribers_state(db_url: str) -> None:
    """A store made before migration 0013 keeps each subscription's last start and end."""
    from alembic import command

    from haishin.store.engine import alembic_config, create_engine

    engine = create_engine(db_url)
    command.upgrade(alembic_config(engine), "0010")
    t = dt.datetime(2026, 10, 1, 3, 0, tzinfo=dt.UTC)
    rows = [
        # (address, status, confirmed, unsubscribed, method)
        ("a@example.jp", "active", t, None, None),
        ("b@example.jp", "unsubscribed", t, t + dt.timedelta(days=3), "one-click"),
        ("c@example.jp", "disabled", t, None, "bounce-filtered"),
        ("d@example.jp", "unsubscribed", t, t + dt.timedelta(days=4), "complaint"),
        ("e@example.jp", "pending", None, None, None),
    ]
    with engine.begin() as conn:
        for address, status, confirmed, unsubscribed, method in rows:
            conn.execute(
                subscribers_table.insert().values(
                    channel=CH,
                    address=address,
                    address_key=address,
                    status=status,
                    created_at=t,
                    updated_at=t + dt.timedelta(days=5),
                    confirmed_at=confirmed,
                    unsubscribed_at=unsubscribed,
                    unsubscribe_method=method,
                )
            )
    engine.dispose()
    engine = open_store(db_url)
    e = subscription_events.c
    with engine.connect() as conn:
        found = sorted(
            (str(r[0]), str(r[1]), r[2], r[3])
            for r in conn.execute(
                sa.select(subscribers_table.c.address, e.change, e.cause, e.at).join(
                    subscribers_table, subscribers_table.c.id == e.subscriber_id
                )
            )
        )
    assert found == [
        ("a@example.jp", "joined", None, t),
        ("b@example.jp", "joined", None, t),
        ("b@example.jp", "left", "citizen", t + dt.timedelta(days=3)),
        ("c@example.jp", "joined", None, t),
        ("c@example.jp", "left", "bounce", t + dt.timedelta(days=5)),
        ("d@example.jp", "joined", None, t),
        ("d@example.jp", "left", "complaint", t + dt.timedelta(days=4)),
    ]
    engine.dispose()
