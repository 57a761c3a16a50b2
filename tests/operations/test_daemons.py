"""Each daemon's liveness for `haishin status` and /metrics (issue 16 item 3), on SQLite
and PostgreSQL: a live sender and one silent beyond the lease, with their claimed rows
and, on PostgreSQL, the connection slots they lease."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from haishin.clock import utcnow
from haishin.operations.daemons import daemons, describe_daemons
from haishin.operations.metrics import Metrics
from haishin.operations.status import snapshot
from haishin.store import heartbeats, leases, queue
from haishin.store.engine import open_store
from haishin.store.schema import outbound, senders

DEAD = "deadbeef0000"


def _two_senders(engine: sa.Engine) -> None:
    """This process as a live sender at 12.5 msgs/s, and a dead one: each claimed rows."""
    heartbeats.heartbeat(engine, 12.5)
    with engine.begin() as conn:
        long_ago = utcnow() - heartbeats.DEAD_AFTER - dt.timedelta(seconds=1)
        conn.execute(
            senders.insert().values(
                id=DEAD, started_at=long_ago, heartbeat_at=long_ago, host="h2[42]", rate=30.0
            )
        )
        queue.enqueue(conn, b"x", "", [f"r{i}@example.jp" for i in range(5)], kind="post")
        conn.execute(
            outbound.update()
            .where(outbound.c.id <= 3)
            .values(state="sending", claimed_by=queue.WORKER_ID)
        )
        conn.execute(
            outbound.update().where(outbound.c.id == 4).values(state="sending", claimed_by=DEAD)
        )


def test_status_shows_each_daemon_alive_or_gone(db_url: str) -> None:
    engine = open_store(db_url)
    _two_senders(engine)
    pg = engine.dialect.name == "postgresql"
    if pg:
        assert leases.acquire(engine, "docomo.ne.jp", 2, queue.WORKER_ID) == 0
    states = daemons(engine)
    live, dead = states
    assert (live.id, live.alive, live.claimed, live.rate, live.host) == (
        queue.WORKER_ID,
        True,
        3,
        12.5,
        heartbeats.HOST,
    )
    assert (dead.id, dead.alive, dead.claimed) == (DEAD, False, 1)
    assert live.lanes == (("docomo.ne.jp",) if pg else ())

    text = describe_daemons(states)
    lines = text.splitlines()
    assert lines[0] == "デーモン: 稼働 1、停止 1、合計 12.5 通/秒（直近 10 秒）"
    assert heartbeats.HOST in lines[1] and "稼働中" in lines[1] and "送信中 3 件" in lines[1]
    assert "12.5 通/秒（直近 10 秒）" in lines[1]
    assert ("docomo.ne.jp×1" if pg else "接続枠 なし") in lines[1]
    assert "h2[42]" in lines[2] and "停止" in lines[2] and "取り戻し待ち 1 件" in lines[2]

    metrics = Metrics(lambda: snapshot(engine), daemons=lambda: daemons(engine))
    samples = {
        (x.name, x.labels.get("daemon"), x.labels.get("domain")): x.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for x in f.samples
    }
    assert samples[("haishin_daemon_up", queue.WORKER_ID, None)] == 1
    assert samples[("haishin_daemon_up", DEAD, None)] == 0
    assert samples[("haishin_daemon_claimed_rows", DEAD, None)] == 1
    assert samples[("haishin_daemon_rate", queue.WORKER_ID, None)] == 12.5
    assert samples[("haishin_daemon_rate", DEAD, None)] == 0  # gone: it sends nothing
    if pg:
        key = ("haishin_daemon_lane_connections", queue.WORKER_ID, "docomo.ne.jp")
        assert samples[key] == 1
    engine.dispose()


def test_no_sender_yet(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    assert describe_daemons(daemons(engine)) == "デーモン: 送信中のものはありません"
    engine.dispose()
