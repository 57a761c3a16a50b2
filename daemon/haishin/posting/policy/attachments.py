"""No attachments unless the service allows them (第3条(2))."""

from __future__ import annotations

from ...registry.model import Policy
from .base import Finding, PostVerdict, PostView, passed

NAME = "attachments"


def check(post: PostView, policy: Policy) -> Finding:
    attached = [p for p in post.parts if p.attachment]
    if not attached or policy.allow_attachments:
        return passed(NAME)
    names = "、".join(p.filename or p.content_type for p in attached[:5])
    return Finding(
        NAME,
        PostVerdict.REFUSE,
        f"添付ファイルは配信できません（{names}）。添付を外し、"
        "資料は市のホームページに掲載してその URL を本文に書いてください。",
    )
