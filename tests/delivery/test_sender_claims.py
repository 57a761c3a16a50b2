"""Rows that trickle in (a signed fan-out queues a chunk at a time) are claimed together:
after a claim that found fewer due rows than a batch, the next waits `sender.REFILL`, so
the sender does not run a claim's transaction per chunk or per chain commit, and the
rows still leave promptly. Real SQLite file, real SMTP sink on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from haishin.outbound import sender
from haishin.outbound.sender import SendSettings
from haishin.registry.model import Delivery
from haishin.store import open_store, queue
from haishin.store.states import MessageKind, QueueState
from support.smarthost import counting_sink

CHUNKS = 200
PER_CHUNK = 10
EVERY = 0.005  # 2,000 rows over about a second, as a signed fan-out queues them


def test_trickling_rows_are_claimed_together_and_still_leave_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    claims: list[int] = []
    real_claim = queue.claim

    def counted(*args: object, **kwargs: object) -> list[queue.Claimed]:
        got = real_claim(*args, **kwargs)  # type: ignore[arg-type]
        claims.append(len(got))
        return got

    monkeypatch.setattr(queue, "claim", counted)
    with engine.begin() as conn:
        message = queue.add_message(conn, b"Subject: t\r\n\r\nbody\r\n", kind=MessageKind.POST)
    with counting_sink() as sink:
        settings = SendSettings(smarthost=("127.0.0.1", sink.port), maildir=tmp_path / "md")

        def trickle(wake: asyncio.Event, loop: asyncio.AbstractEventLoop) -> float:
            for c in range(CHUNKS):
                rows = [("b@x.example", f"u{c}-{i}@example.net", None) for i in range(PER_CHUNK)]
                with engine.begin() as conn:
                    queue.add_rows(conn, message, rows)
                loop.call_soon_threadsafe(wake.set)  # as the release tells the sender
                time.sleep(EVERY)
            return time.monotonic()

        async def main() -> tuple[float, float]:
            wake = asyncio.Event()
            task = asyncio.create_task(sender.run(engine, settings, wake, 1.0, Delivery))
            try:
                last = await asyncio.to_thread(trickle, wake, asyncio.get_running_loop())
                while len(sink.snapshot()) < CHUNKS * PER_CHUNK:
                    assert time.monotonic() - last < 10, "not delivered"
                    await asyncio.sleep(0.01)
                return last, time.monotonic()
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        last, delivered = asyncio.run(main())
        got = sink.snapshot()
    with engine.connect() as conn:
        counts = queue.counts(engine)
    engine.dispose()
    assert len(got) == len({d.rcpt for d in got}) == CHUNKS * PER_CHUNK  # each once
    assert counts == {QueueState.SENT: CHUNKS * PER_CHUNK}
    taken = [n for n in claims if n]
    # one claim per chunk would be 200; at most one per REFILL over the trickle's span
    # (which is longer than CHUNKS * EVERY on a loaded machine), and a few at its ends
    span = CHUNKS * EVERY * 3
    assert len(taken) <= span / sender.REFILL + 5, (len(taken), claims)
    assert sum(taken) == CHUNKS * PER_CHUNK
    # and the last rows left soon after they were queued
    assert delivered - last < 1.0
