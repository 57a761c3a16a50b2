"""第9条: the notice of a planned stop, sent before it, and the report of an emergency one,
sent after it, to the other party: their text here; the daemon sends them when due and
records them in the store (announce.py).

Who stops notifies the other: the cloud administrator tells the 防災CMS administrator
(第9条2), and the 防災CMS administrator tells the cloud administrator (第9条4).

What a stop holds (OUTAGE_MAIL, read by the sender through `sendable_kinds`): inbound mail
is still accepted and stored, and processed; every mail to citizens and senders (answers,
confirmation requests, import confirmations, approval requests, posts, forwarded
inquiries, digests) waits in the queue until the window ends, then goes out in order. Only
the 第9条 notices and reports themselves and the alarms to the service's administrators
go out during the window: they are how the stop is run and reported. The notice mail, the
public notice on the site and the README say the same.
"""

from __future__ import annotations

import datetime as dt
import enum

from ..registry.load import Registry
from ..registry.model import JST, ROLE_NAMES, Outage, Role, Service
from ..registry.state import outages_in_force
from ..store.states import MessageKind

OTHER = {Role.CLOUD_ADMIN: Role.CMS_ADMIN, Role.CMS_ADMIN: Role.CLOUD_ADMIN}


class During(enum.Enum):
    """What the sender does with a kind of mail while an outage is in force (第9条)."""

    HELD = "waits in the queue and goes out after the window"
    SENT = "goes out during the window"


OUTAGE_MAIL: dict[MessageKind, tuple[During, str]] = {
    # kind of queued message (store/schema.py outbound_messages.kind): what, and why
    MessageKind.CONFIRM: (
        During.HELD,
        "confirmation requests to citizens (also imported ones) and approval requests to senders",
    ),
    MessageKind.REPLY: (
        During.HELD,
        "answers to citizens and senders: welcome, goodbye, help, refusals",
    ),
    MessageKind.POST: (
        During.HELD,
        "posts to subscribers (release holds new ones before the fan-out)",
    ),
    MessageKind.FORWARD: (During.HELD, "inquiries forwarded to the 情報管理者 (第5条3(3))"),
    MessageKind.DIGEST: (During.HELD, "the weekly bounce digest to the 情報管理者"),
    MessageKind.NOTICE: (
        During.SENT,
        "第9条 notices and reports to the other party, and alarms to the service's "
        "administrators: an emergency stop is reported while it lasts (第9条ただし書)",
    ),
}
"""Any kind not listed is held: a new kind of mail waits until someone decides."""

SENT_DURING_OUTAGE = frozenset(k for k, (d, _) in OUTAGE_MAIL.items() if d is During.SENT)


def sendable_kinds(reg: Registry, now: dt.datetime | None = None) -> frozenset[MessageKind] | None:
    """The kinds of mail the sender may send now: None (all) when no outage is in force."""
    if not outages_in_force(reg, now):
        return None
    return SENT_DURING_OUTAGE


HELD_TEXT = (
    "停止中も、届いたメール（登録・解除のお申込み、投稿など）は受け付けて保存します。\n"
    "停止中は、登録・解除の確認メール、返信、投稿の承認依頼、配信メールを送らず、"
    "停止が終わってから順に送ります。\n"
    "この通知・報告と、管理者あての警報は停止中も送ります。\n"
)
"""What the notice mail says a stop holds (OUTAGE_MAIL, in words)."""


class Announcement(enum.StrEnum):
    """What the other party is told (第9条), and the key it is recorded under in the outage
    file."""

    NOTICE = "notice"  # 第9条2・4: in advance of a planned stop
    REPORT = "report"  # 第9条ただし書: promptly after an emergency stop


def _when(t: dt.datetime | None) -> str:
    if t is None:
        return "未定（復旧しだい）"
    t = t.astimezone(JST)
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"


def text(service: Service, outage: Outage, kind: Announcement) -> tuple[str, str]:
    """Subject and body, in Japanese, of the notice or the report."""
    by = service.roles[outage.stopped_by]
    window = f"{_when(outage.start)} 〜 {_when(outage.end)}"
    if kind is Announcement.NOTICE:
        subject = f"【事前通知】{service.name}の計画停止（{_when(outage.start)}〜）"
        lead = (
            f"{service.name}運営要領第9条の規定により、"
            "次のとおりクラウドサービスを停止しますので、事前にお知らせします。"
        )
    else:
        subject = f"【停止報告】{service.name}の緊急停止（{_when(outage.start)}）"
        lead = (
            f"{service.name}運営要領第9条ただし書の規定により、"
            "次のとおりクラウドサービスを緊急に停止しましたので、ご報告します。"
        )
    body = (
        f"{lead}\n\n"
        f"1 停止の期間　{window}\n"
        f"2 停止の理由　{outage.reason}\n"
        f"3 停止した者　{ROLE_NAMES[outage.stopped_by]}（{by.title} {by.name}）\n"
        f"4 記録番号　　{outage.id}\n\n"
        f"{HELD_TEXT}"
        f"このメールへのご返信は {by.address} に届きます。\n"
    )
    return subject, body
