"""The bounce store (store/bounces.py) on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from haishin.registry.model import Limits
from haishin.store import bounces as stored
from haishin.store import open_store, subscribers
from haishin.store.bounces import BounceOutcome, Event, Source, StoredScore
from haishin.store.retention import purge
from haishin.store.subscribers import Status

D1 = dt.date(2026, 11, 16)  # a Monday


def _active(engine: sa.Engine, address: str, channel: str = "gomi-recycle") -> int:
    with engine.begin() as conn:
        sub = subscribers.activate(conn, channel, address, method="test", evidence="test")
    return sub.id


def test_score_upsert_load_reset(db_url: str) -> None:
    engine = open_store(db_url)
    sub = _active(engine, "a@example.jp")
    with engine.begin() as conn:
        assert stored.load_score(conn, sub) == StoredScore(0.0, None, 0.0)  # no row yet
        stored.save_score(conn, sub, StoredScore(1.0, D1, 1.0))
        stored.save_score(conn, sub, StoredScore(1.5, D1 + dt.timedelta(days=1), 0.5))
        assert stored.load_score(conn, sub) == StoredScore(1.5, D1 + dt.timedelta(days=1), 0.5)
        assert stored.lock_subscriber(conn, sub) == "active"
        assert stored.lock_subscriber(conn, sub + 1000) is None
    with engine.begin() as conn:
        stored.reset_score(conn, sub)
        assert stored.load_score(conn, sub) == StoredScore(0.0, None, 0.0)
    engine.dispose()


def test_disable_keeps_the_row_and_resubscribing_resets_the_score(db_url: str) -> None:
    engine = open_store(db_url)
    sub = _active(engine, "B@example.jp")
    with engine.begin() as conn:
        stored.save_score(conn, sub, StoredScore(5.0, D1, 1.0))
        assert subscribers.disable(conn, sub, method="bounce")
        assert not subscribers.disable(conn, sub, method="bounce")  # only an active one
        s = subscribers.by_id(conn, sub)
        assert s is not None and s.status is Status.DISABLED and s.unsubscribe_method == "bounce"
        assert s.confirmed_at is not None  # the consent record stays
    # the address confirms again (membership.confirm calls activate): a clean slate
    with engine.begin() as conn:
        again = subscribers.activate(conn, "gomi-recycle", "b@example.jp", method="t", evidence="t")
        assert again.id == sub and again.status is Status.ACTIVE
        assert stored.load_score(conn, sub) == StoredScore(0.0, None, 0.0)
    engine.dispose()


def test_events_counts_disabled_and_channels(db_url: str) -> None:
    engine = open_store(db_url)
    a = _active(engine, "a@example.jp")
    b = _active(engine, "b@example.jp")
    other = _active(engine, "c@example.jp", channel="kosodate-news")

    def event(
        day: dt.date, kind: str, outcome: BounceOutcome, sub: int | None, **kw: object
    ) -> Event:
        return Event(day, kw.pop("channel", "gomi-recycle"), sub, Source.VERP, kind, outcome, **kw)  # type: ignore[arg-type]

    with engine.begin() as conn:
        stored.add_event(conn, event(D1, "permanent", BounceOutcome.SCORED, a, status="5.1.1"))
        stored.add_event(conn, event(D1, "temporary", BounceOutcome.SCORED, b))
        stored.add_event(
            conn,
            event(
                D1 + dt.timedelta(days=2), "permanent", BounceOutcome.DISABLED, a, status="5.1.1"
            ),
        )
        stored.add_event(conn, event(D1, "permanent", BounceOutcome.UNMATCHED, None))
        # a bounce of a confirmation request to an address never subscribed: not counted
        stored.add_event(conn, event(D1, "permanent", BounceOutcome.INACTIVE, b))
        # outside the window, and another channel
        stored.add_event(
            conn, event(D1 - dt.timedelta(days=1), "permanent", BounceOutcome.SCORED, a)
        )
        stored.add_event(
            conn, event(D1, "unknown", BounceOutcome.SCORED, other, channel="kosodate-news")
        )
        stored.add_event(conn, event(D1, "unknown", BounceOutcome.UNMATCHED, None, channel=None))
    until = D1 + dt.timedelta(days=7)
    with engine.connect() as conn:
        assert stored.counts(conn, "gomi-recycle", D1, until) == {
            "permanent": 2,
            "temporary": 1,
            "unmatched": 1,
        }
        (gone,) = stored.disabled(conn, "gomi-recycle", D1, until)
        assert (gone.subscriber_id, gone.address, gone.day, gone.status) == (
            a,
            "a@example.jp",
            D1 + dt.timedelta(days=2),
            "5.1.1",
        )
        assert stored.channels_with_events(conn, D1, until) == ["gomi-recycle", "kosodate-news"]
        assert stored.channels_with_events(conn, until, until + dt.timedelta(days=7)) == []
        assert [s.subscriber_id for s in stored.scores(conn, "gomi-recycle")] == []
    engine.dispose()


def test_claim_digest_once_per_channel_and_week(db_url: str) -> None:
    engine = open_store(db_url)
    with engine.begin() as conn:
        assert stored.claim_digest(conn, "gomi-recycle", D1)
        stored.set_digest_message(conn, "gomi-recycle", D1, 42)
    with engine.begin() as conn:
        assert not stored.claim_digest(conn, "gomi-recycle", D1)  # a second run: nothing
        assert stored.claim_digest(conn, "kosodate-news", D1)
        assert stored.claim_digest(conn, "gomi-recycle", D1 + dt.timedelta(days=7))
        assert stored.digest_sent(conn, "gomi-recycle", D1)
        assert not stored.digest_sent(conn, "noriai-bus", D1)
    engine.dispose()


def test_the_purge_of_never_confirmed_subscriptions_keeps_their_bounce_events(
    db_url: str,
) -> None:
    # a confirmation request to a mistyped address bounces (an "inactive" event); the
    # purge later deletes the pending subscription: the event stays, unlinked
    engine = open_store(db_url)
    with engine.begin() as conn:
        pending = subscribers.ensure_pending(conn, "gomi-recycle", "typo@example.jp")
        stored.add_event(
            conn,
            Event(D1, "gomi-recycle", pending.id, Source.SMTP, "permanent", BounceOutcome.INACTIVE),
        )
        stored.save_score(conn, pending.id, StoredScore(1.0, D1, 1.0))  # cannot happen; still
    limits = Limits()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=limits.token_ttl_hours, days=2)
    done = purge(engine, b"k" * 32, limits, now=later)
    assert done.pending == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT subscriber_id FROM bounce_events")).all() == [(None,)]
        assert conn.execute(sa.text("SELECT count(*) FROM bounce_scores")).scalar() == 0
    engine.dispose()
