"""Text only, or HTML with a plain-text part when the service allows HTML (第3条(2)).

Many residents read on feature phones and text-only clients; a plain-text part is what
every one of them can show.
"""

from __future__ import annotations

from ...registry.model import Policy
from .base import Finding, PostVerdict, PostView, passed

NAME = "content-types"


def check(post: PostView, policy: Policy) -> Finding:
    body = [p for p in post.parts if not p.attachment]
    has_text = any(p.content_type == "text/plain" for p in body)
    has_html = any(p.content_type == "text/html" for p in body)
    if has_html and not policy.allow_html:
        return Finding(
            NAME,
            PostVerdict.REFUSE,
            "HTML 形式のメールは配信できません。メールソフトの設定で「テキスト形式」にして送ってください。",
        )
    if not has_text:
        return Finding(
            NAME,
            PostVerdict.REFUSE,
            "本文（テキスト）がありません。本文をテキスト形式で書いて送ってください。",
        )
    return passed(NAME)
