"""Reading mail: Japanese charsets (ISO-2022-JP with CP50220's extensions, Shift_JIS, encoded words), the mailbox parser, composed mail read back, Message-IDs with control bytes."""

from __future__ import annotations

import datetime as dt

import pytest

from haishin.mailtext.charsets import decode_header, decode_iso2022jp, decode_text
from haishin.mailtext.incoming import read
from haishin.mailtext.mailbox import mailbox
from haishin.tokens import (
    Keyring,
)
from support.helpers import cp50220

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


@pytest.mark.parametrize("text", ["登録①㈱", "ＲＥ：ﾃｽﾄ", "～－￠￡￢∥", "髙﨑", "abc"])
def test_cp50220_decodes(text: str) -> None:
    assert decode_iso2022jp(cp50220(text)) == text


def test_other_charsets_and_encoded_words() -> None:
    assert decode_text("登録".encode("cp932"), "Shift_JIS") == "登録"
    assert decode_text("登録".encode("euc_jp"), "EUC-JP") == "登録"
    assert decode_text("登録".encode(), None) == "登録"
    assert decode_text("登録".encode("cp932"), None) == "登録"  # undeclared 8-bit
    assert decode_header("=?UTF-8?B?55m76Yyy?= =?utf-8?q?=E3=81=97?=") == "登録し"
    assert decode_header("=?x-unknown?B?####?=") == "=?x-unknown?B?####?="


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("abc..def@docomo.ne.jp", True),
        ("abc.@ezweb.ne.jp", True),
        (".abc@softbank.ne.jp", True),
        ('"abc..def"@docomo.ne.jp', True),
        ("a b@example.jp", False),
        ("a@b@example.jp", True),  # rpartition: the local part "a@b" is refused below
        ("a\r\nBcc: x@y.jp", False),
        ("<x@example.jp>", True),
        ("x@localhost", False),
        ("x@example.xn--q9jyb4c", True),
        ("x@-bad-.jp", False),
        ("x" * 65 + "@example.jp", False),
    ],
)
def test_mailbox(text: str, ok: bool) -> None:
    result = mailbox(text)
    if text == "a@b@example.jp":
        assert result is None
    else:
        assert (result is not None) is ok


def test_composed_messages_read_back_with_policy_default() -> None:
    import datetime as dt
    from email import policy
    from email.parser import BytesParser

    from haishin.mailtext import texts
    from haishin.mailtext.compose import compose

    about = texts.About(
        service="川崎市電子メール配信サービス", site_url="https://x/", slug="gomi-recycle",
        title="ごみ・リサイクル情報" * 3, department="環境局 生活環境部 減量推進課",
        manager="減量推進課長 宮前 四郎", contact="電話: 044\n", owner_address="o@x.jp",
        request_address="r@x.jp", subscribe_address="s@x.jp", unsubscribe_address="u@x.jp",
    )  # fmt: skip
    made = [
        texts.confirm_subscribe(about, "a" * 26, "https://x/confirm/aaa", 72),
        texts.confirm_unsubscribe(about, "a" * 26, "https://x/confirm/aaa", 72),
        texts.welcome(about, "https://x/u"),
        texts.goodbye(about),
        texts.already_subscribed(about),
        texts.not_subscribed(about),
        texts.expired(about),
        texts.confirm_subscribe(about, "a" * 26, "https://x/c", 72, texts.Resumes(None)),
        texts.welcome(about, "https://x/u", texts.Resumes(dt.date(2099, 1, 15))),
        texts.unavailable(about),
        texts.help_text(about),
    ]
    for subject, body in made:
        raw = compose(
            from_name="川崎市 " + about.title, from_addr="gomi-recycle-request@x.jp",
            to="abc..def@docomo.ne.jp", subject=subject, body=body, domain="x.jp",
            reply_to="gomi-recycle-confirm+" + "a" * 26 + "@x.jp", in_reply_to="<m@x>",
            attachment=b"From: a@b\r\nSubject: orig\r\n\r\nhi\r\n",
        )  # fmt: skip
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert msg["Subject"] == subject
        # CPython's phrase parser keeps the folding space between encoded-words (RFC 2047
        # §6.2 says drop it); MUAs do drop it, so compare without spaces
        shown = msg["From"].addresses[0].display_name
        assert shown.replace(" ", "") == ("川崎市 " + about.title).replace(" ", "")
        assert msg["To"] == "abc..def@docomo.ne.jp"
        assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == body  # type: ignore[union-attr]
        assert [p.get_content_type() for p in msg.iter_attachments()] == ["message/rfc822"]
        assert not [d for d in msg.defects]
    with pytest.raises(ValueError):
        compose(
            from_name="x", from_addr="a@b", to="v@x\r\nBcc: w@y", subject="s", body="b", domain="x"
        )


def test_a_message_id_with_control_bytes_is_not_copied_into_replies() -> None:

    raw = b"From: a@example.jp\r\nMessage-ID: <x\x01y@example.jp>\r\nSubject: help\r\n\r\n"
    assert read(raw, "a@example.jp").message_id is None
    good = b"From: a@example.jp\r\nMessage-ID: <ok.1@example.jp>\r\n\r\n"
    assert read(good, "a@example.jp").message_id == "<ok.1@example.jp>"
