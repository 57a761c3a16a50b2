"""The envelope of mail that came without one (IMAP): sender and recipients from the headers."""

from __future__ import annotations

import datetime as dt

from haishin.directory import Directory
from haishin.registry import load_valid
from haishin.tokens import (
    Keyring,
)
from support.helpers import CONFIG, DOMAIN

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


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
