"""Small parts: tokens, charsets, the address contract, loops, commands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from haishin.commands.request import Command, parse, strip_reply_prefix
from haishin.directory import UNKNOWN, Directory, Kind, Refusal, Target
from haishin.mailtext.charsets import decode_header, decode_iso2022jp, decode_text
from haishin.mailtext.incoming import read
from haishin.mailtext.mailbox import mailbox
from haishin.registry import load_valid
from haishin.router.loops import why_not_answer
from haishin.tokens import (
    TOKEN_LEN,
    KeyMissing,
    Keyring,
    Purpose,
    Verdict,
    find_tokens,
    load_keyring,
)

from .helpers import CONFIG, DOMAIN, cp50220

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


def test_tokens_round_trip_case_insensitive_and_bounded() -> None:
    t = KEY.make(Purpose.CONFIRM, 123456789, NOW + dt.timedelta(hours=72))
    assert len(t) == TOKEN_LEN <= 26 and t == t.lower()
    assert KEY.open(Purpose.CONFIRM, t.upper(), NOW).ident == 123456789
    assert KEY.open(Purpose.CONFIRM, t, NOW + dt.timedelta(hours=74)).verdict is Verdict.EXPIRED
    assert KEY.open(Purpose.UNSUBSCRIBE, t, NOW).verdict is Verdict.INVALID  # purpose in the MAC
    assert Keyring(b"j" * 32).open(Purpose.CONFIRM, t, NOW).verdict is Verdict.INVALID
    flipped = ("b" if t[5] != "b" else "c").join((t[:5], t[6:]))
    assert KEY.open(Purpose.CONFIRM, flipped, NOW).verdict is Verdict.INVALID
    assert KEY.open(Purpose.CONFIRM, "short", NOW).verdict is Verdict.INVALID
    assert find_tokens(f"Re: 確認 [confirm {t.upper()}]") == [t]


def test_keyring_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAISHIN_SECRET", raising=False)
    monkeypatch.delenv("HAISHIN_SECRET_FILE", raising=False)
    with pytest.raises(KeyMissing, match="がありません"):
        load_keyring(tmp_path / "secret")  # an admin command never mints a second key
    assert not (tmp_path / "secret").exists()
    k1 = load_keyring(tmp_path / "secret", create=True)  # the daemon does, once
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert load_keyring(tmp_path / "secret") == k1
    monkeypatch.setenv("HAISHIN_SECRET", "x" * 20)
    assert load_keyring(None).key == b"x" * 20
    assert KEY.redact("A@b.jp") == KEY.redact("a@B.JP") and "a@b" not in KEY.redact("a@b.jp")


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
    ("subject", "body", "expected"),
    [
        ("登録", "", Command.SUBSCRIBE),
        ("", "\n\n解除\n", Command.UNSUBSCRIBE),
        ("ﾍﾙﾌﾟ", "", Command.HELP),
        ("ＳＵＢＳＣＲＩＢＥ", "", Command.SUBSCRIBE),
        ("Re: RE: ＲＥ：登録解除", "", Command.UNSUBSCRIBE),
        ("", "> 登録\n", None),  # quoted text is not a command
        ("hello", "", None),
    ],
)
def test_commands(subject: str, body: str, expected: Command | None) -> None:
    assert parse(subject, body)[0] is expected


def test_reply_prefixes() -> None:
    assert strip_reply_prefix("ＲＥ：Re: RE[2]: Fwd: 確認") == "確認"


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


def test_address_contract() -> None:
    d = Directory(load_valid(CONFIG), KEY)
    tok = "a" * 26
    # a token of ours for each address (a forged one is refused: test_intake_tokens.py)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    confirm, verp = KEY.make(Purpose.CONFIRM, 7, later), KEY.make(Purpose.VERP, 7, later)
    assert d.classify(f"gomi-recycle@{DOMAIN}") == Target(Kind.POST, "gomi-recycle")
    assert d.classify(f"Gomi-Recycle-Subscribe@{DOMAIN.upper()}") == Target(
        Kind.SUBSCRIBE, "gomi-recycle"
    )
    assert d.classify(f"gomi-recycle-confirm+{confirm.upper()}@{DOMAIN}") == Target(
        Kind.CONFIRM, "gomi-recycle", confirm
    )
    assert d.classify(f"gomi-recycle-bounces+{verp}@{DOMAIN}") == Target(
        Kind.BOUNCES, "gomi-recycle", verp
    )
    assert d.classify(f"toiawase@{DOMAIN}") == Target(Kind.INQUIRY, None)
    assert d.classify(f"gomi-recycle-owner+{tok}@{DOMAIN}") is UNKNOWN
    assert d.classify(f"gomi-recycle-confirm+{tok}1@{DOMAIN}") is UNKNOWN  # 1 is not base32
    assert d.classify(f"nope-subscribe@{DOMAIN}") is UNKNOWN
    stopped = d.classify(f"kigyou-shien-subscribe@{DOMAIN}")
    assert isinstance(stopped, Refusal) and stopped.code == 550 and "stopped" in stopped.text
    assert d.classify(f"sports-event-subscribe@{DOMAIN}") == Target(
        Kind.SUBSCRIBE, "sports-event"
    )  # paused: served


def test_loops() -> None:
    def msg(head: str) -> object:
        return read((head + "\r\n\r\nx\r\n").encode(), "a@example.jp").msg

    ok = msg("From: a@example.jp")
    assert why_not_answer(ok, "a@example.jp", "a@example.jp", DOMAIN) is None  # type: ignore[arg-type]
    assert why_not_answer(ok, "", "a@example.jp", DOMAIN)  # type: ignore[arg-type]
    assert why_not_answer(
        msg("Auto-Submitted: auto-replied; owner-email=x"), "a@example.jp", "a@example.jp", DOMAIN
    )  # type: ignore[arg-type]
    assert why_not_answer(msg("Auto-Submitted: No"), "a@example.jp", "a@example.jp", DOMAIN) is None  # type: ignore[arg-type]
    assert why_not_answer(ok, "x@" + DOMAIN, "a@example.jp", DOMAIN)  # type: ignore[arg-type]


def test_composed_messages_read_back_with_policy_default() -> None:
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
        texts.paused(about),
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


def test_envelope_for_imap() -> None:
    from haishin.inbound.envelope import envelope

    d = Directory(load_valid(CONFIG), KEY)
    raw = (
        f"Return-Path: <a..b@docomo.ne.jp>\r\nDelivered-To: gomi-recycle-subscribe@{DOMAIN}\r\n"
        f"To: someone@else.jp, kosodate-news-subscribe@{DOMAIN}\r\nFrom: a..b@docomo.ne.jp\r\n\r\n"
    ).encode()
    assert envelope(raw, d) == ("a..b@docomo.ne.jp", [f"gomi-recycle-subscribe@{DOMAIN}"])
    raw = f"Return-Path: <>\r\nTo: x <kosodate-news-subscribe@{DOMAIN}>\r\n\r\n".encode()
    assert envelope(raw, d) == ("", [f"kosodate-news-subscribe@{DOMAIN}"])
    raw = b"From: =?utf-8?b?5bed?= <c@example.jp>\r\nTo: nobody@example.jp\r\n\r\n"
    assert envelope(raw, d) == ("c@example.jp", [])


def test_quoted_unsubscribe_link_is_not_a_confirmation() -> None:
    confirm = KEY.make(Purpose.CONFIRM, 7, NOW + dt.timedelta(hours=1))
    unsub = KEY.make(Purpose.UNSUBSCRIBE, 7, NOW + dt.timedelta(days=300))

    def is_confirmation(t: str) -> bool:
        return KEY.open(Purpose.CONFIRM, t, NOW).verdict is not Verdict.INVALID

    thanks = f"ありがとう\n> 配信の停止: http://x/unsubscribe/{unsub}\n"
    welcome = "Re: 【川崎市】登録が完了しました: ごみ・リサイクル情報"
    assert parse(welcome, thanks, is_confirmation) == (None, None)
    assert parse(f"Re: [confirm {confirm}]", thanks, is_confirmation) == (Command.CONFIRM, confirm)


def test_a_message_id_with_control_bytes_is_not_copied_into_replies() -> None:
    from haishin.mailtext.incoming import read

    raw = b"From: a@example.jp\r\nMessage-ID: <x\x01y@example.jp>\r\nSubject: help\r\n\r\n"
    assert read(raw, "a@example.jp").message_id is None
    good = b"From: a@example.jp\r\nMessage-ID: <ok.1@example.jp>\r\n\r\n"
    assert read(good, "a@example.jp").message_id == "<ok.1@example.jp>"


def test_maildir_files_are_owner_only(tmp_path: Path) -> None:
    import os

    from haishin.outbound import maildir

    old = os.umask(0o022)
    try:
        maildir.ensure(tmp_path)
        path = maildir.deliver(tmp_path, "", "a@example.jp", b"To: a@example.jp\r\n\r\nx\r\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
