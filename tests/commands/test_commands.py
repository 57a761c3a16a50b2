"""Commands in process, on a real SQLite file: rate limits, expiry, the inquiry forward."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email import policy
from email.parser import BytesParser

import sqlalchemy as sa

from haishin.commands import membership
from haishin.context import Context, Outcome
from haishin.directory import Directory
from haishin.registry import Located, load_valid
from haishin.registry.model import AnswerLimits, Cap
from haishin.router.worker import process_batch
from haishin.store import open_store, spool, subscribers
from haishin.store.schema import outbound, outbound_messages
from haishin.tokens import Keyring, Purpose
from support.helpers import CONFIG


def context(**limits: object) -> Context:
    reg = load_valid(CONFIG)
    assert reg.service is not None
    service = reg.service.value
    changed = service.model_copy(update={"limits": service.limits.model_copy(update=limits)})
    reg = dataclasses.replace(reg, service=Located(changed, reg.service.doc))
    return Context(Directory(reg, Keyring(b"k" * 32)), Keyring(b"k" * 32), "http://t/")


def test_global_hourly_limit(sqlite_url: str) -> None:
    ctx = context(
        confirmations=AnswerLimits(
            per_address=Cap(count=3, window_hours=24),
            per_network=Cap(count=2),
            overall=Cap(count=3),
        )
    )
    engine = open_store(sqlite_url)
    outcomes = []
    for i in range(5):  # separate transactions, and then within one
        with engine.begin() as conn:
            outcomes.append(
                membership.request_subscribe(
                    conn, ctx, "gomi-recycle", f"p{i}@example.jp", origin="t"
                )
            )
    assert outcomes == [Outcome.CONFIRMATION_SENT] * 3 + [Outcome.RATE_LIMITED] * 2
    engine.dispose()
    engine = open_store(sqlite_url.replace("haishin.db", "second.db"))
    with engine.begin() as conn:
        got = [
            membership.request_subscribe(conn, ctx, "gomi-recycle", f"q{i}@example.jp", origin="t")
            for i in range(5)
        ]
    assert got == [Outcome.CONFIRMATION_SENT] * 3 + [Outcome.RATE_LIMITED] * 2
    engine.dispose()


def test_confirmation_expires_and_is_used_once(sqlite_url: str) -> None:
    ctx = context(token_ttl_hours=1)
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        membership.request_subscribe(conn, ctx, "gomi-recycle", "x@example.jp", origin="t")
        pending_id = conn.execute(sa.text("SELECT id FROM confirmations")).scalar_one()
    token = ctx.keyring.make(
        Purpose.CONFIRM, pending_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    old = ctx.keyring.make(
        Purpose.CONFIRM, pending_id, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    )
    with engine.begin() as conn:
        assert (
            membership.confirm(conn, ctx, old, method="t", evidence="t", answer_to=None)
            is Outcome.EXPIRED
        )
        assert (
            membership.confirm(conn, ctx, token, method="t", evidence="t", answer_to=None)
            is Outcome.SUBSCRIBED
        )
        # used once: a second press finds the work done and says so (issue 14 item 3)
        assert (
            membership.confirm(conn, ctx, token, method="t", evidence="t", answer_to=None)
            is Outcome.ALREADY_SUBSCRIBED
        )
        sub = subscribers.find(conn, "gomi-recycle", "x@example.jp")
        assert sub is not None
        subscribers.unsubscribe(conn, sub.id, method="t")
        # no longer true: the used link has nothing done to show, so it has expired
        assert (
            membership.confirm(conn, ctx, token, method="t", evidence="t", answer_to=None)
            is Outcome.EXPIRED
        )
    engine.dispose()


def test_inquiry_goes_to_the_general_manager_with_the_sender_for_reply(sqlite_url: str) -> None:
    ctx = context()
    engine = open_store(sqlite_url)
    raw = (
        "From: =?utf-8?b?5biC5rCR?= <citizen@example.jp>\r\nTo: toiawase@mail.city.kawasaki.example.jp\r\n"
        "Subject: =?utf-8?b?44K144O844OT44K544Gr44Gk44GE44Gm?=\r\nMessage-ID: <q1@example.jp>\r\n\r\n"
        "登録の方法を教えてください。\r\n"
    ).encode()
    spool.put(engine, raw, "citizen@example.jp", ["toiawase@mail.city.kawasaki.example.jp"], "smtp")
    assert process_batch(engine, ctx, spool.fetch_new(engine, 10)) == 1
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(outbound.c.rcpt, outbound.c.mail_from, outbound_messages.c.raw).join(
                outbound_messages, outbound_messages.c.id == outbound.c.message_id
            )
        ).one()
    assert row.rcpt == "promo-kanri@city.kawasaki.example.jp"  # 統括管理者 (第3条(1))
    assert row.mail_from == ""  # RFC 3834 §3.3: a forward's bounce cannot loop
    msg = BytesParser(policy=policy.default).parsebytes(row.raw)
    assert msg["Reply-To"] == "citizen@example.jp"
    assert "サービスについて" in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-forwarded"
    original = next(msg.iter_attachments())
    assert original.get_content_type() == "message/rfc822"
    assert "登録の方法" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    engine.dispose()


def test_forged_mail_cannot_flood_a_stranger(sqlite_url: str) -> None:
    """Answers that need no confirmation (not subscribed, help, expired…) are limited per
    address too: 40 forged requests in a stranger's name give them at most the limit."""
    ctx = context(
        auto_replies=AnswerLimits(
            per_address=Cap(count=4, window_hours=24),
            per_network=Cap(count=300),
            overall=Cap(count=5000),
        )
    )
    engine = open_store(sqlite_url)
    domain = "mail.city.kawasaki.example.jp"
    victim = "victim@example.jp"
    for i in range(40):
        rcpt = f"gomi-recycle-unsubscribe@{domain}" if i % 2 else f"kenshin-info-request@{domain}"
        raw = f"From: {victim}\r\nSubject: help\r\nMessage-ID: <f{i}@x.example>\r\n\r\n".encode()
        spool.put(engine, raw, victim, [rcpt], "smtp")
    while rows := spool.fetch_new(engine, 16):
        process_batch(engine, ctx, rows)
    with engine.connect() as conn:
        sent = conn.execute(
            sa.select(sa.func.count()).select_from(outbound).where(outbound.c.rcpt == victim)
        ).scalar_one()
        assert sent == 4
        assert spool.counts(engine) == {"done": 40}  # refused answers still finish the mail
    engine.dispose()
