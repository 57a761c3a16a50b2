"""Issue 14 item 4: a paused channel (第3条5) takes subscriptions, as its page says
(登録と解除は、停止中もできます); the confirmation and the welcome say until when its posts
are held. Its posts stay held (tests/posting/test_holds.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from haishin.store import subscribers
from haishin.store.subscribers import Status
from support.helpers import CONFIG, DOMAIN
from support.inprocess import InProcess, inprocess

SLUG = "sports-event"  # paused in the sample registry, with no end date


@pytest.fixture
def ip(db_url: str, tmp_path: Path) -> Iterator[InProcess]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with inprocess(db_url, config) as handlers:
        yield handlers


def _subscribe_by_mail(ip: InProcess, citizen: str) -> str:
    """An empty mail to <slug>-subscribe@, then a reply to the confirmation; the welcome."""
    ip.deliver(
        f"From: {citizen}\r\nSubject: \r\n\r\n".encode(), citizen, [f"{SLUG}-subscribe@{DOMAIN}"]
    )
    [request] = ip.mail(citizen, "登録の確認")
    assert "一時停止" in request.body and "登録はできます" in request.body
    reply = EmailMessage()
    reply["From"] = citizen
    reply["To"] = request.msg["Reply-To"]
    reply["Subject"] = "Re: " + request.subject
    reply.set_content("")
    ip.deliver(reply.as_bytes(policy=policy.SMTP), citizen, [str(request.msg["Reply-To"])])
    [welcome] = ip.mail(citizen, "登録が完了しました")
    with ip.engine.connect() as conn:
        sub = subscribers.find(conn, SLUG, citizen)
    assert sub is not None and sub.status is Status.ACTIVE
    return welcome.body


def test_a_paused_channel_subscribes_and_says_resumption_is_not_yet_decided(
    ip: InProcess,
) -> None:
    body = _subscribe_by_mail(ip, "fan@example.jp")
    assert "現在、配信を一時停止しています（再開の時期は、決まりしだい" in body
    assert "再開後の配信からお届けします" in body
    assert "次回の配信から" not in body


def test_the_welcome_names_the_day_the_pause_ends(ip: InProcess) -> None:
    channel = ip.config / "channels" / f"{SLUG}.yaml"
    channel.write_text(
        channel.read_text(encoding="utf-8").replace(
            "  by: general_manager\n", "  by: general_manager\n  until: 2099-01-15\n"
        ),
        encoding="utf-8",
    )
    ip.reload()
    body = _subscribe_by_mail(ip, "fan2@example.jp")
    assert "現在、配信を一時停止しています（2099年1月15日までの予定です）" in body


def test_an_active_channels_welcome_says_nothing_of_a_pause(ip: InProcess) -> None:
    citizen = "plain@example.jp"
    ip.deliver(b"Subject: \r\n\r\n", citizen, [f"gomi-recycle-subscribe@{DOMAIN}"])
    [request] = ip.mail(citizen, "登録の確認")
    assert "一時停止" not in request.body
