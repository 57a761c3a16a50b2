"""The cross-file rules of the registry, as a table of small checks.

Each rule reads the loaded registry and yields findings; `check` runs them all so a
clerk sees every problem of a pull request in one run.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .. import addresses
from .load import Located, Overrides, Registry, load
from .model import ROLE_NAMES, Application, Channel, Kind, Pause, Role
from .problems import Pos, Problem
from .state import history, is_legacy
from .yamlsource import Document

Rule = Callable[[Registry], Iterable[Problem]]

APPROVER = Role.GENERAL_MANAGER
"""第6条2: the 統括管理者 approves Form 1 with Form 2."""

PAUSER = Role.GENERAL_MANAGER
"""第3条5: the 統括管理者 may stop a department's distribution."""

DISASTER_IDS = frozenset({"bosai", "disaster", "weather", "kisho", "saigai", "emergency"})
DISASTER_WORDS = ("防災", "気象", "災害", "天気", "警報", "注意報", "地震", "津波", "避難")


def _channels(reg: Registry) -> Iterator[tuple[str, Channel, Document]]:
    for slug, located in reg.channels.items():
        yield slug, located.value, located.doc


# --- names and addresses --------------------------------------------------------------


def slugs_fit_the_address_contract(reg: Registry) -> Iterator[Problem]:
    """Each slug is a valid local part with every suffix, and no two channels collide."""
    taken = {slug + suffix: slug for slug in reg.channels for suffix in addresses.SUFFIXES}
    if reg.service is not None:
        local, _, domain = reg.service.value.inquiry_address.partition("@")
        if domain.lower() == reg.service.value.mail_domain.lower():
            taken[local.lower()] = ""
    for slug, _channel, doc in _channels(reg):
        if not addresses.SLUG_RE.match(slug):
            yield Problem(
                doc.at("slug"),
                "slug-format",
                f"slug '{slug}' には半角英小文字・数字と、間のハイフン 1 つだけが使えます",
            )
            continue
        if len(slug) > addresses.SLUG_MAX_LEN:
            yield Problem(
                doc.at("slug"),
                "slug-length",
                f"slug '{slug}' が長すぎます（{addresses.SLUG_MAX_LEN} 文字まで: "
                "メールアドレスの前半は 64 文字以内のため）",
            )
        clash = next((p for p in addresses.local_parts(slug) if taken.get(p, slug) != slug), None)
        if clash is not None:
            other = taken[clash]
            whose = f"チャネル '{other}'" if other else "サービスの問い合わせ先"
            yield Problem(
                doc.at("slug"),
                "slug-collision",
                f"アドレス {clash}@ が {whose} のアドレスと重なります",
            )


def inquiry_is_ours(reg: Registry) -> Iterator[Problem]:
    """第3条(1): the daemon receives the inquiry address, so it is on the mail domain."""
    if reg.service is None:
        return
    service = reg.service.value
    if service.inquiry_address.partition("@")[2].lower() != service.mail_domain.lower():
        yield Problem(
            reg.service.doc.at("inquiry_address"),
            "inquiry-domain",
            f"問い合わせ先は配信サービスのドメイン（@{service.mail_domain}）のアドレスにしてください"
            "（受け取ったメールは統括管理者に転送されます）",
        )


# --- references -----------------------------------------------------------------------


def _categories(reg: Registry) -> set[str] | None:
    return {c.id for c in reg.service.value.categories} if reg.service else None


def channel_references_resolve(reg: Registry) -> Iterator[Problem]:
    categories = _categories(reg)
    for _slug, channel, doc in _channels(reg):
        if reg.departments_doc is not None and channel.department not in reg.departments:
            yield _unknown(doc.at("department"), "情報配信課", channel.department, reg.departments)
        if categories is not None and channel.category not in categories:
            yield _unknown(doc.at("category"), "分類", channel.category, categories)
        if channel.application is not None:
            app = reg.applications.get(channel.application)
            if app is None:
                yield _unknown(doc.at("application"), "申請", channel.application, ())
            elif app.value.channel != channel.slug:
                yield Problem(
                    doc.at("application"),
                    "application-channel",
                    f"申請 {channel.application} はチャネル '{app.value.channel}' の申請です",
                )


def application_references_resolve(reg: Registry) -> Iterator[Problem]:
    categories = _categories(reg)
    for number, located in reg.applications.items():
        app, doc = located.value, located.doc
        known_department = reg.departments_doc is None or app.department in reg.departments
        if not known_department:
            yield _unknown(doc.at("department"), "情報配信課", app.department, reg.departments)
        channel = reg.channels.get(app.channel)
        undecided_start = app.kind is Kind.START and not app.approved
        if channel is None and not undecided_start:
            yield Problem(
                doc.at("channel"),
                "unknown-channel",
                f"チャネル '{app.channel}' がありません（channels/{app.channel}.yaml）",
            )
        moves = app.kind is Kind.CHANGE and app.requested.department is not None
        differs = channel is not None and app.department != channel.value.department
        if differs and known_department and not moves:
            yield Problem(
                doc.at("department"),
                "application-department",
                f"申請 {number} の課 '{app.department}' がチャネルの課 "
                f"'{channel.value.department if channel else ''}' と違います",
            )
        if categories is not None and app.requested.category not in (None, *categories):
            yield _unknown(
                doc.at("requested", "category"), "分類", app.requested.category or "", categories
            )


def _unknown(pos: Pos, what: str, value: str, known: Iterable[str]) -> Problem:
    import difflib

    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    hint = f"。もしかして '{close[0]}' ですか" if close else ""
    return Problem(pos, "unknown-reference", f"{what} '{value}' は登録されていません{hint}")


