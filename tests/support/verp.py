"""Real VERP tokens for the bounce tests: the fan-out's (Purpose.VERP, naming the
subscriber, as delivery/fanout.py writes them) and per outbound row (Purpose.BOUNCE)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from haishin.store import queue, subscribers
from haishin.store.schema import outbound
from haishin.store.states import QueueState
from haishin.tokens import Keyring, Purpose
from support.helpers import DOMAIN

KEYRING = Keyring(b"test-secret-0123456789abcdef")  # what helpers.start gives the daemon
POST = b"From: x@example.jp\r\nSubject: post\r\nMessage-ID: <p@x>\r\n\r\nbody\r\n"


def subscribe(engine: sa.Engine, slug: str, address: str) -> int:
    with engine.begin() as conn:
        return subscribers.activate(conn, slug, address, method="test", evidence="test").id


def fanout_token(sub_id: int) -> str:
    """The token delivery/fanout.py puts in a post's return path for this subscriber."""
    return KEYRING.make(Purpose.VERP, sub_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=30))


def post_to(engine: sa.Engine, slug: str, address: str, *, state: str = QueueState.SENT) -> str:
    """Queue a post to `address` with return path `<slug>-bounces+<token>@`; the token."""
    with engine.begin() as conn:
        message_id = queue.enqueue(conn, POST, "", [address], kind="post")
        row_id = conn.execute(
            sa.select(outbound.c.id).where(outbound.c.message_id == message_id)
        ).scalar_one()
        token = KEYRING.make(
            Purpose.BOUNCE, row_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        )
        conn.execute(
            outbound.update()
            .where(outbound.c.id == row_id)
            .values(mail_from=f"{slug}-bounces+{token}@{DOMAIN}", state=state)
        )
    return token


def score(engine: sa.Engine, slug: str, address: str) -> tuple[float, str] | None:
    """(score, status) of the subscription; None when nothing has bounced."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT b.score, s.status FROM subscribers s JOIN bounce_scores b"
                " ON b.subscriber_id = s.id WHERE s.channel = :c AND s.address_key = :a"
            ),
            {"c": slug, "a": address.lower()},
        ).first()
    return None if row is None else (float(row[0]), str(row[1]))


def events(engine: sa.Engine) -> list[tuple[str, str, str, str | None]]:
    """(source, kind, outcome, status) of every bounce event, in order."""
    with engine.connect() as conn:
        return [
            (str(r[0]), str(r[1]), str(r[2]), r[3])
            for r in conn.execute(
                sa.text("SELECT source, kind, outcome, status FROM bounce_events ORDER BY id")
            )
        ]
