"""A worker batch writes its inserts as one statement per table (store.deferred), on
SQLite and PostgreSQL: a batch of requests makes as many statements as one request, and
a mixed batch ends exactly as the same messages processed one at a time."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from haishin.clock import utcnow
from haishin.router import worker
from haishin.router.worker import process_batch
from haishin.store import deferred, schema, spool, subscribers
from haishin.store.schema import auto_replies, confirmations, inbound
from haishin.store.states import Intake, MessageKind
from haishin.store.subscribers import address_key
from haishin.tokens import Purpose
from support.helpers import pg_database
from support.inprocess import InProcess, inprocess

DOMAIN = "mail.city.kawasaki.example.jp"


def _item(sender: str, rcpt: str, subject: str = "", n: int = 1) -> spool.Item:
    raw = f"From: {sender}\r\nSubject: {subject}\r\nMessage-ID: <{n}@x.example>\r\n\r\n"
    return (raw.encode(), sender, [rcpt], Intake.SMTP, f"127.0.{n % 7}.1")


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _one_batch(h: InProcess, items: list[spool.Item]) -> list[str]:
    """Spool `items`, process them in one batch; the statements it made."""
    spool.put_many(h.engine, items)
    rows = spool.fetch_new(h.engine, len(items))
    assert len(rows) == len(items)
    with _statements(h.engine) as seen:
        assert process_batch(h.engine, h.ctx, rows) == len(items)
    return seen


def test_a_batch_of_requests_makes_as_many_statements_as_one(db_url: str) -> None:
    with inprocess(db_url) as h:
        per_batch = []
        for size in (1, 32):
            items = [
                _item(f"s{size}-{i}@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=i)
                for i in range(size)
            ]
            per_batch.append(len(_one_batch(h, items)))
        # the spool rows' "done", the counts of the limits, the senders' rows, reserved
        # ids and one insert per table: about a dozen, never one per request (5 each before)
        assert per_batch[0] == per_batch[1] < 16
        confirms = h.queued(kind=MessageKind.CONFIRM)
        assert len(confirms) == 33
        with h.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(sa.select(confirmations))}
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(schema.subscribers)
            ).scalar()
        assert pending == 33
        for mail in confirms:  # each request's token names its own confirmation row
            token = parseaddr(mail.msg["Reply-To"])[1].split("+", 1)[1].split("@")[0]
            opened = h.ctx.keyring.open(Purpose.CONFIRM, token, utcnow())
            assert rows[opened.ident].address == mail.rcpt


def _mixed(token: str) -> list[spool.Item]:
    """Messages whose answers depend on what earlier ones in the same batch wrote."""
    return [
        _item("alice@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=1),
        _item("alice@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=2),  # pending now
        _item("ALICE@example.jp", f"kosodate-news-subscribe@{DOMAIN}", n=3),
        _item("Alice@Example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=4),  # same mailbox
        _item("carol@example.jp", f"gomi-recycle-confirm+{token}@{DOMAIN}", n=5),  # active
        _item("carol@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=6),  # already
        _item("bob@example.jp", f"kenshin-info-request@{DOMAIN}", "help", n=7),
        _item("dave@example.jp", f"gomi-recycle-unsubscribe@{DOMAIN}", n=8),
        _item("carol@example.jp", f"gomi-recycle-unsubscribe@{DOMAIN}", n=9),  # asks to leave
    ]


def _state(h: InProcess) -> dict[str, object]:
    """Everything the messages changed, without the ids (the engines pick those)."""
    with h.engine.connect() as conn:
        outcomes = [o for (o,) in conn.execute(sa.select(inbound.c.outcome).order_by(inbound.c.id))]
        subs = Counter(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    schema.subscribers.c.channel,
                    schema.subscribers.c.address_key,
                    schema.subscribers.c.status,
                )
            )
        )
        pending = Counter(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    confirmations.c.channel,
                    confirmations.c.address_key,
                    confirmations.c.action,
                    confirmations.c.used_at.is_(None),
                    confirmations.c.client_network,
                )
            )
        )
        answers = conn.execute(sa.select(sa.func.count()).select_from(auto_replies)).scalar()
    # (a confirmation's subject carries its token, made from the id)
    queued = Counter(
        (q.rcpt, q.kind, re.sub(r"\[confirm \w+\]", "", q.subject)) for q in h.queued()
    )
    return {
        "outcomes": outcomes,
        "subscribers": subs,
        "confirmations": pending,
        "auto_replies": answers,
        "queued": queued,
    }


def _carol_token(h: InProcess) -> str:
    _one_batch(h, [_item("carol@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=0)])
    (mail,) = h.mail("carol@example.jp", "")
    return parseaddr(mail.msg["Reply-To"])[1].split("+", 1)[1].split("@")[0]


def test_a_mixed_batch_ends_as_one_message_at_a_time(db_url: str, tmp_path: Path) -> None:
    with inprocess(db_url) as batched:
        token = _carol_token(batched)
        seen = _one_batch(batched, _mixed(token))
        assert seen  # (the statements were counted on this engine)
        together = _state(batched)
    url = f"sqlite:///{tmp_path / 'alone.db'}" if db_url.startswith("sqlite") else None
    with _other(url) as other, inprocess(other) as alone:
        assert _carol_token(alone) == token  # the same first confirmation id on both
        for item in _mixed(token):
            _one_batch(alone, [item])
        one_by_one = _state(alone)
    assert together == one_by_one
    outcomes = together["outcomes"]
    assert isinstance(outcomes, list)
    assert "subscribe:gomi-recycle=confirmation-sent" in outcomes[1]
    assert "already-subscribed" in outcomes[6]
    assert "confirmation-sent" in outcomes[9]  # carol, active since message 5, may leave


@contextmanager
def _other(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with pg_database() as pg:
        yield pg


def test_a_batch_whose_held_rows_conflict_is_redone_row_by_row(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another daemon adds the address's pending row after the batch read its senders (a
    stale read-ahead): the held insert fails when the batch writes, nothing of the batch
    stays, and each row is then done in its own transaction, none lost."""
    with inprocess(db_url) as h:
        with h.engine.begin() as conn:
            subscribers.add_pending(conn, "gomi-recycle", "alice@example.jp")

        def stale(conn: sa.Connection, channels: Collection[str], senders: Collection[str]) -> None:
            ahead = deferred.ahead(conn, schema.subscribers)
            assert ahead is not None  # as read before the add: no row for anyone
            ahead.update({(c, address_key(a)): None for c in channels for a in senders})

        monkeypatch.setattr(worker.subscribers, "read_ahead", stale)
        items = [
            _item("alice@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=1),
            _item("bob@example.jp", f"gomi-recycle-subscribe@{DOMAIN}", n=2),
        ]
        spool.put_many(h.engine, items)
        with caplog.at_level(logging.INFO, logger=worker.__name__):
            assert process_batch(h.engine, h.ctx, spool.fetch_new(h.engine, 10)) == 2
        assert "batch of 2 failed; processing one by one" in caplog.text
        state = _state(h)
    assert state["outcomes"] == ["subscribe:gomi-recycle=confirmation-sent"] * 2
    assert state["subscribers"] == Counter(
        {
            ("gomi-recycle", "alice@example.jp", "pending"): 1,
            ("gomi-recycle", "bob@example.jp", "pending"): 1,
        }
    )
    confirms = state["queued"]
    assert isinstance(confirms, Counter) and sum(confirms.values()) == 2