def roles_are_filled(reg: Registry) -> Iterator[Problem]:
    if reg.service is None:
        return
    for role in Role:
        if role not in reg.service.value.roles:
            yield Problem(
                reg.service.doc.at("roles"),
                "missing-role",
                f"役割 '{role}'（{ROLE_NAMES[role]}）の担当者がいません",
            )


# --- 第6条: applications and approvals ------------------------------------------------


def decisions_are_proper(reg: Registry) -> Iterator[Problem]:
    """Form 2 is issued by the 統括管理者, after the Form 1 it answers, with its own number."""
    seen: dict[str, str] = {}
    for number, located in sorted(reg.applications.items()):
        decision, doc = located.value.decision, located.doc
        if decision is None:
            continue
        if decision.by is not APPROVER:
            yield Problem(
                doc.at("decision", "by"),
                "approver",
                f"承認・不承認は {ROLE_NAMES[APPROVER]}（{APPROVER}）が行います（第6条2）",
            )
        if decision.date < located.value.applied:
            yield Problem(
                doc.at("decision", "date"),
                "decision-date",
                f"決定日 {decision.date} が申請日 {located.value.applied} より前です",
            )
        if decision.notice_number in seen:
            yield Problem(
                doc.at("decision", "notice_number"),
                "notice-number",
                f"通知番号 {decision.notice_number} は申請 {seen[decision.notice_number]} "
                "でも使われています",
            )
        seen.setdefault(decision.notice_number, number)


def state_follows_approvals(reg: Registry) -> Iterator[Problem]:
    """第6条・第7条・附則: a channel is served only as its approved applications say."""
    for slug, channel, doc in _channels(reg):
        apps = history(reg, slug)
        legacy = is_legacy(channel.registered)
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
        if app.rejected and app.kind is Kind.START and app is latest_app:
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
            elif app.kind is Kind.CHANGE:
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
        elif app.kind in (Kind.START, Kind.CHANGE):
            yield from _content_matches(app, channel, doc, ref)


def _order_of(apps: list[Located[Application]], legacy: bool) -> Iterator[Problem]:
    """Approved applications must make sense in sequence: start, change…, stop, start…"""
    running = legacy
    for located in apps:
        app = located.value
        if not app.approved:
            continue
        if app.kind is Kind.START and running:
            yield Problem(
                located.doc.at("kind"),
                "application-order",
                f"申請 {app.number}: 利用中のチャネルに利用開始は申請できません（変更を使ってください）",
            )
        elif app.kind is not Kind.START and not running:
            yield Problem(
                located.doc.at("kind"),
                "application-order",
                f"申請 {app.number}: 利用開始の承認より前に{'変更' if app.kind is Kind.CHANGE else '停止'}"
                "は承認できません",
            )
        running = app.kind is not Kind.STOP


def _content_matches(
    app: Application, channel: Channel, doc: Document, ref: Located[Application]
) -> Iterator[Problem]:
    for name in ("title", "summary", "category", "frequency", "department"):
        wanted = getattr(app.requested, name)
        if wanted is not None and wanted != getattr(channel, name):
            yield Problem(
                doc.at(name),
                "content-not-approved",
                f"'{name}' が承認された申請 {app.number} の内容（{wanted}）と違います。"
                "変更には変更申請と承認が必要です（第6条）",
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
    for _slug, channel, doc in _channels(reg):
        if channel.category in bad:
            yield Problem(
                doc.at("category"),
                "disaster-category",
                "防災気象情報のチャネルは登録できません（第1条）。"
                "防災情報は別のサービスで配信されます",
            )


def pauses_are_by_the_general_manager(reg: Registry) -> Iterator[Problem]:
    found: list[tuple[Pause, Document, tuple[str, ...]]] = []
    for _slug, channel, doc in _channels(reg):
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
    is reported to them after the stop."""
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
                yield Problem(
                    doc.at(),
                    "notice-missing",
                    f"計画停止には {ROLE_NAMES[other]} への事前の通知（notice:）が必要です（第9条）",
                )
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
            if o.report is None and o.end is not None:
                yield Problem(
                    doc.at(),
                    "report-missing",
                    f"緊急停止の後は {ROLE_NAMES[other]} への報告（report:）が必要です（第9条）",
                )
            if o.report is not None and o.report.to is not other:
                yield _wrong_party(doc, "report", other)


def _wrong_party(doc: Document, name: str, other: Role) -> Problem:
    return Problem(
        doc.at(name, "to"),
        "outage-party",
        f"通知・報告の相手は {ROLE_NAMES[other]}（{other}）です（第9条2・4）",
    )


RULES: tuple[Rule, ...] = (
    roles_are_filled,
    slugs_fit_the_address_contract,
    inquiry_is_ours,
    channel_references_resolve,
    application_references_resolve,
    decisions_are_proper,
    state_follows_approvals,
    no_disaster_channels,
    pauses_are_by_the_general_manager,
    outages_are_announced,
)


def check(root: Path, overrides: Overrides | None = None) -> tuple[Registry, list[Problem]]:
    """Load and validate; problems sorted by file and line."""
    # Loading allocates millions of small acyclic objects; the cyclic collector would
    # rescan them all again and again, doubling the time of a large registry's check.
    collecting = gc.isenabled()
    gc.disable()
    try:
        reg, problems = load(root, overrides)
        for rule in RULES:
            problems.extend(rule(reg))
    finally:
        if collecting:
            gc.enable()
    problems.sort(key=lambda p: (p.pos, p.key))
    return reg, problems
