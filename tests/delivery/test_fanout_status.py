"""One outbound message's progress (sent, deferred, failed, rate, eta), which `haishin status
--message ID` shows for a post."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from haishin.clock import utcnow
from haishin.operations.status import progress
from haishin.store import open_store, queue
from haishin.store.states import QueueState


def test_progress_of_one_post(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = open_store(url)
    with engine.begin() as conn:
        post = queue.enqueue(
            conn, b"b", "x@y", [f"r{i}@example.jp" for i in range(10)], kind="post"
        )
        other = queue.enqueue(conn, b"b", "x@y", ["o@example.jp"], kind="reply")
    rows = queue.claim(engine, 100)
    later = utcnow() + dt.timedelta(hours=1)
    mine = [r for r in rows if r.message_id == post]
    queue.settle(
        engine,
        [queue.Result(r.id, QueueState.SENT) for r in mine[:6]]
        + [queue.Result(mine[6].id, QueueState.BOUNCED, "550 no")]
        + [queue.Result(mine[7].id, QueueState.QUEUED, "451 later", later)]
        + [queue.Result(r.id, QueueState.QUEUED, None, later, attempted=False) for r in mine[8:]],
    )
    p = progress(engine, post)
    assert (p.total, p.sent, p.failed, p.pending, p.deferred) == (10, 6, 1, 3, 3)
    assert p.rate == 6 / 60  # six in the last minute
    assert p.eta_seconds == 30.0
    assert progress(engine, other).total == 1
    engine.dispose()
    # `haishin status --message` takes the post's id: tests/cli/test_held.py
