"""Bounces in, scores out (bounces/record.py) on the real store, day by day.

The days are simulated by passing `now`: the router passes the store clock's `utcnow()`.
The same path runs inside `haishin serve` in test_daemon_bounces.py.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.bounces.record import Recorded, from_mail, from_smtp, service_day
from haishin.bounces.score import settings_of
from haishin.registry import check, load_valid
from haishin.registry.model import JST
from haishin.store import bounces as stored
from haishin.store import open_store, queue
from haishin.store.schema import outbound
from haishin.store.states import QueueState
from haishin.tokens import Purpose, Verdict
from support.helpers import CONFIG
from support.verp import KEYRING, events, fanout_token, post_to, score, subscribe

SAMPLES = Path(__file__).parents[1] / "data" / "bounces"
SLUG = "kosodate-news"
DAY1 = dt.datetime(2026, 11, 16, 9, 0, tzinfo=JST)


def day(n: int, hour: int = 9) -> dt.datetime:
    return DAY1 + dt.timedelta(days=n - 1, hours=hour - 9)


def bounce(
    engine: sa.Engine,
    sample: str,
    token: str | None,
    now: dt.datetime,
    slug: str = SLUG,
    who: str | None = None,
) -> Recorded:
    """Feed a sample as if it came back to `<slug>-bounces+<token>@`; with `who`, the
    sample's failed recipient is rewritten to that address (same format, our subscriber)."""
    raw = (SAMPLES / sample).read_bytes()
    if who is not None:
        named = SAMPLE_SCORES[sample][0].encode()
        assert named in raw
        raw = raw.replace(named, who.encode())
    with engine.begin() as conn:
        return from_mail(conn, KEYRING, slug=slug, token=token, raw=raw, inbound_id=1, now=now)


# sample: (the failed recipient it names, outcome, score after it, outbound state after it)
SAMPLE_SCORES = {
    "postfix-5.1.1-user-unknown.eml": ("ichiro.suzuki@example.jp", Recorded.SCORED, 1.0, "bounced"),
    "postfix-4.4.1-delayed.eml": ("hanako.yamada@example.com", Recorded.SCORED, 0.5, "sent"),
    "exim-non-dsn.eml": ("jiro.tanaka@example.com", Recorded.SCORED, 1.0, "bounced"),
    "gmail-5.1.1.eml": ("saburo.sato@example.com", Recorded.SCORED, 1.0, "bounced"),
    "exchange-5.1.10-recipient-not-found.eml": ("shiro.ito@example.com", Recorded.SCORED, 1.0, "bounced"),
    "qmail-non-dsn.eml": ("goro.watanabe@example.com", Recorded.SCORED, 1.0, "bounced"),
    "docomo-550-unknown-user.eml": ("k-nakamura.0815@docomo.ne.jp", Recorded.SCORED, 1.0, "bounced"),
    "au-ezweb-iso-2022-jp.eml": ("taro_kawasaki-0123@ezweb.ne.jp", Recorded.SCORED, 1.0, "bounced"),
    "mailbox-full-5.2.2.eml": ("rokuro.kobayashi@example.jp", Recorded.SCORED, 0.5, "sent"),
    # cut short (no closing boundary): read, not demoted (issue 12, item 6)
    "malformed-truncated-mime.eml": ("nanako.kato@example.jp", Recorded.SCORED, 1.0, "bounced"),
    "out-of-office-ja-iso-2022-jp.eml": ("hanako.yamada@example.jp", Recorded.IGNORED, None, "sent"),
}  # fmt: skip


def test_every_sample_is_scored() -> None:
    assert sorted(SAMPLE_SCORES) == sorted(p.name for p in SAMPLES.glob("*.eml"))


@pytest.mark.parametrize("sample", sorted(SAMPLE_SCORES))
def test_real_world_sample_scores(db_url: str, sample: str) -> None:
    address, outcome, expected, state = SAMPLE_SCORES[sample]
    engine = open_store(db_url)
    subscribe(engine, SLUG, address)
    token = post_to(engine, SLUG, address)
    assert bounce(engine, sample, token.upper(), day(1)) is outcome  # a server upper-cased it
    found = score(engine, SLUG, address)
    assert (found[0] if found else None) == expected
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbound.c.state)).scalar_one() == state
    if outcome is Recorded.IGNORED:
        assert events(engine) == []  # an auto-reply leaves no record at all
    engine.dispose()


