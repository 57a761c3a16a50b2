"""`haishin status` and the Prometheus metrics read the same snapshot of the store."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from haishin.clock import utcnow
from haishin.operations.metrics import Metrics
from haishin.operations.status import snapshot
from haishin.store import confirmations, posts, queue, subscribers
from haishin.store.engine import open_store
from haishin.store.posts import PostState
from haishin.store.schema import outbound
from support import helpers, smarthost
from support.posting import approved_post


def _fill(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for i in range(4):
            subscribers.activate(conn, "gomi-recycle", f"a{i}@example.jp", method="t", evidence="t")
        subscribers.ensure_pending(conn, "kenshin-info", "p@example.jp")
        for i in range(2):
            pending = confirmations.create(
                conn,
                "kenshin-info",
                f"c{i}@example.jp",
                confirmations.Action.SUBSCRIBE,
                dt.timedelta(hours=72),
                "t",
            )
        confirmations.use(conn, pending.id)
        queue.enqueue(conn, b"x", "", [f"r{i}@example.jp" for i in range(5)], kind="reply")
        now = utcnow()
        conn.execute(outbound.update().where(outbound.c.id <= 3).values(state="sent", done_at=now))
        conn.execute(outbound.update().where(outbound.c.id == 4).values(attempts=2))


def test_snapshot_and_metrics(db_url: str) -> None:
    engine = open_store(db_url)
    _fill(engine)
    s = snapshot(engine)
    assert s.outbound == {"sent": 3, "queued": 2}
    assert s.deferred == 1 and s.sent_recent == 3
    assert s.subscribers == {("gomi-recycle", "active"): 4, ("kenshin-info", "pending"): 1}
    assert (s.confirmations_requested_24h, s.confirmations_used_24h) == (2, 1)

    metrics = Metrics(lambda: snapshot(engine))
    metrics.reloads.labels("ok").inc()
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    samples = {
        (x.name, tuple(sorted(x.labels.items()))): x.value
        for f in families.values()
        for x in f.samples
    }
    assert samples[("haishin_outbound_messages", (("state", "queued"),))] == 2
    assert samples[("haishin_outbound_deferred", ())] == 1
    assert s.pending_by_kind == {"reply": 2} and s.pending_by_post == {}
    assert samples[("haishin_outbound_pending", (("kind", "reply"),))] == 2
    assert samples[("haishin_delivery_rate", ())] == 3 / 300
    assert samples[("haishin_confirmation_rate", ())] == 0.5
    assert (
        samples[("haishin_subscribers", (("channel", "gomi-recycle"), ("status", "active")))] == 4
    )
    assert samples[("haishin_registry_reloads_total", (("result", "ok"),))] == 1
    text = metrics.render().decode()
    assert "@example.jp" not in text  # counts only, never an address
    engine.dispose()


def test_status_cli(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    _fill(engine)
    engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "haishin", "status", "--db", sqlite_url],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "送信: queued 2, sent 3" in done.stdout
    assert "再送待ち 1 件" in done.stdout
    assert "  gomi-recycle: active 4" in done.stdout
    assert "@example.jp" not in done.stdout


def test_json_logs(tmp_path: Path, sqlite_url: str) -> None:
    """--log-format json: one JSON object per line, addresses only as keyed hashes."""
    with smarthost.sink() as sink:
        d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, extra=["--log-format", "json"])
        try:
            with smtplib.SMTP(*d.smtp) as client:
                client.sendmail(
                    "logged@example.jp",
                    ["gomi-recycle-subscribe@mail.city.kawasaki.example.jp"],
                    b"From: logged@example.jp\r\n\r\n",
                )
            sink.wait(1)
        finally:
            assert d.stop() == 0
    lines = [ln for p in tmp_path.glob("daemon-*.log") for ln in p.read_text().splitlines()]
    records = [json.loads(ln) for ln in lines]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["message"] == "stopped" for r in records)
    assert "logged@example.jp" not in "\n".join(lines)


def test_a_posts_pending_rows_are_named_by_the_post_id(db_url: str) -> None:
    """One id per post (issue 16 item 3): /metrics names a post's rows by the id `held`,
    `status --message` and the logs use, not by its stored body's."""
    engine = open_store(db_url)
    with engine.begin() as conn:
        queue.enqueue(conn, b"x", "", ["r@example.jp"], kind="reply")  # ids apart
        made = approved_post(conn, dt.timedelta(days=3), subject="お知らせ")
        message = queue.enqueue(conn, b"y", "", ["p1@example.jp", "p2@example.jp"], kind="post")
        assert posts.transition(
            conn, made.id, (PostState.APPROVED,), state=PostState.SENDING, outbound_message=message
        )
    assert message != made.id
    s = snapshot(engine)
    assert s.pending_by_post == {made.id: 2}
    assert s.pending_by_kind == {"post": 2, "reply": 1}
    text = Metrics(lambda: snapshot(engine)).render().decode()
    assert f'haishin_post_pending{{post="{made.id}"}} 2.0' in text
    engine.dispose()
