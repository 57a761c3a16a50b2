"""The service's name comes from service.yaml (第10条: service-level matters are settings,
not code): a registry whose service has another name shows that name in the confirmation
request and in a reply, and no text keeps the sample's city."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import sqlalchemy as sa

from haishin.commands import membership
from haishin.context import Context, Outcome
from haishin.directory import Directory
from haishin.registry import Located, load_valid
from haishin.registry.notice import render_notice
from haishin.store import open_store
from haishin.store.schema import outbound_messages
from haishin.tokens import Keyring, Purpose
from support.helpers import CONFIG

NAME = "見本市電子メール配信サービス"
SLUG = "gomi-recycle"
CITIZEN = "taro@example.jp"


def _renamed() -> Context:
    reg = load_valid(CONFIG)
    assert reg.service is not None
    service = reg.service.value.model_copy(update={"name": NAME})
    reg = dataclasses.replace(reg, service=Located(service, reg.service.doc))
    return Context(Directory(reg, Keyring(b"k" * 32)), Keyring(b"k" * 32), "http://t/")


def _sent(engine: sa.Engine) -> list[tuple[str, EmailMessage]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbound_messages.c.kind, outbound_messages.c.raw).order_by(
                outbound_messages.c.id
            )
        ).all()
    parse = BytesParser(policy=policy.default)
    return [(str(kind), parse.parsebytes(bytes(raw))) for kind, raw in rows]  # type: ignore[misc]


def _texts(msg: EmailMessage) -> tuple[str, str, str]:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(msg["Subject"]), str(msg["From"]), body.get_content()


def test_the_configured_name_is_in_the_confirmation_and_the_reply(sqlite_url: str) -> None:
    ctx = _renamed()
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        outcome = membership.request_subscribe(conn, ctx, SLUG, CITIZEN, origin="test")
        assert outcome is Outcome.CONFIRMATION_SENT
        pending = conn.execute(sa.text("SELECT id FROM confirmations")).scalar_one()
    token = ctx.keyring.make(
        Purpose.CONFIRM, pending, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    with engine.begin() as conn:
        outcome = membership.confirm(
            conn, ctx, token, method="test", evidence="test", answer_to=CITIZEN
        )
        assert outcome is Outcome.SUBSCRIBED
    (confirm_kind, confirmation), (reply_kind, welcome) = _sent(engine)
    assert (confirm_kind, reply_kind) == ("confirm", "reply")
    for msg in (confirmation, welcome):
        subject, sender, body = _texts(msg)
        assert subject.startswith(f"【{NAME}】"), subject
        # the display name; decoding encoded-words may double the space between them
        assert sender.replace(" ", "").startswith(f"{NAME}ごみ・リサイクル情報<"), sender
        assert NAME in body
        assert "川崎市" not in subject + sender + body
    assert f"{NAME}の「ごみ・リサイクル情報」への登録" in _texts(confirmation)[2]
    engine.dispose()


def test_the_configured_name_is_in_form2() -> None:
    """The Form 2 notice (第6条) names the service and its rules by the configured name."""
    reg = _renamed().registry
    text = render_notice(reg, "R6-0007")
    assert f"申請のあった{NAME}の変更について、{NAME}運営要領第６条第２項" in text
    assert "川崎市電子メール配信サービス" not in text
