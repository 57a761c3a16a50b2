"""Step 1, the sender (第5条): only a listed sender's mail is a post.

Mail to `<slug>@` from anyone else is not refused and not answered: the router forwards
it to the channel's 情報管理者 as an inquiry (第5条3(3), router/dispatch.py
`_from_stranger`, which says why: the sender may be forged). Being listed only makes a
post eligible; approval (step 4) is what lets it go out (posting/senders.py).
"""

from __future__ import annotations

from ...registry.model import Channel
from ..policy.base import Finding, PostVerdict
from ..senders import is_sender
from .base import Arrival

NAME = "sender"


def judge(channel: Channel, address: str | None) -> Finding:
    if address is not None and is_sender(channel, address):
        return Finding(NAME, PostVerdict.PASS, "登録された配信者です（第5条）")
    return Finding(
        NAME,
        PostVerdict.FORWARD,
        "登録された配信者ではありません。情報管理者へ問い合わせとして転送します（第5条3(3)）",
    )


def check(arrival: Arrival) -> tuple[Finding, ...]:
    return (judge(arrival.channel, arrival.sender),)
