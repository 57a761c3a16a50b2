"""A subject that says what the post is, short enough for a phone's list (第3条(2))."""

from __future__ import annotations

from ...registry.model import Policy
from .base import Finding, PostVerdict, PostView, passed

NAME = "subject"


def check(post: PostView, policy: Policy) -> Finding:
    subject = post.subject.strip()
    if not subject:
        return Finding(
            NAME, PostVerdict.REFUSE, "件名がありません。内容がわかる件名を付けてください。"
        )
    if len(subject) > policy.subject_max_length:
        return Finding(
            NAME,
            PostVerdict.REFUSE,
            f"件名が長すぎます（{len(subject)} 文字、上限 {policy.subject_max_length} 文字）。"
            "件名を短くしてください。",
        )
    return passed(NAME)
