"""The sender-side alarm to the クラウドサービス管理者, in Japanese (issue 12, item 3).

Refusals that speak about the city's own sending (authentication, PTR, reputation, block
lists, spam filters) are not the subscribers' fault: the one who investigates failures
(第4条(1)) hears of them, with the receiving servers' own words as evidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ..registry.model import JST
from .texts import Text

REASON_LABELS = {
    "authfailure": "送信ドメイン認証（SPF/DKIM/DMARC）の失敗",
    "requireptr": "送信サーバーの逆引き（PTR）がない・一致しない",
    "badreputation": "送信元の評価（レピュテーション）が低い",
    "blocked": "送信元 IP アドレスの受信拒否（ブロックリストなど）",
    "spamdetected": "迷惑メールと判定された",
}


@dataclass(frozen=True, slots=True)
class AlarmLine:
    at: dt.datetime
    reason: str
    status: str | None
    evidence: str  # masked: no recipient address in clear


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    service: str
    role: str
    name: str
    domain: str
    window_minutes: int
    threshold: int
    lines: Sequence[AlarmLine]


def bounce_alarm(f: AlarmFacts) -> Text:
    subject = f"【{f.service}】要確認: {f.domain} 宛ての配信が送信元の問題で拒否されています"
    by_reason: dict[str, int] = {}
    for line in f.lines:
        by_reason[line.reason] = by_reason.get(line.reason, 0) + 1
    reasons = "".join(
        f"  {REASON_LABELS.get(r, r)}（{r}）: {n} 件\n" for r, n in sorted(by_reason.items())
    )
    shown = "".join(
        f"  {line.at.astimezone(JST):%Y-%m-%d %H:%M} {line.reason} {line.status or '-'} "
        f"{line.evidence}\n"
        for line in f.lines[-20:]
    )
    body = (
        f"{f.role} {f.name} 様\n\n"
        f"{f.service}から {f.domain} 宛てに送ったメールが、直近 {f.window_minutes} 分間に "
        f"{len(f.lines)} 件（しきい値 {f.threshold} 件）、受信側から拒否されました。\n"
        "拒否の理由は購読者のアドレスではなく、こちらの送信（認証・逆引き・評価など）にあります。"
        "購読者の配信エラーの点数は変えていません。\n\n"
        f"■ 理由別の件数\n{reasons}\n"
        f"■ 受信側の応答（新しいもの 20 件まで、宛先は伏せています）\n{shown}\n"
        "DNS（SPF・DKIM・DMARC・PTR）の設定、DKIM 鍵、送信元 IP アドレスの評価を確認してください"
        "（運営要領第4条(1): 障害の調査と復旧）。\n"
        f"同じドメインについては {f.window_minutes} 分に 1 回だけお知らせします。\n"
    )
    return subject, body