def test_scores_per_day_then_disable_then_resubscribe(db_url: str) -> None:
    engine = open_store(db_url)
    address = "k-nakamura.0815@docomo.ne.jp"
    subscribe(engine, SLUG, address)
    permanent, temporary = "docomo-550-unknown-user.eml", "mailbox-full-5.2.2.eml"

    def hit(sample: str, now: dt.datetime, who: str = address) -> tuple[Recorded, float]:
        result = bounce(engine, sample, post_to(engine, SLUG, who), now, who=who)
        found = score(engine, SLUG, who)
        return result, found[0] if found else 0.0

    # day 1: three bounced posts count once
    assert hit(permanent, day(1)) == (Recorded.SCORED, 1.0)
    assert hit(permanent, day(1, 15)) == (Recorded.SCORED, 1.0)
    assert hit(permanent, day(1, 23)) == (Recorded.SCORED, 1.0)
    # day 2 (JST): a temporary one counts half; a permanent one the same day tops it up to 1
    assert hit(temporary, day(2)) == (Recorded.SCORED, 1.5)
    assert hit(permanent, day(2, 20)) == (Recorded.SCORED, 2.0)
    # an auto-reply in between changes nothing
    assert hit("out-of-office-ja-iso-2022-jp.eml", day(3)) == (Recorded.IGNORED, 2.0)
    assert hit(permanent, day(3)) == (Recorded.SCORED, 3.0)
    assert hit(permanent, day(5)) == (Recorded.SCORED, 4.0)  # a day off is not a reset
    assert score(engine, SLUG, address) == (4.0, "active")
    # the threshold (5): disabled, never deleted
    assert hit(permanent, day(6)) == (Recorded.DISABLED, 5.0)
    assert score(engine, SLUG, address) == (5.0, "disabled")
    # later bounces of mail already in flight count no more
    assert hit(permanent, day(7)) == (Recorded.INACTIVE, 5.0)
    kinds = [(s, k, o) for s, k, o, _ in events(engine)]
    assert kinds.count(("verp", "permanent", "disabled")) == 1
    assert kinds[-1] == ("verp", "permanent", "inactive")
    # re-subscribing with confirmation (membership.confirm → subscribers.activate) resets it
    subscribe(engine, SLUG, address)
    assert score(engine, SLUG, address) is None
    assert hit(permanent, day(8)) == (Recorded.SCORED, 1.0)
    engine.dispose()


def test_a_score_goes_stale_after_seven_quiet_days(db_url: str) -> None:
    engine = open_store(db_url)
    address = "k-nakamura.0815@docomo.ne.jp"
    subscribe(engine, SLUG, address)
    sample = "docomo-550-unknown-user.eml"
    for n in (1, 2, 3, 4):
        bounce(engine, sample, post_to(engine, SLUG, address), day(n))
    assert score(engine, SLUG, address) == (4.0, "active")
    # day 4 + 8: more than stale_days (7) since the last bounce: it starts again
    bounce(engine, sample, post_to(engine, SLUG, address), day(12))
    assert score(engine, SLUG, address) == (1.0, "active")
    engine.dispose()


