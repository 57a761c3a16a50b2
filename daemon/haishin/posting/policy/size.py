"""The whole message stays within the size the service allows (第3条(2))."""

from __future__ import annotations

from ...registry.model import Policy
from .base import Finding, PostVerdict, PostView, passed

NAME = "size"


def check(post: PostView, policy: Policy) -> Finding:
    limit = policy.max_size_kb * 1024
    if post.size <= limit:
        return passed(NAME)
    return Finding(
        NAME,
        PostVerdict.REFUSE,
        f"メールの大きさが上限の {policy.max_size_kb} KB を超えています"
        f"（このメールは {-(-post.size // 1024)} KB）。画像や添付ファイルを外し、本文を短くしてください。",
    )
