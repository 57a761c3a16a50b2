"""A reload applies changed limits at once, without a restart (issue 16 item 1: a cap
raised from 20 to 40 msgs/s still sent at 20). One daemon on SQLite, in process: its
limits stay in the process (no rate grant written), measured at the recording sink."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.outbound import sender
from haishin.outbound.sender import SendSettings
from haishin.registry.model import Delivery
from haishin.store import open_store, queue
from support.smarthost import counting_sink


@pytest.mark.slow
def test_a_reload_that_doubles_the_cap_applies_at_once(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.begin() as conn:
        rcpts = [f"o{i:04d}@example.net" for i in range(1000)]
        queue.enqueue(conn, b"Subject: t\r\n\r\nbody\r\n", "b@x.example", rcpts, kind="post")
    current = [Delivery(messages_per_second=20)]
    with counting_sink() as sink:
        settings = SendSettings(smarthost=("127.0.0.1", sink.port), maildir=tmp_path / "md")

        async def main() -> float:
            wake = asyncio.Event()
            task = asyncio.create_task(sender.run(engine, settings, wake, 0.05, lambda: current[0]))
            try:
                await asyncio.sleep(3.0)  # measuring windows of wall time, not waiting
                current[0] = Delivery(messages_per_second=40)  # what a SIGHUP reload does
                reloaded = time.monotonic()
                await asyncio.sleep(3.5)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            return reloaded

        reloaded = asyncio.run(main())
        got = sink.snapshot()
    with engine.connect() as conn:
        grants = conn.execute(sa.text("SELECT count(*) FROM rate_grants")).scalar_one()
    engine.dispose()

    def count(start: float, end: float) -> int:
        return sum(1 for d in got if start <= d.at < end)

    before = count(reloaded - 2.0, reloaded)
    after = count(reloaded + 1.0, reloaded + 3.0)
    print(f"\nreload: {before / 2:.1f} msgs/s before, {after / 2:.1f} after")
    assert 36 <= before <= 44  # 20/s, within 10%
    assert 72 <= after <= 88  # 40/s within a second of the reload
    assert grants == 0  # one daemon on SQLite: nothing shared, no database on the hot path


@pytest.mark.slow
def test_a_high_cap_is_sent_in_short_chains_and_still_holds(tmp_path: Path) -> None:
    """At 300/s the overall cap lets chains of 3 go at once (pool.PACED_CHAIN): no second
    has more than the cap and one chain, and the cap is reached. (What chains gain at
    2,000/s: bench/shared_limits.py; the sink here shares this process's core.)"""
    engine = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.begin() as conn:
        rcpts = [f"o{i:05d}@example.net" for i in range(2000)]
        queue.enqueue(conn, b"Subject: t\r\n\r\nbody\r\n", "b@x.example", rcpts, kind="post")
    with counting_sink() as sink:
        settings = SendSettings(smarthost=("127.0.0.1", sink.port), maildir=tmp_path / "md")

        async def main() -> None:
            task = asyncio.create_task(
                sender.run(
                    engine,
                    settings,
                    asyncio.Event(),
                    0.05,
                    lambda: Delivery(messages_per_second=300),
                )
            )
            try:
                await asyncio.sleep(3.5)  # a measuring window of wall time, not waiting
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        asyncio.run(main())
        times = sorted(d.at for d in sink.snapshot())
    engine.dispose()
    start = times[0] + 0.5
    seconds = [sum(1 for t in times if start + i <= t < start + i + 1) for i in range(2)]
    print(f"\ncap 300/s: {seconds} a second")
    # the cap holds over the window: a chain at most beyond it, and one chain more that
    # the sink saw just after the window's start although it left just before (a window
    # taken at the sink, not at the sender, on a loaded machine: 604 was seen once)
    assert sum(seconds) <= 2 * 300 + 2 * 3
    assert all(n <= 300 * 1.05 + 3 for n in seconds)
    assert sum(seconds) >= 2 * 300 * 0.9  # the cap sets the pace
