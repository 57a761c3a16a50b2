"""Issue 11, item 3, the rules in process: limits on automatic answers per address, per
client network and overall, on a real SQLite file (and PostgreSQL where present)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.commands import membership
from haishin.context import Context, Outcome
from haishin.directory import Directory
from haishin.outbound import ratelimit
from haishin.registry import Located, load_valid
from haishin.registry.model import AnswerLimits, Cap, ClientNetworks
from haishin.router.worker import process_batch
from haishin.store import open_store, spool
from haishin.store.schema import auto_replies, confirmations, outbound
from haishin.tokens import Keyring
from support.helpers import CONFIG, DOMAIN, HAISHIN, pg_available, pg_database

SUBSCRIBE = f"gomi-recycle-subscribe@{DOMAIN}"
HELP = f"gomi-recycle-request@{DOMAIN}"


def context(confirm: AnswerLimits | None = None, answers: AnswerLimits | None = None) -> Context:
    reg = load_valid(CONFIG)
    assert reg.service is not None
    service = reg.service.value
    update: dict[str, object] = {}
    if confirm is not None:
        update["confirmations"] = confirm
    if answers is not None:
        update["auto_replies"] = answers
    changed = service.model_copy(update={"limits": service.limits.model_copy(update=update)})
    reg = dataclasses.replace(reg, service=Located(changed, reg.service.doc))
    key = Keyring(b"k" * 32)
    return Context(Directory(reg, key), key, "http://t/")


def caps(network: int, overall: int, per_address: int = 3) -> AnswerLimits:
    return AnswerLimits(
        per_address=Cap(count=per_address, window_hours=24),
        per_network=Cap(count=network),
        overall=Cap(count=overall),
    )


def put(
    engine: sa.Engine, sender: str, client: str | None, rcpt: str = SUBSCRIBE, source: str = "smtp"
) -> None:
    raw = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: help\r\n\r\n".encode()
    spool.put_many(engine, [(raw, sender, [rcpt], source, client)])


def run(engine: sa.Engine, ctx: Context, batch: int = 32) -> None:
    while rows := spool.fetch_new(engine, batch):
        process_batch(engine, ctx, rows)


def sent_to(engine: sa.Engine, address: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outbound).where(outbound.c.rcpt == address)
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("source", "address", "expected"),
    [
        ("smtp", "198.51.100.77", "198.51.100.0/24"),
        ("lmtp", "2001:db8:1234:5678::1", "2001:db8:1234:5600::/56"),
        ("smtp", "::ffff:203.0.113.9", "203.0.113.0/24"),  # an IPv4 client on a dual stack
        ("imap", None, ratelimit.IMAP),  # a bucket of its own
        ("imap", "198.51.100.77", ratelimit.IMAP),
        ("smtp", None, ratelimit.UNKNOWN),  # stored before the client was recorded
        ("smtp", "not-an-address", ratelimit.UNKNOWN),
    ],
)
def test_client_network_groups_by_prefix(source: str, address: str | None, expected: str) -> None:
    assert ratelimit.client_network(source, address, ClientNetworks()) == expected


def test_prefix_lengths_are_settings() -> None:
    narrow = ClientNetworks(ipv4_prefix=32, ipv6_prefix=64)
    assert ratelimit.client_network("smtp", "198.51.100.77", narrow) == "198.51.100.77/32"
    assert ratelimit.client_network("smtp", "2001:db8::1", narrow) == "2001:db8::/64"


def test_a_flood_from_one_network_leaves_another_served(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """More forged requests than the per-network cap from 127.0.0.0/24, some in one batch
    and some in batches of their own; a resident from another network is still asked."""
    ctx = context(confirm=caps(network=5, overall=50))
    engine = open_store(db_url)
    for i in range(12):
        put(engine, f"victim{i}@example.jp", f"127.0.0.{2 + i % 3}")
    with caplog.at_level(logging.INFO, logger="haishin.outbound.ratelimit"):
        run(engine, ctx, batch=4)
        put(engine, "resident@example.jp", "127.0.1.9")
        run(engine, ctx)
    assert sum(sent_to(engine, f"victim{i}@example.jp") for i in range(12)) == 5
    assert sent_to(engine, "resident@example.jp") == 1
    with engine.connect() as conn:
        networks = dict(
            conn.execute(
                sa.select(confirmations.c.client_network, sa.func.count()).group_by(
                    confirmations.c.client_network
                )
            ).all()
        )
    assert networks == {"127.0.0.0/24": 5, "127.0.1.0/24": 1}
    refusals = [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()]
    assert len(refusals) == 7, refusals
    assert all("127.0.0.0/24 not sent: per-network limit" in r for r in refusals), refusals
    assert not any("@example.jp" in r for r in refusals)  # keyed hashes only (第4条(3))
    engine.dispose()


def test_the_per_network_cap_holds_within_one_batch(sqlite_url: str) -> None:
    ctx = context(confirm=caps(network=3, overall=50))
    engine = open_store(sqlite_url)
    for i in range(10):
        put(engine, f"v{i}@example.jp", "192.0.2.10")
    put(engine, "resident@example.jp", "198.51.100.4")
    rows = spool.fetch_new(engine, 100)
    assert process_batch(engine, ctx, rows) == 11  # one transaction: the cached counts
    assert sum(sent_to(engine, f"v{i}@example.jp") for i in range(10)) == 3
    assert sent_to(engine, "resident@example.jp") == 1
    with engine.connect() as conn:
        outcomes = conn.execute(sa.select(spool.inbound.c.outcome)).scalars().all()
    assert sum("rate-limited" in o for o in outcomes) == 7
    engine.dispose()


def test_the_overall_cap_still_holds_across_networks(sqlite_url: str) -> None:
    ctx = context(confirm=caps(network=3, overall=7))
    engine = open_store(sqlite_url)
    for n in range(5):
        for i in range(3):
            put(engine, f"n{n}-{i}@example.jp", f"10.0.{n}.1")
    run(engine, ctx, batch=5)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(confirmations)).scalar_one()
    assert total == 7
    engine.dispose()


def test_the_per_address_cap_comes_first(sqlite_url: str) -> None:
    ctx = context(confirm=caps(network=50, overall=100, per_address=2))
    engine = open_store(sqlite_url)
    for i in range(5):
        put(engine, "one@example.jp", f"10.{i}.0.1")  # from five networks: still one mailbox
    run(engine, ctx, batch=1)
    assert sent_to(engine, "one@example.jp") == 2
    engine.dispose()


def test_the_per_address_caps_hold_within_one_batch(db_url: str) -> None:
    """A batch takes its senders' counts in one query and counts each answer it lets
    through: a mailbox that asks several times in one batch (in either case, after a
    request in an earlier batch) still gets exactly its cap, of requests and of answers."""
    ctx = context(
        confirm=caps(network=50, overall=100, per_address=3),
        answers=caps(network=50, overall=100, per_address=2),
    )
    engine = open_store(db_url)
    put(engine, "many@example.jp", "10.9.0.1")
    run(engine, ctx)
    for i in range(5):
        put(engine, "Many@Example.jp" if i % 2 else "many@example.jp", f"10.{i}.0.1")
    for i in range(4):
        put(engine, "asks@example.jp", f"10.{i}.1.1", rcpt=HELP)
    run(engine, ctx)
    assert sent_to(engine, "many@example.jp") + sent_to(engine, "Many@Example.jp") == 3
    assert sent_to(engine, "asks@example.jp") == 2
    engine.dispose()


def test_requests_older_than_the_window_no_longer_count(sqlite_url: str) -> None:
    ctx = context(confirm=caps(network=2, overall=50))
    engine = open_store(sqlite_url)
    for i in range(3):
        put(engine, f"early{i}@example.jp", "203.0.113.5")
    run(engine, ctx)
    assert sum(sent_to(engine, f"early{i}@example.jp") for i in range(3)) == 2
    with engine.begin() as conn:  # an hour and a minute later (window_hours: 1)
        conn.execute(
            confirmations.update().values(
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=61)
            )
        )
    put(engine, "later@example.jp", "203.0.113.5")
    run(engine, ctx)
    assert sent_to(engine, "later@example.jp") == 1
    engine.dispose()


def test_other_answers_are_limited_per_network_too(sqlite_url: str) -> None:
    """Help requests (answers that need no confirmation) from one network run out; a
    help request from another network is still answered, and the rows say which network."""
    ctx = context(answers=caps(network=4, overall=40, per_address=10))
    engine = open_store(sqlite_url)
    for i in range(9):
        put(engine, f"h{i}@example.jp", "198.51.100.20", rcpt=HELP)
    put(engine, "resident@example.jp", "203.0.113.30", rcpt=HELP)
    run(engine, ctx, batch=3)
    assert sum(sent_to(engine, f"h{i}@example.jp") for i in range(9)) == 4
    assert sent_to(engine, "resident@example.jp") == 1
    with engine.connect() as conn:
        nets = conn.execute(sa.select(auto_replies.c.client_network)).scalars().all()
    assert sorted(nets) == ["198.51.100.0/24"] * 4 + ["203.0.113.0/24"]
    engine.dispose()


def test_imap_mail_is_a_bucket_of_its_own(sqlite_url: str) -> None:
    ctx = context(confirm=caps(network=2, overall=50))
    engine = open_store(sqlite_url)
    for i in range(4):
        put(engine, f"imap{i}@example.jp", None, source="imap")
    put(engine, "smtp@example.jp", "198.51.100.1")
    run(engine, ctx)
    assert sum(sent_to(engine, f"imap{i}@example.jp") for i in range(4)) == 2
    assert sent_to(engine, "smtp@example.jp") == 1
    engine.dispose()


def test_an_import_by_staff_is_not_limited_per_network(sqlite_url: str) -> None:
    """No client asked (network None): only the per-address and overall caps apply."""
    ctx = context(confirm=caps(network=2, overall=6))
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        got = [
            membership.request_subscribe(conn, ctx, "gomi-recycle", f"i{i}@example.jp", origin="t")
            for i in range(8)
        ]
    assert got == [Outcome.CONFIRMATION_SENT] * 6 + [Outcome.RATE_LIMITED] * 2
    engine.dispose()


def write_limits(tmp_path: Path, block: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    text = service.read_text(encoding="utf-8")
    start = text.index("  confirmations:")
    end = text.index("  client_networks:\n")
    service.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return config


def test_check_refuses_a_network_cap_that_cannot_bite_first(tmp_path: Path) -> None:
    config = write_limits(
        tmp_path,
        "  confirmations:\n"
        "    per_address: {count: 3, window_hours: 24}\n"
        "    per_network: {count: 600, window_hours: 1}\n"
        "    overall: {count: 600, window_hours: 1}\n"
        "  auto_replies:\n"
        "    per_address: {count: 10, window_hours: 25}\n"
        "    per_network: {count: 300, window_hours: 1}\n"
        "    overall: {count: 5000, window_hours: 1}\n",
    )
    done = subprocess.run(
        [str(HAISHIN), "check", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    assert any("service.yaml:" in x and "per_network.count 600 × 1" in x for x in lines), lines
    assert any("service.yaml:" in x and "window_hours" in x and "24" in x for x in lines), lines


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # the same front end on a dual-stack socket
        ("127.0.0.2", False),  # loopback, but not the listed front end
        ("198.51.100.9", False),
        ("not-an-address", False),
        (None, False),  # a UNIX socket
    ],
)
def test_only_the_listed_forwarders_may_use_xforward(peer: str | None, trusted: bool) -> None:
    from aiosmtpd.smtp import Session

    from haishin.inbound.smtp import Handler

    ctx = context()
    handler = Handler(lambda: ctx.directory, _never_stores, "smtp", str)
    session = Session(loop=None)  # type: ignore[arg-type]
    session.peer = (peer, 25) if peer is not None else "/run/haishin.sock"
    assert handler.trusts_forwarder(session) is trusted


async def _never_stores(raw: bytes, mail_from: str, rcpts: list[str], client: str | None) -> int:
    raise AssertionError("nothing is stored in this test")


def test_check_counts_a_shorter_network_window_against_the_overall_one(tmp_path: Path) -> None:
    """200 an hour from one network is 4,800 a day: more than an overall 3,000 a day."""
    config = write_limits(
        tmp_path,
        "  confirmations:\n"
        "    per_address: {count: 3, window_hours: 24}\n"
        "    per_network: {count: 200, window_hours: 1}\n"
        "    overall: {count: 3000, window_hours: 24}\n"
        "  auto_replies:\n"
        "    per_address: {count: 10, window_hours: 24}\n"
        "    per_network: {count: 100, window_hours: 1}\n"
        "    overall: {count: 3000, window_hours: 24}\n",
    )
    done = subprocess.run(
        [str(HAISHIN), "check", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "per_network.count 200 × 24" in done.stdout + done.stderr
    assert "auto_replies" not in done.stdout + done.stderr  # 100 × 24 = 2,400 < 3,000


@pytest.mark.skipif(not pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_answers_at_the_same_moment_keep_one_mailboxs_cap() -> None:
    """Transactions answering one mailbox at once (two daemons, the citizen's page and a
    mail, on one PostgreSQL database) count one after the other: the cap holds. Each holds
    its transaction open a moment after its check, as a worker batch does. (SQLite needs no
    test: a transaction there takes the database's write lock as it begins.)"""
    ctx = context(answers=caps(network=50, overall=100, per_address=3))
    with pg_database() as url:
        _answer_at_once(ctx, url)


def _answer_at_once(ctx: Context, url: str) -> None:
    engine = open_store(url)
    barrier = threading.Barrier(10)
    allowed: list[bool] = []

    def one() -> None:
        with engine.begin() as conn:
            barrier.wait()
            verdict = ratelimit.answer_allowed(conn, ctx, "victim@example.jp")
            time.sleep(0.05)
        allowed.append(verdict)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert allowed.count(True) == 3 and len(allowed) == 10
