"""Issue 16 item 3: `haishin status --message ID --follow` on a running fan-out.

A real daemon delivers one post to 800 subscribers through a slow smarthost (each DATA
answered after 60 ms: 6 s or more over 8 connections); `--follow`, run as staff run it,
prints a progress line each look (sent / total, rate, eta) that advances, and ends by
itself once every row is done.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.store import open_store, posts
from haishin.store.posts import PostState
from haishin.store.schema import subscribers
from support import helpers
from support import posting as p
from support.smarthost import sink

RECIPIENTS = 800
LINE = re.compile(
    r"^post#(\d+) (\w+): 送信済み (\d+) / (\d+)(?:、再送待ち \d+、失敗 \d+、"
    r"([\d.]+) 通/秒、残り (?:約 \d+ 秒|不明)|、失敗 0、完了)$"
)


def _post(engine: sa.Engine) -> int:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            subscribers.insert(),
            [
                {
                    "channel": p.SLUG,
                    "address": f"f{i:04d}@example.net",
                    "address_key": f"f{i:04d}@example.net",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(RECIPIENTS)
            ],
        )
        made = posts.create(
            conn,
            channel=p.SLUG,
            spool_id=None,
            sender=p.SENDER,
            subject="お知らせ",
            text="本文\n",
            html=None,
            message_id=None,
            state=PostState.APPROVED,
            approval="confirm",
            findings=[],
            send_at=None,
            ttl=dt.timedelta(days=3),
        )
    return made.id


def test_follow_draws_advancing_progress_until_the_post_is_done(
    tmp_path: Path, sqlite_url: str
) -> None:
    engine = open_store(sqlite_url)
    with sink(keep_bodies=False, delay=0.06) as slow:
        d = helpers.start(tmp_path, sqlite_url, smarthost=slow.port)
        try:
            post_id = _post(engine)
            slow.wait_deliveries(1)  # the fan-out is under way
            follow = subprocess.run(
                [
                    str(helpers.HAISHIN),
                    "status",
                    "--db",
                    sqlite_url,
                    "--message",
                    str(post_id),
                    "--follow",
                    "--interval",
                    "0.3",
                ],
                capture_output=True,
                text=True,
                timeout=180,
            )
        finally:
            assert d.stop() == 0
        delivered = len(slow.snapshot())
    engine.dispose()
    assert follow.returncode == 0, follow.stderr
    lines = follow.stdout.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    sent = [int(m[3]) for m in parsed if m]
    assert sent == sorted(sent)  # it only advances
    assert len(set(sent)) >= 3, lines  # it was seen moving, not only at both ends
    assert any(0 < n < RECIPIENTS for n in sent)
    rates = [float(m[5]) for m in parsed[1:-1] if m and m[5]]
    assert rates and max(rates) > 0
    assert lines[-1] == f"post#{post_id} sent: 送信済み {RECIPIENTS} / {RECIPIENTS}、失敗 0、完了"
    assert all(m[2] in ("sending", "delivering") for m in parsed[:-1] if m)
    assert delivered == RECIPIENTS  # it ended when the post was done, not before