def test_unmatched_bounces_are_recorded_and_score_nothing(db_url: str) -> None:
    engine = open_store(db_url)
    mine = "someone.else@example.jp"
    subscribe(engine, SLUG, mine)
    token = post_to(engine, SLUG, mine)
    # a valid token, but the report names another recipient (a forward, a misdirected DSN)
    assert bounce(engine, "gmail-5.1.1.eml", token, day(1)) is Recorded.UNMATCHED
    # a forged token, no token at all (a bounce of a confirmation request), a token of
    # another channel's row
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    assert bounce(engine, "gmail-5.1.1.eml", forged, day(1)) is Recorded.UNMATCHED
    assert bounce(engine, "gmail-5.1.1.eml", None, day(1)) is Recorded.UNMATCHED
    assert bounce(engine, "gmail-5.1.1.eml", token, day(1), slug="gomi-recycle") is (
        Recorded.UNMATCHED
    )
    # garbage to a valid VERP address: the token names the recipient, the content is
    # unreadable: it weighs as unknown
    with engine.begin() as conn:
        assert (
            from_mail(
                conn,
                KEYRING,
                slug=SLUG,
                token=token,
                raw=b"\x00\xff garbage",
                inbound_id=2,
                now=day(1),
            )
            is Recorded.SCORED
        )
    assert score(engine, SLUG, mine) == (0.5, "active")
    assert [o for _, _, o, _ in events(engine)] == ["unmatched"] * 4 + ["scored"]
    assert [s for s, _, _, _ in events(engine)] == ["verp", "plain", "plain", "plain", "verp"]
    engine.dispose()


def test_smtp_5xx_counts_as_a_bounce_through_the_same_rule(db_url: str) -> None:
    engine = open_store(db_url)
    gone, full = "gone@example.jp", "full@example.jp"
    for address in (gone, full):
        subscribe(engine, SLUG, address)
        post_to(engine, SLUG, address, state=QueueState.QUEUED)
    rows = {r.rcpt: r for r in queue.claim(engine, 10)}
    failures = [
        (rows[gone], "550 5.1.1 <gone@example.jp>: no such user"),
        (rows[full], "552 5.2.2 mailbox full"),
    ]
    with engine.begin() as conn:
        from_smtp(conn, failures, redact=KEYRING.redact, now=day(1))
    assert score(engine, SLUG, gone) == (1.0, "active")
    assert score(engine, SLUG, full) == (0.5, "active")  # RFC 3463 §3.3: X.2.2 is transient
    assert events(engine) == [
        ("smtp", "permanent", "scored", "5.1.1"),
        ("smtp", "temporary", "scored", "5.2.2"),
    ]
    with engine.connect() as conn:
        diagnostics = conn.execute(sa.text("SELECT diagnostic FROM bounce_events")).scalars()
        assert all("gone@" not in (d or "") for d in diagnostics)  # 第4条: masked
    engine.dispose()


def test_service_day_is_japanese() -> None:
    # 23:30 UTC is already the next day in Kawasaki
    assert service_day(dt.datetime(2026, 11, 16, 23, 30, tzinfo=dt.UTC)) == dt.date(2026, 11, 17)


def test_the_rules_come_from_service_yaml(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    text = service.read_text(encoding="utf-8")
    service.write_text(text.replace("  threshold: 5\n", "  threshold: 2\n"), encoding="utf-8")
    rules = settings_of(load_valid(config).service.value)  # type: ignore[union-attr]
    assert (rules.threshold, rules.stale_days) == (2.0, 7)
    engine = open_store(sqlite_url)
    address = "k-nakamura.0815@docomo.ne.jp"
    subscribe(engine, SLUG, address)
    for n, expected in ((1, Recorded.SCORED), (2, Recorded.DISABLED)):
        token = post_to(engine, SLUG, address)
        raw = (SAMPLES / "docomo-550-unknown-user.eml").read_bytes()
        with engine.begin() as conn:
            got = from_mail(
                conn,
                KEYRING,
                slug=SLUG,
                token=token,
                raw=raw,
                inbound_id=n,
                now=day(n),
                settings=rules,
            )
        assert got is expected
    engine.dispose()
    # a threshold of zero would disable on nothing: `haishin check` says where
    service.write_text(text.replace("  threshold: 5\n", "  threshold: 0\n"), encoding="utf-8")
    _, problems = check(config)
    assert any("service.yaml" in str(p) and p.is_error for p in problems)


def test_an_expired_token_still_names_its_row(db_url: str) -> None:
    # reports come back days after the send; the MAC proves the token is ours
    engine = open_store(db_url)
    address = "k-nakamura.0815@docomo.ne.jp"
    subscribe(engine, SLUG, address)
    token = post_to(engine, SLUG, address)
    assert KEYRING.open(Purpose.BOUNCE, token, day(60)).verdict is Verdict.EXPIRED
    assert bounce(engine, "docomo-550-unknown-user.eml", token, day(60)) is Recorded.SCORED
    engine.dispose()


def test_concurrent_bounces_for_one_subscriber_lose_no_point(db_url: str) -> None:
    # two workers (two daemons on PostgreSQL) each read, change and write the score: the
    # subscriber row lock makes the second wait for the first. Half and whole points on one
    # day make a lost update visible: a temporary bounce written over a permanent one
    # would leave 3.5 instead of 4.
    engine = open_store(db_url)
    address = "k-nakamura.0815@docomo.ne.jp"
    sub_id = subscribe(engine, SLUG, address)
    with engine.begin() as conn:
        stored.save_score(conn, sub_id, stored.StoredScore(3.0, service_day(day(1)), 1.0))
    samples = ["docomo-550-unknown-user.eml", "mailbox-full-5.2.2.eml"] * 4
    jobs = [(sample, post_to(engine, SLUG, address)) for sample in samples]
    who = {"mailbox-full-5.2.2.eml": address}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda job: bounce(engine, job[0], job[1], day(2), who=who.get(job[0])), jobs)
        )
    assert results == [Recorded.SCORED] * 8
    assert score(engine, SLUG, address) == (4.0, "active")
    engine.dispose()


