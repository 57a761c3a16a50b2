"""The cross-file rules over time: approvals in order (第6条・第7条・附則), department
pauses by the 統括管理者 (第3条5), outages announced to the right party (第9条)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from ..clock import jstnow
from .load import Located, Registry
from .model import ROLE_NAMES, Application, ApplicationKind, Channel, Outage, Pause, Role
from .problems import Problem, Severity
from .rules_common import DISASTER_IDS, DISASTER_WORDS, PAUSER, channels_of
from .state import history, is_legacy
from .yamlsource import Document


def state_follows_approvals(reg: Registry) -> Iterator[Problem]:
    """第6条・第7条・附則: a channel is served only as its approved applications say."""
    for slug, channel, doc in channels_of(reg):
        apps = history(reg, slug)
        legacy = is_legacy(channel.registered)
        if not reg.history_is_partial(slug):  # else the broken file says it already
            yield from _order_of(apps, legacy)
        approved = [a for a in apps if a.value.approved]
        latest_app = apps[-1].value if apps else None
        ref = reg.applications.get(channel.application) if channel.application else None
        if channel.application is None:
            if approved:
                yield Problem(
                    doc.at(),
                    "stale-application",
                    f"application: に最新の承認済み申請 {approved[-1].value.number} "
                    "を書いてください",
                )
            elif not legacy:
                yield Problem(
                    doc.at("registered"),
                    "application-missing",
                    "2021-12-24 以降に登録されたチャネルには利用開始の申請（第1号様式）と"
                    "その承認が必要です（第6条）。application: に申請番号を書いてください",
                )
            continue
        if ref is None or ref.value.channel != slug:
            continue  # reported by channel_references_resolve
        app = ref.value
        if app.rejected and app.kind is ApplicationKind.START and app is latest_app:
            pass  # never served, or stays stopped: the channel simply is not published
        elif app.rejected:
            yield Problem(
                doc.at("application"),
                "rejected-application",
                f"申請 {app.number} は不承認です。不承認の申請は何も変えません: "
                "チャネルの内容と application: を元に戻してください",
            )
        elif app.decision is None:
            if app is not latest_app:
                yield Problem(
                    doc.at("application"),
                    "stale-application",
                    f"承認待ちの申請 {app.number} より新しい申請があります",
                )
            elif app.kind is ApplicationKind.CHANGE:
                yield Problem(
                    doc.at("application"),
                    "unapproved-change",
                    f"変更申請 {app.number} はまだ承認されていません。承認（第2号様式）の前に"
                    "チャネルの内容を変えると未承認の内容が公開されます",
                )
        elif approved and app is not approved[-1].value:
            yield Problem(
                doc.at("application"),
                "stale-application",
                f"最新の承認済み申請は {approved[-1].value.number} です。"
                "application: をそれに合わせてください",
            )
        elif app.kind in (ApplicationKind.START, ApplicationKind.CHANGE):
            yield from _content_matches(app, channel, doc, ref)


def _order_of(apps: list[Located[Application]], legacy: bool) -> Iterator[Problem]:
    """Approved applications must make sense in sequence: start, change…, stop, start…"""
    running = legacy
    for located in apps:
        app = located.value
        if not app.approved:
            continue
        if app.kind is ApplicationKind.START and running:
            yield Problem(
                located.doc.at("kind"),
                "application-order",
                f"申請 {app.number}: 利用中のチャネルに利用開始は申請できません（変更を使ってください）",
            )
        elif app.kind is not ApplicationKind.START and not running:
            yield Problem(
                located.doc.at("kind"),
                "application-order",
                f"申請 {app.number}: 利用開始の承認より前に{'変更' if app.kind is ApplicationKind.CHANGE else '停止'}"
                "は承認できません",
            )
        running = app.kind is not ApplicationKind.STOP


_CONTENT = ("title", "summary", "category", "frequency", "department")


def _differences(app: Application, channel: Channel) -> Iterator[tuple[str, str]]:
    for name in _CONTENT:
        wanted = getattr(app.requested, name)
        if wanted is not None and wanted != getattr(channel, name):
            yield name, wanted


def _content_matches(
    app: Application, channel: Channel, doc: Document, ref: Located[Application]
) -> Iterator[Problem]:
    for name, wanted in _differences(app, channel):
        yield Problem(
            doc.at(name),
            "content-not-approved",
            f"'{name}' が承認された申請 {app.number} の内容（{wanted}）と違います。"
            "変更には変更申請と承認が必要です（第6条）",
        )


def pending_starts_match(reg: Registry) -> Iterator[Problem]:
    """第6条: a start under review is approved as requested; a channel file that says
    otherwise would make `approve` refuse, so say it in the pull request already.
    (A pending change differs from its channel by design: the channel changes after.)"""
    for number, located in sorted(reg.applications.items()):
        app = located.value
        channel = reg.channels.get(app.channel)
        if app.decision is not None or app.kind is not ApplicationKind.START or channel is None:
            continue
        for name, wanted in _differences(app, channel.value):
            yield Problem(
                channel.doc.at(name),
                "content-differs-pending",
                f"'{name}' が承認待ちの申請 {number} の内容（{wanted}）と違います。"
                "このままでは承認できません: 申請かチャネルのどちらかを直してください（第6条）",
                Severity.WARNING,
            )


# --- 第1条, 第3条5, 第9条 -------------------------------------------------------------


def no_disaster_channels(reg: Registry) -> Iterator[Problem]:
    """第1条: 防災気象情報 is out of scope; it has its own service."""
    if reg.service is None:
        return
    bad: set[str] = set()
    for i, cat in enumerate(reg.service.value.categories):
        text = f"{cat.name} {cat.description}"
        if cat.id.lower() in DISASTER_IDS or any(w in text for w in DISASTER_WORDS):
            bad.add(cat.id)
            yield Problem(
                reg.service.doc.at("categories", i, "id"),
                "disaster-category",
                f"分類 '{cat.id}'（{cat.name}）: 防災気象情報はこのサービスの対象外です（第1条）",
            )
    for _slug, channel, doc in channels_of(reg):
        if channel.category in bad:
            yield Problem(
                doc.at("category"),
                "disaster-category",
                "防災気象情報のチャネルは登録できません（第1条）。"
                "防災情報は別のサービスで配信されます",
            )
            continue
        # Whatever the category: the words say what the channel will carry.
        for name in ("title", "description"):
            word = next((w for w in DISASTER_WORDS if w in getattr(channel, name)), None)
            if word is not None:
                yield Problem(
                    doc.at(name),
                    "disaster-words",
                    f"'{name}' に「{word}」とあります。防災気象情報はこのサービスの対象外です"
                    "（第1条）。防災情報でなければ、そう読めない書き方にしてください",
                    Severity.WARNING,
                )
                break


def pauses_are_by_the_general_manager(reg: Registry) -> Iterator[Problem]:
    found: list[tuple[Pause, Document, tuple[str, ...]]] = []
    for _slug, channel, doc in channels_of(reg):
        if channel.paused:
            found.append((channel.paused, doc, ("paused",)))
    if reg.departments_doc is not None:
        for dept_id, dept in reg.departments.items():
            if dept.paused:
                found.append((dept.paused, reg.departments_doc, ("departments", dept_id, "paused")))
    for pause, doc, loc in found:
        if pause.by is not PAUSER:
            yield Problem(
                doc.at(*loc, "by"),
                "pause-by",
                f"配信の停止は {ROLE_NAMES[PAUSER]}（{PAUSER}）が行います（第3条5）",
            )
        if pause.until is not None and pause.until < pause.since:
            yield Problem(doc.at(*loc, "until"), "window", "終了日が開始日より前です")


_OTHER = {Role.CLOUD_ADMIN: Role.CMS_ADMIN, Role.CMS_ADMIN: Role.CLOUD_ADMIN}


def outages_are_announced(reg: Registry) -> Iterator[Problem]:
    """第9条: a planned stop is notified to the other party in advance; an emergency one
    is reported to them after the stop. Without notice:/report: the file is a draft the
    daemon announces itself once merged (operations/announce.py): not an error."""
    now = jstnow()
    notice_days = reg.service.value.outage_notice_days if reg.service else 7
    for _id, located in reg.outages.items():
        o, doc = located.value, located.doc
        if o.end is not None and o.end < o.start:
            yield Problem(doc.at("end"), "window", f"終了 {o.end} が開始 {o.start} より前です")
        other = _OTHER.get(o.stopped_by)
        if other is None:
            yield Problem(
                doc.at("stopped_by"),
                "outage-party",
                "停止できるのはクラウドサービス管理者か防災CMS管理者です（第9条1・3）",
            )
            continue
        if o.kind == "planned":
            if o.notice is None:
                yield from _draft(o, doc, other, notice_days, now)
            elif o.notice.at >= o.start:
                yield Problem(
                    doc.at("notice", "at"),
                    "notice-late",
                    f"通知 {o.notice.at} が停止開始 {o.start} より後です。事前に通知してください（第9条）",
                )
            for party, name in ((o.notice, "notice"), (o.report, "report")):
                if party is not None and party.to is not other:
                    yield _wrong_party(doc, name, other)
        else:
            if o.report is not None and o.report.at < o.start:
                yield Problem(
                    doc.at("report", "at"),
                    "report-early",
                    f"緊急停止の報告 {o.report.at} が停止 {o.start} より前です（報告は停止後）",
                )
            # no report: the daemon sends it once the stop is served (operations/announce.py)
            if o.report is not None and o.report.to is not other:
                yield _wrong_party(doc, "report", other)


def _draft(
    o: Outage, doc: Document, other: Role, notice_days: int, now: dt.datetime
) -> Iterator[Problem]:
    """A planned stop without notice: (a draft). Staff need to act only when the daemon
    can no longer give the notice as agreed: too close to the start, or started."""
    if o.start <= now:
        if o.end is None or o.end > now:
            yield Problem(
                doc.at("start"),
                "notice-not-given",
                f"停止が始まっていますが、{ROLE_NAMES[other]} への事前の通知（notice:）の記録がありません。"
                "配信サーバーが送ったかを「haishin status」で確かめ、送っていなければ「kind: emergency」にして"
                "停止後の報告をしてください（第9条ただし書）",
                Severity.WARNING,
            )
        return
    if o.start - dt.timedelta(days=notice_days) < now:
        yield Problem(
            doc.at("start"),
            "notice-short",
            f"停止の開始まで {notice_days} 日（service.yaml の outage_notice_days）を切っています。"
            f"マージして配信サーバーに反映されしだい、{ROLE_NAMES[other]} に事前の通知を送ります（第9条）",
            Severity.WARNING,
        )


def _wrong_party(doc: Document, name: str, other: Role) -> Problem:
    return Problem(
        doc.at(name, "to"),
        "outage-party",
        f"通知・報告の相手は {ROLE_NAMES[other]}（{other}）です（第9条2・4）",
    )
