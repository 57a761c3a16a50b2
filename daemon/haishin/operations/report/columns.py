"""The report's columns, one table for the CSV, the HTML table and the plain text: the
header staff read, and where each value comes from."""

from __future__ import annotations

from collections.abc import Callable

from ...store.history import Cause
from ...store.monthly import Figures

# the bounce classes of bounces/classify/model.py BounceClass that the report counts
# (a `none` event, a success notice or an auto-reply, is no failure)
BOUNCE_CLASSES = {
    "permanent": "恒久的エラー",
    "temporary": "一時的エラー",
    "refused": "受信側の拒否",
    "complaint": "迷惑メール報告",
}

CAUSES = {
    Cause.CITIZEN: "本人",
    Cause.BOUNCE: "配信エラー",
    Cause.COMPLAINT: "迷惑メール報告",
    Cause.STAFF: "担当者",
}

Column = tuple[str, Callable[[Figures], int]]


def _left(cause: Cause) -> Callable[[Figures], int]:
    return lambda f: f.left[cause]


def _bounced(kind: str) -> Callable[[Figures], int]:
    return lambda f: f.bounces.get(kind, 0)


COLUMNS: list[Column] = [
    ("新規登録", lambda f: f.joined),
    *[(f"解除（{label}）", _left(cause)) for cause, label in CAUSES.items()],
    ("月末の登録者数", lambda f: f.active),
    ("配信回数", lambda f: f.posts),
    ("配信通数", lambda f: f.deliveries),
    *[(f"エラー（{label}）", _bounced(kind)) for kind, label in BOUNCE_CLASSES.items()],
]

TREND: list[Column] = [
    ("月末の登録者数", lambda f: f.active),
    ("新規登録", lambda f: f.joined),
    ("解除", lambda f: sum(f.left.values())),
    ("配信回数", lambda f: f.posts),
]
"""The 12-month trend: the chart's lines and its table (the chart's text alternative)."""
