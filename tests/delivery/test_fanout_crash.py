"""Issue 8, crash safety and scale-out of the fan-out, with `haishin serve` processes.

1. SIGKILL the daemon three times during a 20,000-recipient delivery into a counting sink:
   afterwards every recipient got the post; the duplicates are at most what the README
   states per kill, `chains.repeat_bound`: connections × 2 chains × CHAIN, since a connection
   hands a chain over only once its previous chain is committed — whatever the claim batch
   (2,000 here). A SIGTERM lets the chains on the wire finish (measured: no repeat).
2. Two daemons on one PostgreSQL share a 20,000-recipient post: while both live no
   recipient gets it twice (FOR UPDATE SKIP LOCKED); one is SIGKILLed halfway, the other
   takes its claims over once its heartbeat stops, and every recipient gets the post.
3. Issue 11 item 8: an outage that starts mid-fan-out holds the rest until it ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.outbound.chains import CHAIN, UNRECORDED_CHAINS, repeat_bound
from haishin.registry import load_valid
from haishin.store import open_store, queue
from support import helpers
from support.smarthost import counting_sink

TOTAL = 20_000
BATCH = 2_000
"""Rows per claim: larger than the bound below, so that the test shows the bound does not
follow the claim batch."""
assert helpers.CONFIG.is_dir()
_SERVICE = load_valid(helpers.CONFIG).service
assert _SERVICE is not None
CONNECTIONS = _SERVICE.value.delivery.connections
BOUND = repeat_bound(CONNECTIONS)
"""What one SIGKILL may repeat, as the README states it: connections × 2 chains × CHAIN."""
assert BOUND == CONNECTIONS * UNRECORDED_CHAINS * CHAIN == 8 * 2 * 16 < BATCH


def _post(db_url: str) -> list[str]:
    rcpts = [f"user{i:06d}@example.net" for i in range(TOTAL)]
    engine = open_store(db_url)
    with engine.begin() as conn:
        queue.enqueue(
            conn,
            b"Subject: fan-out\r\n\r\nbody\r\n",
            f"gomi-recycle-bounces@{helpers.DOMAIN}",
            rcpts,
            kind="post",
            headers=[f"To: {r}\r\n".encode() for r in rcpts],
        )
    engine.dispose()
    return rcpts


def _serve(tmp: Path, db_url: str, port: int) -> helpers.Daemon:
    return helpers.start(tmp, db_url, smarthost=port, extra=["--send-batch", str(BATCH)])


def _settled(engine: sa.Engine) -> bool:
    return helpers.drained(engine)


@pytest.mark.slow
def test_sigkill_three_times_every_recipient_once_or_in_flight_repeats(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'fanout.db'}"
    rcpts = _post(db_url)
    kills = 0
    with counting_sink() as sink:
        d = _serve(tmp_path, db_url, sink.port)
        for at in (4_000, 9_000, 14_000):
            sink.wait_deliveries(at)
            d.kill()  # SIGKILL: no goodbye, no flush of results
            kills += 1
            d = _serve(tmp_path, db_url, sink.port)
        engine = sa.create_engine(db_url)
        helpers.wait_until(lambda: _settled(engine), 180, "the queue to drain")
        assert d.stop() == 0
        got = sink.per_rcpt()
    with engine.connect() as c:
        states = dict(
            c.execute(sa.text("SELECT state, count(*) FROM outbound GROUP BY state")).all()
        )
    engine.dispose()

    assert states == {"sent": TOTAL}
    assert set(got) == set(rcpts)  # everyone got it
    duplicates = sum(got.values()) - TOTAL
    print(f"\nfan-out crash test: {kills} SIGKILLs, {duplicates} duplicate(s)")
    assert duplicates <= kills * BOUND, f"{duplicates} > {kills} × {BOUND}"


@pytest.mark.slow
def test_sigterm_during_delivery_then_restart_completes(tmp_path: Path) -> None:
    """第8条 / issue 7: a graceful stop in the middle of a 20,000-recipient post exits
    promptly and cleanly; after the restart the post is complete."""
    import time

    db_url = f"sqlite:///{tmp_path / 'fanout.db'}"
    rcpts = _post(db_url)
    with counting_sink() as sink:
        d = _serve(tmp_path, db_url, sink.port)
        sink.wait_deliveries(6_000)
        t0 = time.monotonic()
        assert d.stop() == 0  # SIGTERM: stops taking work, records what was sent
        stopped_in = time.monotonic() - t0
        assert stopped_in < 15, f"took {stopped_in:.1f} s to stop"
        d = _serve(tmp_path, db_url, sink.port)
        engine = sa.create_engine(db_url)
        helpers.wait_until(lambda: _settled(engine), 180, "the queue to drain")
        assert d.stop() == 0
        got = sink.per_rcpt()
    with engine.connect() as c:
        states = dict(
            c.execute(sa.text("SELECT state, count(*) FROM outbound GROUP BY state")).all()
        )
    engine.dispose()
    assert states == {"sent": TOTAL}
    assert set(got) == set(rcpts)
    duplicates = sum(got.values()) - TOTAL
    print(f"\nfan-out SIGTERM test: stopped in {stopped_in:.2f} s, {duplicates} duplicate(s)")
    assert duplicates <= BOUND


@pytest.mark.slow
@pytest.mark.skipif(not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_two_daemons_share_one_post_and_take_over_a_killed_ones_rows(tmp_path: Path) -> None:
    with helpers.pg_database() as db_url, counting_sink() as sink:
        rcpts = _post(db_url)
        a = _serve(tmp_path, db_url, sink.port)
        b = _serve(tmp_path, db_url, sink.port)
        sink.wait_deliveries(TOTAL // 2)
        before_kill = sink.per_rcpt()
        a.kill()
        engine = sa.create_engine(db_url)
        helpers.wait_until(lambda: _settled(engine), 180, "the survivor to finish")
        with engine.connect() as c:
            states = dict(
                c.execute(sa.text("SELECT state, count(*) FROM outbound GROUP BY state")).all()
            )
            claimers = c.execute(sa.text("SELECT count(*) FROM senders")).scalar_one()
        engine.dispose()
        assert b.stop() == 0
        got = sink.per_rcpt()

    assert claimers >= 2  # both daemons took part
    # two live daemons never sent one recipient twice
    assert max(before_kill.values()) == 1
    assert states == {"sent": TOTAL}
    assert set(got) == set(rcpts)
    duplicates = sum(got.values()) - TOTAL
    print(f"\ntwo daemons on PostgreSQL: one SIGKILLed, {duplicates} duplicate(s)")
    assert duplicates <= BOUND  # only what the killed one had in flight


@pytest.mark.slow
def test_an_outage_that_starts_mid_fan_out_holds_the_rest_until_it_ends(
    tmp_path: Path,
) -> None:
    """Issue 11 item 8: a stop (第9条) that begins during a 20,000-recipient delivery sends
    the rows in memory back to the queue: after the chains on the wire, no post mail goes
    out while the 第9条 report still does; when the stop ends, the post completes, each
    recipient once."""
    import datetime as dt
    import shutil
    import signal

    config = tmp_path / "config"
    shutil.copytree(helpers.CONFIG, config)
    db_url = f"sqlite:///{tmp_path / 'fanout.db'}"
    rcpts = _post(db_url)
    engine = sa.create_engine(db_url)

    def log() -> str:
        return "".join(f.read_text() for f in tmp_path.glob("daemon-*.log"))

    def sending() -> int:
        with engine.connect() as c:
            return int(
                c.execute(
                    sa.text("SELECT count(*) FROM outbound WHERE state = 'sending'")
                ).scalar_one()
            )

    with counting_sink() as sink:
        d = helpers.start(
            tmp_path,
            db_url,
            smarthost=sink.port,
            config=config,
            extra=["--send-batch", "2000", "--outage-poll", "0.5"],
        )
        sink.wait_deliveries(4_000)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        outage = config / "outages" / "R9-03-cms.yaml"
        outage.write_text(
            "id: R9-03-cms\nkind: emergency\nstopped_by: cms_admin\nreason: テスト\n"
            f"start: {start.isoformat()}\n",
            "utf-8",
        )
        d.proc.send_signal(signal.SIGHUP)
        helpers.wait_until(lambda: "outage in force" in log(), what="the hold seen")
        helpers.wait_until(lambda: sending() == 0, what="the lanes given back")
        cloud_admin = "promo-cloud@city.kawasaki.example.jp"

        def posts() -> int:
            return sum(1 for x in sink.snapshot() if x.rcpt != cloud_admin)

        held_at = posts()
        assert held_at < TOTAL
        # the emergency report (第9条ただし書) is queued by the daemon itself after every
        # held row and still goes out: the sender has claimed since the hold began, and
        # took no post row
        helpers.wait_until(lambda: sink.per_rcpt()[cloud_admin] == 1, what="the report")
        assert posts() == held_at
        # the stop ends: the rest of the post goes out
        end = dt.datetime.now(dt.UTC)
        outage.write_text(outage.read_text("utf-8") + f"end: {end.isoformat()}\n", "utf-8")
        d.proc.send_signal(signal.SIGHUP)
        helpers.wait_until(lambda: _settled(engine), 180, "the queue to drain")
        assert d.stop() == 0
        got = sink.per_rcpt()
    engine.dispose()
    assert "Traceback" not in log()
    del got[cloud_admin]
    assert set(got) == set(rcpts)
    assert sum(got.values()) == TOTAL  # a hold repeats nothing
    print(f"\noutage mid-fan-out: held after {held_at} of {TOTAL}")
