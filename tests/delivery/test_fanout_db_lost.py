"""The database connection breaks under the sender (第8条: never a lost or stranded row).

A broken connection at COMMIT leaves the client unsure: the server may have committed.
For a claim that meant rows left `sending` under the live sender's id, which `recover`
never takes back (tests/service/test_faults.py saw it 1 run in 4). Here the break is made
deterministic in process: the real statement runs, then the call fails as psycopg does
when the server's answer is lost. A real SMTP sink (or the maildir) takes the mail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from haishin.outbound import sender
from haishin.outbound.sender import SendSettings
from haishin.registry.model import Delivery
from haishin.store import heartbeats, open_store, queue
from haishin.store.states import QueueState
from support import smarthost
from support.smarthost import counting_sink

RCPTS = [f"r{i:03d}@example.net" for i in range(40)]
WAIT = 20.0
"""Seconds for the queue to drain: a stranded row never would."""


def _lost(what: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        what, None, Exception("consuming input failed: server closed the connection")
    )


def _break_once(
    monkeypatch: pytest.MonkeyPatch, name: str, *, committed: bool
) -> Callable[[], int]:
    """`queue.<name>` fails once: after doing its work (`committed`: the answer was lost)
    or before (the transaction never reached the server). Returns the failure count."""
    real = getattr(queue, name)
    failed = [0]

    def broken(*args: Any, **kwargs: Any) -> Any:
        if failed[0]:
            return real(*args, **kwargs)
        failed[0] += 1
        if committed:
            real(*args, **kwargs)
        raise _lost("COMMIT")

    monkeypatch.setattr(queue, name, broken)
    return lambda: failed[0]


def _store(tmp_path: Path) -> sa.Engine:
    engine = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.begin() as conn:
        queue.enqueue(conn, b"Subject: t\r\n\r\nbody\r\n", "b@x.example", RCPTS, kind="post")
    return engine


def _drained(engine: sa.Engine) -> bool:
    counts = queue.counts(engine)
    return counts.get(QueueState.QUEUED, 0) == 0 and counts.get(QueueState.SENDING, 0) == 0


def _run_until_drained(
    engine: sa.Engine, settings: SendSettings, on_bounced: sender.OnBounced | None = None
) -> None:
    async def main() -> None:
        wake = asyncio.Event()
        task = asyncio.create_task(
            sender.run(engine, settings, wake, 0.05, Delivery, on_bounced=on_bounced)
        )
        started = time.monotonic()
        try:
            while not await asyncio.to_thread(_drained, engine):
                counts = queue.counts(engine)
                assert time.monotonic() - started < WAIT, f"not drained: {counts}"
                assert not task.done(), "the sender ended"
                await asyncio.sleep(0.05)  # polling the store, as helpers.wait_until
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "committed"),
    [
        ("claim", True),  # the claim committed, its rows never reached the sender
        ("claim", False),
        ("settle", True),  # the results were written, the sender does not know it
        ("settle", False),  # the results were not written: written once the db is back
    ],
)
def test_pool_strands_nothing_when_a_commit_answer_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, committed: bool
) -> None:
    engine = _store(tmp_path)
    failures = _break_once(monkeypatch, name, committed=committed)
    with counting_sink() as sink:
        settings = SendSettings(smarthost=("127.0.0.1", sink.port), maildir=tmp_path / "md")
        _run_until_drained(engine, settings)
        per_rcpt = sink.per_rcpt()
    assert failures() == 1
    assert queue.counts(engine) == {QueueState.SENT: len(RCPTS)}
    # each once: a released claim was never sent, a result written twice is still one
    assert sorted(per_rcpt) == RCPTS and set(per_rcpt.values()) == {1}
    engine.dispose()


@pytest.mark.parametrize(
    ("name", "committed"), [("claim", True), ("settle", True), ("settle", False)]
)
def test_maildir_strands_nothing_when_a_commit_answer_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, committed: bool
) -> None:
    engine = _store(tmp_path)
    failures = _break_once(monkeypatch, name, committed=committed)
    settings = SendSettings(smarthost=None, maildir=tmp_path / "md")
    _run_until_drained(engine, settings)
    assert failures() == 1
    assert queue.counts(engine) == {QueueState.SENT: len(RCPTS)}
    got = sorted(
        next(ln for ln in p.read_text().splitlines() if ln.startswith("Delivered-To: "))[14:]
        for p in (tmp_path / "md" / "new").iterdir()
    )
    assert got == RCPTS  # each once: the results that failed were written, not resent
    engine.dispose()


def test_recover_takes_back_own_claims_only_when_asked(tmp_path: Path) -> None:
    """A restarted sender task (supervision.supervised) holds none of its process's claims."""
    engine = _store(tmp_path)
    assert len(queue.claim(engine, 10)) == 10
    assert heartbeats.recover(engine) == 0  # a live sender's claims stay
    assert queue.counts(engine)[QueueState.SENDING] == 10
    assert heartbeats.recover(engine, mine=True) == 10
    assert queue.counts(engine) == {QueueState.QUEUED: len(RCPTS)}
    engine.dispose()


def test_release_frees_only_the_lost_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _store(tmp_path)
    kept = queue.claim(engine, 5)
    claims = queue.Claims(engine)
    _break_once(monkeypatch, "claim", committed=True)
    with pytest.raises(sa.exc.OperationalError):
        claims.claim(10)
    assert queue.counts(engine)[QueueState.SENDING] == 15  # committed, unknown to us
    again = claims.claim(10)  # releases the lost claim's 10 first, then claims anew
    ids = {r.id for r in again}
    assert len(ids) == 10 and not ids & {r.id for r in kept}
    assert queue.counts(engine) == {QueueState.SENDING: 15, QueueState.QUEUED: len(RCPTS) - 15}
    assert "10 row(s) of a claim whose answer was lost" in caplog.text
    engine.dispose()


def test_a_bounce_whose_results_write_failed_is_recorded_when_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5xx replies score in the transaction that writes their rows' results: when that
    write fails and is tried again, the bounces go with it (they were once dropped)."""
    engine = _store(tmp_path)
    refused = RCPTS[:5]
    recorded: list[str] = []

    def on_bounced(conn: sa.Connection, failures: list[tuple[queue.Claimed, str]]) -> None:
        recorded.extend(row.rcpt for row, _ in failures)

    failures = _break_once(monkeypatch, "settle", committed=False)
    with smarthost.sink() as sink:
        for address in refused:
            sink.answers[address] = "550 5.1.1 No such user"
        settings = SendSettings(smarthost=("127.0.0.1", sink.port), maildir=tmp_path / "md")
        _run_until_drained(engine, settings, on_bounced)
    assert failures() == 1
    assert queue.counts(engine) == {QueueState.SENT: len(RCPTS) - 5, QueueState.BOUNCED: 5}
    # none dropped. A refused row may be recorded twice: when the lost write's claim is
    # released before the write is tried again, the row goes to the smarthost once more
    # (within the README's bound on repeats) and its second 5xx is recorded too; the
    # score counts a recipient once a day, so it moves once (seen on a loaded CI run)
    assert set(recorded) == set(refused)
    assert all(recorded.count(r) <= 2 for r in refused), recorded
    engine.dispose()
