"""Issue 8, pacing: a carrier domain limited to 100 messages a minute and 5 per connection
gets no more, through a real SMTP sink that records connection and time, while another
domain's recipients go at full speed beside it.

The clock is scaled (`SendSettings.pace_scale`): a "minute" lasts 60/SCALE seconds, so
2,000 carrier recipients take seconds, not twenty minutes; every limit is checked in that
scaled minute.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import defaultdict
from pathlib import Path

import pytest

from haishin.outbound import sender
from haishin.outbound.sender import SendSettings
from haishin.registry.model import Delivery, DomainLimit
from haishin.store import open_store, queue
from haishin.store.states import QueueState
from support.smarthost import counting_sink

CARRIER = 2000
OTHER = 2000
PER_MINUTE = 100
PER_CONNECTION = 5
CARRIER_CONNECTIONS = 2
SCALE = 150.0  # a minute is 0.4 s: 2,000 carrier messages take about 8 s
MINUTE = 60.0 / SCALE


def _drained(engine: object) -> bool:
    counts = queue.counts(engine)  # type: ignore[arg-type]
    return counts.get(QueueState.QUEUED, 0) == 0 and counts.get(QueueState.SENDING, 0) == 0


@pytest.mark.slow
def test_carrier_limits_hold_and_others_are_not_slowed(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    carrier = [f"k{i:05d}@docomo.ne.jp" for i in range(CARRIER)]
    other = [f"o{i:05d}@example.net" for i in range(OTHER)]
    # interleaved, as a channel's subscribers are
    rcpts = [r for pair in zip(other, carrier, strict=True) for r in pair]
    with engine.begin() as conn:
        queue.enqueue(conn, b"Subject: t\r\n\r\nbody\r\n", "b@x.example", rcpts, kind="post")
    delivery = Delivery(
        connections=8,
        domains={
            "docomo.ne.jp": DomainLimit(
                recipients_per_connection=PER_CONNECTION,
                messages_per_minute=PER_MINUTE,
                connections=CARRIER_CONNECTIONS,
            )
        },
    )
    with counting_sink() as sink:
        settings = SendSettings(
            smarthost=("127.0.0.1", sink.port),
            maildir=tmp_path / "md",
            batch=500,
            pace_scale=SCALE,
        )

        async def main() -> float:
            wake = asyncio.Event()
            task = asyncio.create_task(sender.run(engine, settings, wake, 0.05, lambda: delivery))
            started = time.monotonic()
            try:
                while not await asyncio.to_thread(_drained, engine):
                    assert time.monotonic() - started < 120, "not drained"
                    await asyncio.sleep(0.05)  # polling the store, as helpers.wait_until
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            return started

        started = asyncio.run(main())
        got = sink.snapshot()
    engine.dispose()

    to_carrier = [d for d in got if d.rcpt.endswith("@docomo.ne.jp")]
    to_other = [d for d in got if d.rcpt.endswith("@example.net")]
    assert sorted(d.rcpt for d in to_carrier) == sorted(carrier)
    assert sorted(d.rcpt for d in to_other) == sorted(other)

    # messages per (scaled) minute: no window of one minute holds more than the limit
    # (+1: the bucket starts with one token)
    times = sorted(d.at for d in to_carrier)
    busiest = max(bisect.bisect_left(times, t + MINUTE) - i for i, t in enumerate(times))
    assert busiest <= PER_MINUTE + 1, busiest
    carrier_span = times[-1] - times[0]
    assert carrier_span >= (CARRIER - 1) / PER_MINUTE * MINUTE * 0.95

    # recipients per connection, and concurrent connections to the carrier
    per_conn: dict[int, list[float]] = defaultdict(list)
    for d in to_carrier:
        per_conn[d.connection].append(d.at)
    assert max(len(v) for v in per_conn.values()) <= PER_CONNECTION
    assert not {d.connection for d in to_other} & per_conn.keys()  # lanes do not mix
    edges = sorted(
        [(min(v), 1) for v in per_conn.values()] + [(max(v), -1) for v in per_conn.values()],
        key=lambda e: (e[0], e[1]),
    )
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    assert peak <= CARRIER_CONNECTIONS

    # the other domain is not held back: it is done long before the carrier's pace allows
    other_done = max(d.at for d in to_other) - started
    assert other_done < carrier_span / 3, (other_done, carrier_span)
