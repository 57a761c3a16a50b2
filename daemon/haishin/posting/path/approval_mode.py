"""Step 4, the approval mode (第5条: the 情報管理者 answers for what is sent): every post
is held; who lets it go depends on the channel's `approval`."""

from __future__ import annotations

from ...registry.model import Approval
from ..policy.base import Finding, PostVerdict
from .base import Arrival

NAME = "approval"

_BY_MODE = {
    Approval.CONFIRM: Finding(
        NAME, PostVerdict.HOLD, "配信者本人の確認を待ちます（confirm, 第5条）"
    ),
    Approval.MANAGER: Finding(
        NAME, PostVerdict.HOLD, "情報管理者の承認を待ちます（manager, 第5条）"
    ),
    # the daemon verifies the signature itself, after the post is stored
    # (posting/authenticated.py); anything less falls back to `confirm`
    Approval.AUTHENTICATED: Finding(
        NAME, PostVerdict.VERIFY, "DKIM 署名を検証してから承認します（authenticated, 第5条）"
    ),
}


def check(arrival: Arrival) -> tuple[Finding, ...]:
    return (_BY_MODE[arrival.channel.approval],)