def test_the_fanout_token_names_the_subscriber(db_url: str) -> None:
    # delivery/fanout.py writes `<slug>-bounces+<token>@` with Purpose.VERP and the
    # subscriber's id (the outbound row does not exist yet when the token is made)
    engine = open_store(db_url)
    address = "k-nakamura.0815@docomo.ne.jp"
    mine = subscribe(engine, SLUG, address)
    elsewhere = subscribe(engine, "gomi-recycle", address)
    sample = "docomo-550-unknown-user.eml"
    assert bounce(engine, sample, fanout_token(mine), day(1)) is Recorded.SCORED
    assert score(engine, SLUG, address) == (1.0, "active")
    # the token must belong to the channel of the address it came back to
    assert bounce(engine, sample, fanout_token(elsewhere), day(2)) is Recorded.UNMATCHED
    assert bounce(engine, sample, fanout_token(elsewhere + 1000), day(2)) is Recorded.UNMATCHED
    assert score(engine, SLUG, address) == (1.0, "active")
    assert score(engine, "gomi-recycle", address) is None
    engine.dispose()


_REDACTED_ARF = (
    b"From: fbl@isp.example\r\nTo: x@example.jp\r\nSubject: FW: complaint\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
    b"--f\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
    b"--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
    b"User-Agent: FBL/1.0\r\nVersion: 1\r\n\r\n"
    b"--f\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: [redacted]\r\nSubject: post\r\n\r\n--f--\r\n"
)


def test_redacted_complaint_ends_the_subscription_its_token_names(db_url: str) -> None:
    """RFC 6590 lets a feedback loop redact the recipient: our signed VERP token says
    whom the complained-of post went to. A complaint naming someone else does nothing."""
    engine = open_store(db_url)
    try:
        sub_id = subscribe(engine, SLUG, "kenji.ota@example.jp")
        other = _REDACTED_ARF.replace(b"To: [redacted]", b"To: someone.else@example.jp")
        with engine.begin() as conn:
            assert (
                from_mail(
                    conn,
                    KEYRING,
                    slug=SLUG,
                    token=fanout_token(sub_id),
                    raw=other,
                    inbound_id=1,
                    now=day(1),
                )
                is Recorded.UNMATCHED
            )
        with engine.begin() as conn:
            assert (
                from_mail(
                    conn,
                    KEYRING,
                    slug=SLUG,
                    token=fanout_token(sub_id),
                    raw=_REDACTED_ARF,
                    inbound_id=2,
                    now=day(1),
                )
                is Recorded.UNSUBSCRIBED
            )
            status, method = conn.execute(
                sa.text("SELECT status, unsubscribe_method FROM subscribers WHERE id = :i"),
                {"i": sub_id},
            ).one()
        assert (status, method) == ("unsubscribed", "complaint")
        assert [e[1:3] for e in events(engine)] == [
            ("complaint", "unmatched"),
            ("complaint", "unsubscribed"),
        ]
    finally:
        engine.dispose()
