"""The weekly bounce digest to a channel's 情報管理者, in Japanese.

The 情報管理者 manages the channel's recipients (第5条(2)), so the digest names the
disabled addresses in full; it also says that they are personal data (第4条).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from .texts import Text

KIND_LABELS = {
    "permanent": "恒久的なエラー（宛先不明など）",
    "temporary": "一時的なエラー（メールボックス容量超過など）",
    "refused": "受信側の拒否（受信拒否設定・迷惑メール判定など）",
    "complaint": "迷惑メールとしての報告（配信を解除しました）",
    "unmatched": "配信先と照合できなかったエラー",
}


REASON_NOTES = {
    # why a subscription was stopped, in words the 情報管理者 can pass on to the citizen
    "filtered": "受信拒否設定（ドメイン指定受信など）で市のメールが拒否され続けたため",
}


@dataclass(frozen=True, slots=True)
class DisabledLine:
    address: str
    day: dt.date
    status: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DigestFacts:
    service: str
    slug: str
    title: str
    department: str
    manager: str  # title and name
    since: dt.date
    last_day: dt.date
    counts: dict[str, int]  # by kind, in KIND_LABELS' order
    disabled: Sequence[DisabledLine]
    scoring: int  # active subscriptions whose score is above zero: not yet disabled
    threshold: float
    stale_days: int
    inquiry_address: str


def _day(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def bounce_digest(f: DigestFacts) -> Text:
    subject = (
        f"【{f.service}】配信エラーの週次報告: {f.title}（{_day(f.since)}〜{_day(f.last_day)}）"
    )
    counts = "".join(f"  {KIND_LABELS[k]}: {n} 件\n" for k, n in f.counts.items())
    if f.disabled:
        disabled = "".join(
            f"  {d.address}（{_day(d.day)}停止、"
            + (
                f"{REASON_NOTES[d.reason]}）\n"
                if d.reason in REASON_NOTES
                else f"最後のエラー {d.status or '不明'}）\n"
            )
            for d in f.disabled
        )
    else:
        disabled = "  ありません\n"
    body = (
        f"{f.department}\n{f.manager} 様\n\n"
        f"{f.service}から、チャネル「{f.title}」（{f.slug}）の"
        f"{_day(f.since)}から{_day(f.last_day)}までの配信エラー（バウンス）をお知らせします。\n\n"
        f"■ 種類別の件数\n{counts}\n"
        f"■ 配信を停止したアドレス（{len(f.disabled)} 件）\n{disabled}\n"
        f"■ エラーが続いていて、まだ停止していないアドレス: {f.scoring} 件\n\n"
        "配信エラーが続いたアドレスへは、自動的に配信を停止しています。エラーのあった日ごとに"
        "恒久的なエラーなら 1 点、一時的なエラーや判別できないエラーなら 0.5 点を数え"
        f"（1 日 1 点まで）、合計が {f.threshold:g} 点に達した時点で停止します。"
        f"{f.stale_days} 日間エラーがなければ点数は 0 に戻ります。\n"
        "受信側の拒否は点数に数えません（アドレスの問題とは限らないため）。ただし携帯電話会社の"
        "受信拒否設定による拒否が続いた場合は、その理由で配信を停止します。\n"
        "迷惑メールとして報告された場合は、ご本人の意思として直ちに配信を解除しています。\n"
        "登録は削除していません。ご本人が改めて登録の手続き（確認メールへの返信）をすると、"
        "配信が再開されます。\n\n"
        "このお知らせは、運営要領第5条(2)（配信先アドレスの管理）のためにお送りしています。"
        "メールアドレスは個人情報です。取り扱いにご注意ください。\n"
        f"詳しい状況はサーバーで `haishin bounces {f.slug} --show-addresses` で確認できます。\n\n"
        f"----\n{f.service}\nお問い合わせ: {f.inquiry_address}\n"
    )
    return subject, body
