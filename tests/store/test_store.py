"""The store on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from haishin.store import confirmations as conf
from haishin.store import heartbeats, open_store, queue, spool, subscribers
from haishin.store.schema import metadata
from haishin.store.states import QueueState, SpoolState


def test_migration_matches_the_schema_and_is_idempotent(db_url: str) -> None:
    engine = open_store(db_url)
    open_store(db_url).dispose()  # a second start migrates nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    engine.dispose()


def test_spool_put_take_once(db_url: str) -> None:
    engine = open_store(db_url)
    a = spool.put(engine, b"raw-a", "", ["x@y"], "imap")
    b = spool.put(engine, b"raw-b", "s@y", ["x@y", "z@y"], "smtp")
    rows = spool.fetch_new(engine, 10)
    assert (
        [r.id for r in rows] == [a, b]
        and rows[0].mail_from == ""
        and rows[1].rcpts == ["x@y", "z@y"]
    )
    with engine.begin() as conn:
        assert spool.take(conn, a, SpoolState.DONE, "ok")
    with engine.begin() as conn:
        assert not spool.take(conn, a, SpoolState.DONE, "again")  # idempotent per row
    for _ in range(spool.MAX_ATTEMPTS):
        state = spool.record_failure(engine, b, "boom")
    assert state == SpoolState.FAILED  # shunted, kept
    assert spool.counts(engine) == {"done": 1, "failed": 1}
    engine.dispose()


def test_group_commit_returns_each_row_its_own_id(db_url: str) -> None:
    # put_many stores a group in one statement: each session's future gets its row's id
    engine = open_store(db_url)
    items = [
        (f"raw-{i}".encode(), f"s{i}@y", [f"r{i}@y"], "smtp", f"127.0.{i}.1") for i in range(7)
    ]
    ids = spool.put_many(engine, items)
    assert len(set(ids)) == 7 and spool.put_many(engine, []) == []
    by_id = {r.id: r for r in spool.fetch_new(engine, 10)}
    assert [(by_id[i].raw, by_id[i].mail_from, by_id[i].rcpts) for i in ids] == [
        (raw, mail_from, rcpts) for raw, mail_from, rcpts, _, _ in items
    ]
    assert [by_id[i].client_address for i in ids] == [c for *_, c in items]
    engine.dispose()


def test_queue_claim_settle_recover(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.begin() as conn:
        queue.enqueue(conn, b"body", "b@x", [f"r{i}@x" for i in range(250)], kind="post")
    first = queue.claim(engine, 100)
    assert len(first) == 100 and first[0].raw == b"body"
    now = dt.datetime.now(dt.UTC)
    queue.settle(
        engine,
        [
            queue.Result(first[0].id, QueueState.SENT),
            queue.Result(first[1].id, QueueState.BOUNCED, "550 no"),
        ]
        + [
            queue.Result(r.id, QueueState.QUEUED, "451", now + dt.timedelta(hours=1))
            for r in first[2:]
        ],
    )
    second = queue.claim(engine, 1000)
    assert len(second) == 150  # retries are not due yet; the rest are
    assert {r.id for r in second}.isdisjoint(r.id for r in first)
    # a crashed sender: its claimed rows come back (SQLite: at once; PostgreSQL: when stale)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbound SET claimed_by = 'dead', claimed_at = :t WHERE state = 'sending'"
            ),
            {"t": now - dt.timedelta(hours=1)},
        )
    assert heartbeats.recover(engine) == 150
    assert queue.counts(engine) == {"sent": 1, "bounced": 1, "queued": 248}
    engine.dispose()


def test_concurrent_claims_never_overlap(db_url: str) -> None:
    """Several senders (threads here, daemons in production) share the queue; on
    PostgreSQL `FOR UPDATE SKIP LOCKED` gives each recipient to one of them."""
    engine = open_store(db_url)
    with engine.begin() as conn:
        queue.enqueue(conn, b"body", "b@x", [f"r{i}@x" for i in range(2000)], kind="post")

    def drain() -> list[int]:
        got: list[int] = []
        while batch := queue.claim(engine, 50):
            got += [r.id for r in batch]
        return got

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: drain(), range(4)))
    all_ids = [i for r in results for i in r]
    assert len(all_ids) == 2000 and len(set(all_ids)) == 2000
    engine.dispose()


def test_subscribers_and_consent_record(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.begin() as conn:
        s = subscribers.ensure_pending(conn, "gomi", "Abc..Def@docomo.ne.jp")
        assert s.status is subscribers.Status.PENDING
        assert subscribers.find(conn, "gomi", "abc..def@DOCOMO.ne.jp") == s  # case-folded key
        a = subscribers.activate(
            conn, "gomi", "abc..def@docomo.ne.jp", method="mail-reply", evidence="inbound#1"
        )
        assert a.status is subscribers.Status.ACTIVE and a.address == "Abc..Def@docomo.ne.jp"
        assert a.confirmed_at is not None and a.consent_method == "mail-reply"
        assert subscribers.unsubscribe(conn, a.id, method="one-click")
        assert not subscribers.unsubscribe(conn, a.id, method="one-click")
        assert subscribers.count(conn, "gomi")[subscribers.Status.UNSUBSCRIBED] == 1
        p = conf.create(
            conn, "gomi", "x@y.jp", conf.Action.SUBSCRIBE, dt.timedelta(hours=1), "test"
        )
        assert conf.use(conn, p.id) and not conf.use(conn, p.id)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        assert (
            conf.sent_to_address_since(conn, "X@Y.JP", since) == 1
            and conf.sent_since(conn, since, 10) == 1
        )
    engine.dispose()


def test_imap_store_is_idempotent_on_the_content_hash(db_url: str) -> None:
    engine = open_store(db_url)
    woken: list[int] = []
    s = spool.Spool(engine, "imap", lambda: woken.append(1))
    a = s.put(b"raw", "x@y.jp", ["r@z"], key="k" * 64)
    assert s.put(b"raw", "x@y.jp", ["r@z"], key="k" * 64) == a  # offered again after a crash
    assert s.put(b"raw", "x@y.jp", ["r@z"]) != a  # without a key (SMTP) a resend is new
    assert spool.counts(engine) == {"new": 2} and len(woken) == 3
    engine.dispose()
