"""Issue 16 item 2: daemons sharing one PostgreSQL database release a post once.

Two `haishin serve` processes watch the same store; one post is approved. Exactly one of
them releases it (one `queued for` line, one archive row), neither logs an error or a
traceback, every subscriber gets the post once, and the back number lives in the store:
`haishin site build --db` run from a third folder, which has no back-number file of its
own, publishes it.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.store import open_store, posts
from haishin.store.posts import PostState
from haishin.store.schema import archive, subscribers
from support import helpers
from support import posting as p
from support.smarthost import sink

RECIPIENTS = 2_500
"""Three fan-out batches (1,000 each): long enough for both daemons to reach the post."""
SUBJECT = "年末年始の資源回収について"
TEXT = "12月29日から1月3日まで、資源の回収を休みます。\n"


def _subscribe(engine: sa.Engine) -> list[str]:
    now = utcnow()
    addresses = [f"r{i:05d}@example.net" for i in range(RECIPIENTS)]
    with engine.begin() as conn:
        conn.execute(
            subscribers.insert(),
            [
                {
                    "channel": p.SLUG,
                    "address": a,
                    "address_key": a,
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "confirmed_at": now,
                    "consent_method": "test",
                    "consent_evidence": "test",
                }
                for a in addresses
            ],
        )
    return addresses


def _approve(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        made = posts.create(
            conn,
            channel=p.SLUG,
            spool_id=None,
            sender=p.SENDER,
            subject=SUBJECT,
            text=TEXT,
            html=None,
            message_id=None,
            state=PostState.APPROVED,
            approval="confirm",
            findings=[],
            send_at=None,
            ttl=dt.timedelta(days=3),
        )
    return made.id


@pytest.mark.skipif(not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_two_daemons_one_post_one_release_and_the_site_built_elsewhere_shows_it(
    tmp_path: Path,
) -> None:
    with helpers.pg_database() as db_url, sink(keep_bodies=False, pipelining=True) as smtp:
        engine = open_store(db_url)
        addresses = _subscribe(engine)
        extra = ["--release-poll", "0.05"]
        daemons = [
            helpers.start(tmp_path, db_url, smarthost=smtp.port, extra=extra) for _ in range(2)
        ]
        try:
            post_id = _approve(engine)  # both daemons see it within their next poll
            smtp.wait_deliveries(RECIPIENTS)
            helpers.wait_until(lambda: helpers.drained(engine), what="the queue to drain")
        finally:
            codes = [d.stop() for d in daemons]
        assert codes == [0, 0]
        got = smtp.per_rcpt()
        assert set(got) == set(addresses) and set(got.values()) == {1}  # each once

        logs = [Path(d.log.name).read_text() for d in daemons]
        for text in logs:
            assert "Traceback" not in text and " ERROR " not in text, text[-3000:]
            assert "UniqueViolation" not in text
        released = [
            line for text in logs for line in text.splitlines() if f"post#{post_id} queued" in line
        ]
        assert len(released) == 1, released
        assert f"queued for {RECIPIENTS} recipient(s)" in released[0]

        with engine.connect() as conn:
            post = posts.get(conn, post_id)
            rows = conn.execute(sa.select(archive).where(archive.c.post_id == post_id)).all()
        engine.dispose()
        assert post is not None and post.state is PostState.SENT
        assert post.recipients == RECIPIENTS and post.release_owner is None
        assert len(rows) == 1 and rows[0].public and rows[0].slug == post.archive_slug

        # a third host: its own working folder, no back-number file, only the store
        third = tmp_path / "third"
        third.mkdir()
        built = subprocess.run(
            [
                str(helpers.HAISHIN),
                "site",
                "build",
                "--db",
                db_url,
                "--config",
                str(helpers.CONFIG),
                "--settings",
                str(helpers.ROOT / "pelicanconf.py"),
                "--archive",
                str(third / "archive"),  # empty: nothing from git either
                "--output",
                str(third / "site"),
            ],
            cwd=third,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, built.stderr
        page = third / "site" / "channels" / p.SLUG / f"{post.archive_slug}.html"
        html = page.read_text()
        assert SUBJECT in html and "資源の回収を休みます" in html
        listing = (third / "site" / "channels" / p.SLUG / "backnumbers.html").read_text()
        assert SUBJECT in listing  # listed among the channel's back numbers
        site_text = "\n".join(f.read_text(errors="replace") for f in third.rglob("*.html"))
        assert not re.search(r"r\d{5}@example\.net", site_text)  # 第4条: no subscriber
