"""Issue 16 item 1 and the liveness of item 3: limits hold for the service as a whole,
whatever the number of daemons on one PostgreSQL database (outbound/sharing.py).

One run, combined to keep CI short: two `haishin serve` on one database with
`messages_per_second: 25` and docomo limited to 60 a minute and 2 connections, measured
at the recording sink — 20 s with both; one SIGKILLed (and `haishin status` shows it
gone within the lease), 10 s alone; a third joins, 10 s; a SIGHUP reload (as `haishin
sync` does) that doubles the cap, 10 s at the new cap. The survivor's /metrics says the
same as the status.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from haishin.operations.daemons import daemons
from haishin.store import open_store, queue
from haishin.store.heartbeats import DEAD_AFTER, HEARTBEAT_EVERY
from support import helpers
from support.smarthost import Delivery, Sink, counting_sink

CAP = 25.0
CARRIER = "docomo.ne.jp"
PER_MINUTE = 60.0
CONNECTIONS = 2
TOLERANCE = 0.10  # the bar: within 10% of the limits


def _config(tmp: Path, cap: float) -> Path:
    config = tmp / "config"
    if not config.exists():
        shutil.copytree(helpers.CONFIG, config)
    yaml = YAML()
    yaml.preserve_quotes = True
    path = config / "service.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    data["delivery"]["messages_per_second"] = cap
    data["delivery"]["domains"][CARRIER]["messages_per_minute"] = PER_MINUTE
    data["delivery"]["domains"][CARRIER]["connections"] = CONNECTIONS
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)
    return config


def _post(db_url: str) -> None:
    # a backlog that outlasts the run at every rate: the limits, not the queue, set the pace
    rcpts = [f"k{i:05d}@{CARRIER}" if i % 10 == 0 else f"o{i:05d}@example.net" for i in range(5000)]
    engine = open_store(db_url)
    with engine.begin() as conn:
        queue.enqueue(
            conn, b"Subject: t\r\n\r\nbody\r\n", f"b@{helpers.DOMAIN}", rcpts, kind="post"
        )
    engine.dispose()


def _count(sink: Sink, start: float, end: float, which: Callable[[Delivery], bool]) -> int:
    return sum(1 for d in sink.snapshot() if start <= d.at < end and which(d))


def _carrier(d: Delivery) -> bool:
    return d.rcpt.endswith("@" + CARRIER)


def _any(d: Delivery) -> bool:
    return True


def _most_carrier_connections_at_once(sink: Sink) -> int:
    with sink.cond:
        carrier = {d.connection for d in sink.deliveries if _carrier(d)}
        spans = [sink.sessions[c] for c in carrier]
    events = sorted(
        [(opened, 1) for opened, _ in spans]
        + [(closed, -1) for _, closed in spans if closed is not None]
    )
    most = now = 0
    for _, step in events:  # a close before an open at the same instant
        now += step
        most = max(most, now)
    return most


def _within(got: int, rate: float, seconds: float, what: str) -> None:
    want = rate * seconds
    assert abs(got - want) <= TOLERANCE * want, f"{what}: {got} in {seconds:.0f} s, want {want}"


def _until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))  # the measuring windows: wall time


@pytest.mark.slow
@pytest.mark.skipif(not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_limits_hold_for_the_service_through_a_kill_a_join_and_a_reload(tmp_path: Path) -> None:
    config = _config(tmp_path, CAP)
    extra = ["--send-batch", "200"]
    with helpers.pg_database() as db_url, counting_sink() as sink:
        _post(db_url)
        a = helpers.start(tmp_path, db_url, smarthost=sink.port, config=config, extra=extra)
        b = helpers.start(tmp_path, db_url, smarthost=sink.port, config=config, extra=extra)
        c: helpers.Daemon | None = None
        engine = sa.create_engine(db_url)
        try:
            sink.wait_deliveries(1)
            t0 = time.monotonic() + 2.0  # both up to speed
            _until(t0 + 20)
            both = daemons(engine)
            b.kill()  # SIGKILL: no goodbye, its grants and leases are left behind
            killed = time.monotonic()
            gone_after = _gone_after(engine, b, killed)
            status = _status(db_url)
            up = _up(a)
            _until(t0 + 30)
            c = joined = helpers.start(
                tmp_path, db_url, smarthost=sink.port, config=config, extra=extra
            )
            _until(t0 + 40)
            _config(tmp_path, 2 * CAP)  # the merged pull request, then `haishin sync`
            for live in (a, joined):
                live.proc.send_signal(signal.SIGHUP)
            # measured from a second after both said so: reading the registry is theirs
            helpers.wait_until(lambda: _reloaded(a) and _reloaded(joined), 30, "the reloads")
            reloaded = time.monotonic() + 1.0
            _until(reloaded + 10)
            carrier_most = _most_carrier_connections_at_once(sink)
        finally:
            engine.dispose()
            for left in (a, c):
                if left is not None and left.proc.poll() is None:
                    assert left.stop() == 0
        for d in (a, b) + ((c,) if c else ()):
            log = Path(d.log.name).read_text(errors="replace")
            assert "Traceback" not in log and "ERROR" not in log, log[-3000:]

    counts = {
        "both": _count(sink, t0, t0 + 20, _any),
        "after the kill": _count(sink, t0 + 20, t0 + 30, _any),
        "three": _count(sink, t0 + 30, t0 + 40, _any),
        "reloaded": _count(sink, reloaded, reloaded + 10, _any),
        "carrier, both": _count(sink, t0, t0 + 20, _carrier),
        "carrier, kill and join": _count(sink, t0 + 20, t0 + 40, _carrier),
    }
    per_second = [_count(sink, t0 + i, t0 + i + 1, _any) for i in range(int(reloaded - t0) + 10)]
    print(f"\nshared limits: {counts}; status saw the kill after {gone_after:.1f} s")
    print(f"per second: {per_second}")
    _within(counts["both"], CAP, 20, "two daemons")
    _within(counts["after the kill"], CAP, 10, "after a SIGKILL")
    _within(counts["three"], CAP, 10, "a third joined")
    _within(counts["reloaded"], 2 * CAP, 10, "after the reload")
    _within(counts["carrier, both"], PER_MINUTE / 60, 20, "carrier, two daemons")
    _within(counts["carrier, kill and join"], PER_MINUTE / 60, 20, "carrier, kill and join")
    assert carrier_most <= CONNECTIONS

    # liveness (item 3): both alive and sending before the kill, the killed one gone
    # within the lease (a heartbeat's period late at most), the survivor alive
    assert len([d for d in both if d.alive]) == 2
    assert all(d.rate > 0 for d in both)
    assert gone_after <= (DEAD_AFTER + HEARTBEAT_EVERY).total_seconds() + 2.0
    line = next(ln for ln in status.splitlines() if f"[{b.proc.pid}]" in ln)
    assert "停止" in line
    alive = next(ln for ln in status.splitlines() if f"[{a.proc.pid}]" in ln)
    assert "稼働中" in alive and "通/秒" in alive
    assert up[f"[{a.proc.pid}]"] == 1 and up[f"[{b.proc.pid}]"] == 0  # the survivor's /metrics


def _up(d: helpers.Daemon) -> dict[str, float]:
    """haishin_daemon_up from the daemon's /metrics, by the pid in each daemon's host."""
    host, port = d.http
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return {
        x.labels["host"][x.labels["host"].rindex("[") :]: x.value
        for f in text_string_to_metric_families(text)
        for x in f.samples
        if x.name == "haishin_daemon_up"
    }


def _reloaded(d: helpers.Daemon) -> bool:
    return "registry reloaded" in helpers.daemon_log(d)


def _gone_after(engine: sa.Engine, killed: helpers.Daemon, since: float) -> float:
    """Seconds from the kill until the status shows the killed daemon gone."""

    def gone() -> bool:
        mine = [d for d in daemons(engine) if d.host.endswith(f"[{killed.proc.pid}]")]
        return bool(mine) and not mine[0].alive

    while not gone():  # a quarter-second poll: the daemons measured share the cores
        assert time.monotonic() - since < 30, "the killed daemon never shown as gone"
        time.sleep(0.25)
    return time.monotonic() - since


def _status(db_url: str) -> str:
    out = subprocess.run(
        [str(helpers.HAISHIN), "status", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert re.search(r"デーモン:", out)
    return out
