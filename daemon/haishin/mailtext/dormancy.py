"""The reminder to a 情報管理者 whose channel has been quiet (第5条4: keep distributing so
that subscribers keep their trust), in Japanese."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QuietFacts:
    service: str
    slug: str
    title: str
    department: str
    manager: str  # title and name of the 情報管理者
    last_post: dt.date | None  # None: nothing sent since the channel was registered
    since: dt.date  # the last post's day, or the registration day
    days: int
    threshold: int  # service.yaml dormant_after_days
    inquiry_address: str


def dormancy_reminder(f: QuietFacts) -> tuple[str, str]:
    """(subject, body)."""
    subject = f"【{f.service}】配信のない状態が続いています: {f.title}"
    if f.last_post is None:
        last = f"登録（{f.since:%Y年%m月%d日}）以来、配信がありません。"
    else:
        last = f"最終配信日: {f.last_post:%Y年%m月%d日}"
    body = "\n".join(
        [
            f"{f.department}",
            f"{f.manager} 様",
            "",
            f"{f.service}の統括管理者です。",
            f"次のチャネルで {f.days} 日間、配信がありません"
            f"（{f.threshold} 日を過ぎると、このお知らせを 1 度だけお送りしています）。",
            "",
            f"  チャネル: {f.title}（{f.slug}）",
            f"  {last}",
            "",
            "運営要領第5条4により、情報管理者は利用者の信頼を損なわないよう継続的に配信を"
            "行うこととされています。配信の予定をご確認ください。",
            "配信の予定がなくなった場合は、利用の廃止の申請（様式第1号）をご検討ください。",
            "",
            "次に配信があれば、それから数え直します。",
            f"お問い合わせ: {f.inquiry_address}",
        ]
    )
    return subject, body + "\n"
