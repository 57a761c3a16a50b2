"""The outbound message: every header issue 6 lists, the footer, and DKIM that verifies."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from haishin.delivery.dkim import DkimKey
from haishin.delivery.render import RenderContext, Rendered, render
from haishin.registry import load_valid

CONFIG = Path(__file__).resolve().parents[2] / "config"
REG = load_valid(CONFIG)
SITE = "https://mail.city.kawasaki.example.jp/"


def _ctx(slug: str = "gomi-recycle", keys: tuple[DkimKey, ...] = ()) -> RenderContext:
    assert REG.service is not None
    channel = REG.channels[slug].value
    return RenderContext(
        REG.service.value,
        channel,
        REG.departments[channel.department],
        web_url=SITE,
        channel_url=f"{SITE}channels/{slug}/",
        archive_url=f"{SITE}channels/{slug}/archive/" if channel.archive == "public" else None,
        dkim_keys=keys,
    )


def _post(ctx: RenderContext) -> Rendered:
    return render(
        ctx,
        "p42",
        "年末年始のごみ収集日について",
        "12月31日から1月3日まで、ごみの収集を休みます。\n",
        now=dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC),
        post_url=f"{SITE}channels/gomi-recycle/archive/p42/",
    )


def _parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def test_headers_of_a_delivered_post() -> None:
    msg = _parse(_post(_ctx()).for_recipient("abc..def@docomo.ne.jp", "t0ken"))
    domain = "mail.city.kawasaki.example.jp"
    assert msg["From"] == f"ごみ・リサイクル情報 <gomi-recycle@{domain}>"
    assert msg["To"] == "abc..def@docomo.ne.jp"
    assert msg["Reply-To"] == f"gomi-recycle-owner@{domain}"
    assert msg["Subject"] == "【川崎市】年末年始のごみ収集日について"
    assert msg["Date"] == "Tue, 01 Dec 2026 09:00:00 +0900"
    assert msg["Message-ID"] == f"<p42.gomi-recycle@{domain}>"
    assert msg["List-Id"] == f"ごみ・リサイクル情報 <gomi-recycle.{domain}>"
    assert msg["List-Unsubscribe"] == (
        f"<{SITE}u/t0ken>, <mailto:gomi-recycle-unsubscribe+t0ken@{domain}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Post"] == "NO"
    assert msg["List-Help"].strip() == (
        f"<mailto:gomi-recycle-request@{domain}?subject=help>, <{SITE}channels/gomi-recycle/>"
    )
    assert msg["List-Owner"] == f"<mailto:gomi-recycle-owner@{domain}>"
    assert msg["List-Archive"].strip() == f"<{SITE}channels/gomi-recycle/archive/>"
    assert msg["Archived-At"].strip() == f"<{SITE}channels/gomi-recycle/archive/p42/>"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content().replace("\r\n", "\n")  # base64 text is canonical CRLF
    assert body.startswith("12月31日から1月3日まで、ごみの収集を休みます。\n\n----\n")
    assert "発行: 川崎市 環境局 生活環境部 減量推進課" in body
    assert f"配信の停止: gomi-recycle-unsubscribe@{domain} に空メール" in body
    assert f"お問い合わせ: gomi-recycle-owner@{domain}" in body
    assert "t0ken" not in body  # the body is the same for everyone


def test_private_archive_has_no_archive_headers() -> None:
    ctx = _ctx("kaigo-yobou")
    msg = _parse(render(ctx, "p1", "教室のご案内", "本文\n").for_recipient("a@example.jp", "t"))
    assert msg["List-Archive"] is None
    assert msg["Archived-At"] is None


def test_only_to_and_list_unsubscribe_differ_between_recipients() -> None:
    post = _post(_ctx())
    one, two = post.for_recipient("a@example.jp", "aaa"), post.for_recipient("b@example.jp", "bbb")
    diff = set(one.split(b"\r\n")) ^ set(two.split(b"\r\n"))
    assert sorted(diff) == sorted(
        [
            b"To: a@example.jp",
            b"To: b@example.jp",
            b"List-Unsubscribe: <https://mail.city.kawasaki.example.jp/u/aaa>, "
            b"<mailto:gomi-recycle-unsubscribe+aaa@mail.city.kawasaki.example.jp>",
            b"List-Unsubscribe: <https://mail.city.kawasaki.example.jp/u/bbb>, "
            b"<mailto:gomi-recycle-unsubscribe+bbb@mail.city.kawasaki.example.jp>",
        ]
    )


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_dkim_signature_verifies_and_covers_the_list_headers(kind: str) -> None:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    dkey = DkimKey(b"mail.city.kawasaki.example.jp", b"haishin", key)
    raw = _post(_ctx(keys=(dkey,))).for_recipient("a@example.jp", "tok")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"haishin._domainkey.mail.city.kawasaki.example.jp."
        return dkey.public_txt()

    assert dkimpy.verify(raw, dnsfunc=dns)
    signed = dkimpy.util.parse_tag_value(
        _parse(raw)["DKIM-Signature"].encode().replace(b"\r\n", b"").replace(b"\n", b"")
    )[b"h"].split(b":")
    for header in (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"list-id",
        b"content-type",
        b"mime-version",
    ):
        assert header in signed
    tampered = raw.replace(b"/u/tok>", b"/u/evil>")
    assert not dkimpy.verify(tampered, dnsfunc=dns)


def test_dual_signature_rsa_and_ed25519() -> None:
    keys = (
        DkimKey(
            b"mail.city.kawasaki.example.jp",
            b"rsa",
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ),
        DkimKey(b"mail.city.kawasaki.example.jp", b"ed", ed25519.Ed25519PrivateKey.generate()),
    )
    raw = _post(_ctx(keys=keys)).for_recipient("a@example.jp", "tok")
    by_selector = {k.selector: k for k in keys}

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return by_selector[name.split(b".")[0]].public_txt()

    assert raw.count(b"DKIM-Signature:") == 2
    verifier = dkimpy.DKIM(raw)
    assert verifier.verify(idx=0, dnsfunc=dns)
    assert verifier.verify(idx=1, dnsfunc=dns)
