"""Commands in a mail to `<slug>-request@`: the subject or the first line, reply prefixes, quoted links."""

from __future__ import annotations

import datetime as dt

import pytest

from haishin.commands.request import Command, parse, strip_reply_prefix
from haishin.tokens import (
    Keyring,
    Purpose,
    Verdict,
)

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


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
        ("一覧", "", Command.MYPAGE),  # issue 14: the link to the citizen's own page
        ("", "一覧を見たい\n", Command.MYPAGE),
        ("ﾏｲﾍﾟｰｼﾞ", "", Command.MYPAGE),
        ("MyPage", "", Command.MYPAGE),
    ],
)
def test_commands(subject: str, body: str, expected: Command | None) -> None:
    assert parse(subject, body)[0] is expected


def test_reply_prefixes() -> None:
    assert strip_reply_prefix("ＲＥ：Re: RE[2]: Fwd: 確認") == "確認"


def test_quoted_unsubscribe_link_is_not_a_confirmation() -> None:
    confirm = KEY.make(Purpose.CONFIRM, 7, NOW + dt.timedelta(hours=1))
    unsub = KEY.make(Purpose.UNSUBSCRIBE, 7, NOW + dt.timedelta(days=300))

    def is_confirmation(t: str) -> bool:
        return KEY.open(Purpose.CONFIRM, t, NOW).verdict is not Verdict.INVALID

    thanks = f"ありがとう\n> 配信の停止: http://x/unsubscribe/{unsub}\n"
    welcome = "Re: 【川崎市】登録が完了しました: ごみ・リサイクル情報"
    assert parse(welcome, thanks, is_confirmation) == (None, None)
    assert parse(f"Re: [confirm {confirm}]", thanks, is_confirmation) == (Command.CONFIRM, confirm)
