"""A pooled PostgreSQL connection is tried on checkout once it has rested (store.engine
`_ping_when_idle`): a server that dropped it meanwhile costs a new connection, not an
error; one checked in a moment ago goes back to work without a round trip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from haishin.store import engine as store_engine
from support.helpers import PG_ADMIN, pg_available, pg_database


def _pid(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        for _ in range(100):  # gone from the server, not only signalled
            gone = c.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one()
            if not gone:
                break
            time.sleep(0.05)
    admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with pg_database() as url:
        yield url


def test_a_rested_connection_that_the_server_dropped_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_engine, "PING_AFTER_IDLE", 0.2)
    engine = store_engine.create_engine(pg_url, pool_size=1)
    with engine.connect() as conn:
        first = _pid(conn)
    _terminate(first)
    time.sleep(0.3)
    with engine.connect() as conn:  # tried on checkout, and replaced
        assert _pid(conn) != first
    engine.dispose()


def test_a_connection_back_a_moment_ago_is_not_tried(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the round trip: a server that dropped it within the second fails the next
    statement (the callers' 451 or retried batch), and the pool then opens a new one."""
    monkeypatch.setattr(store_engine, "PING_AFTER_IDLE", 60.0)
    engine = store_engine.create_engine(pg_url, pool_size=1)
    with engine.connect() as conn:
        first = _pid(conn)
    _terminate(first)
    with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
        _pid(conn)
    with engine.connect() as conn:
        assert _pid(conn) != first
    engine.dispose()
