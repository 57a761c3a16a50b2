"""The rows behind the shared limits (store/leases.py), on PostgreSQL: grants of a
bucket's send times never overlap whoever asks, and a domain's connection slots are
never held twice, a fair share each, and free again once a lease runs out."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.store import leases, open_store
from haishin.store.schema import lane_leases, senders
from support import helpers

pytestmark = pytest.mark.skipif(
    not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing"
)


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    with helpers.pg_database() as url:
        e = open_store(url)
        yield e
        e.dispose()


def _due(engine: sa.Engine) -> dt.datetime:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.column("due_at")).select_from(sa.table("rate_grants"))
        ).scalar_one()


def test_grants_follow_one_another_whoever_asks(engine: sa.Engine) -> None:
    assert leases.grant(engine, "*", 0.05) == 0.0  # idle: the first starts now
    first = _due(engine)
    starts: list[float] = []
    lock = threading.Lock()

    def daemon() -> None:  # each thread its own connection, as daemons are
        for _ in range(25):
            start = leases.grant(engine, "*", 0.05)
            with lock:
                starts.append(start)

    threads = [threading.Thread(target=daemon) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # four askers took 100 grants: the bucket is booked exactly 100 spans further, so
    # its rate holds for all of them together (none reset it, none overlapped)
    assert (_due(engine) - first).total_seconds() == pytest.approx(100 * 0.05, abs=1e-3)
    assert len(set(starts)) == len(starts)  # no two grants begin at one time
    assert all(s > 0 for s in starts)  # each waits for the grants before it


def test_an_idle_bucket_saves_nothing_up(engine: sa.Engine) -> None:
    assert leases.grant(engine, "docomo.ne.jp", 0.01) == 0.0
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE rate_grants SET due_at = now() - interval '1 hour'"))
    # an hour idle is not an hour of sends at once: the next grant starts now
    assert leases.grant(engine, "docomo.ne.jp", 1.0) == 0.0
    assert leases.grant(engine, "docomo.ne.jp", 1.0) == pytest.approx(1.0, abs=0.2)


def _alive(engine: sa.Engine, *ids: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        for i in ids:
            conn.execute(senders.insert().values(id=i, started_at=now, heartbeat_at=now))


def test_slots_are_held_once_a_fair_share_each(engine: sa.Engine) -> None:
    _alive(engine, "a", "b")
    # two slots, two live daemons: one each, whoever asks first
    assert leases.acquire(engine, "docomo.ne.jp", 2, "a") == 0
    assert leases.acquire(engine, "docomo.ne.jp", 2, "a") is None  # its share
    assert leases.acquire(engine, "docomo.ne.jp", 2, "b") == 1
    assert leases.acquire(engine, "docomo.ne.jp", 2, "b") is None  # all held
    assert leases.held(engine) == {"a": ["docomo.ne.jp"], "b": ["docomo.ne.jp"]}
    leases.release(engine, "docomo.ne.jp", 1, "a")  # not a's: nothing happens
    assert leases.acquire(engine, "docomo.ne.jp", 2, "a") is None
    leases.release(engine, "docomo.ne.jp", 0, "a")
    assert leases.acquire(engine, "docomo.ne.jp", 2, "b") is None  # b has its share
    assert leases.acquire(engine, "docomo.ne.jp", 2, "a") == 0
    # other domains are counted apart
    assert leases.acquire(engine, "ezweb.ne.jp", 2, "a") == 0


def test_a_dead_daemons_slots_are_free_after_the_lease(engine: sa.Engine) -> None:
    _alive(engine, "b")  # "a" was killed: no heartbeat any more, leases left behind
    with engine.begin() as conn:
        expired = utcnow() - dt.timedelta(seconds=1)
        for slot in (0, 1):
            conn.execute(
                lane_leases.insert().values(
                    key="docomo.ne.jp", slot=slot, holder="a", expires_at=expired
                )
            )
    assert leases.held(engine) == {}
    assert leases.acquire(engine, "docomo.ne.jp", 2, "b") == 0
    assert leases.acquire(engine, "docomo.ne.jp", 2, "b") == 1  # alone: both its share
    leases.renew(engine, "b")
    with engine.connect() as conn:
        left = conn.execute(
            sa.text("SELECT min(expires_at - now()) FROM lane_leases WHERE holder = 'b'")
        ).scalar_one()
    assert left > leases.LEASE - dt.timedelta(seconds=2)
