"""The address contract applied to recipients (directory.py): what each address asks for, and what is refused at RCPT."""

from __future__ import annotations

import datetime as dt

from haishin.directory import UNKNOWN, Directory, Kind, Refusal, Target
from haishin.registry import load_valid
from haishin.tokens import (
    Keyring,
    Purpose,
)
from support.helpers import CONFIG, DOMAIN
from support.statuscodes import Code

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


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
    assert (
        isinstance(stopped, Refusal)
        and stopped.code == Code.MAILBOX_UNAVAILABLE
        and "stopped" in stopped.text
    )
    assert d.classify(f"sports-event-subscribe@{DOMAIN}") == Target(
        Kind.SUBSCRIBE, "sports-event"
    )  # paused: served


def test_mypage_addresses() -> None:
    """`mypage@` is service-wide; `mypage+<token>@` exists only for a change-of-address
    token of ours that has not expired (issue 14)."""
    d = Directory(load_valid(CONFIG), KEY)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    move = KEY.make(Purpose.MOVE, 3, later)
    assert d.classify(f"MyPage@{DOMAIN}") == Target(Kind.MYPAGE, None)
    assert d.classify(f"mypage+{move.upper()}@{DOMAIN}") == Target(Kind.MYPAGE, None, move)
    page = KEY.make(Purpose.MYPAGE, 3, later)  # the page's own token is not an address
    for refused in (
        page,
        "a" * 26,  # forged
        KEY.make(Purpose.MOVE, 3, dt.datetime(2021, 1, 1, tzinfo=dt.UTC)),  # expired
    ):
        got = d.classify(f"mypage+{refused}@{DOMAIN}")
        assert isinstance(got, Refusal) and got.code == Code.MAILBOX_UNAVAILABLE, refused
    assert d.classify(f"mypage+{move}1@{DOMAIN}") is UNKNOWN
    assert d.classify(f"mypage-subscribe@{DOMAIN}") is UNKNOWN
    assert d.classify("mypage@example.jp") is UNKNOWN
