"""The cross-file rules of the registry, as a table of small checks.

Each rule reads the loaded registry and yields findings; `check` runs them all so a
clerk sees every problem of a pull request in one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .. import addresses
from .load import APPLICATIONS_DIR, CHANNELS_DIR, Registry
from .model import ROLE_NAMES, ApplicationKind, Role
from .problems import Pos, Problem, Severity
from .rules_common import APPROVER, Rule, channels_of
from .rules_history import (
    no_disaster_channels,
    outages_are_announced,
    pauses_are_by_the_general_manager,
    pending_starts_match,
    state_follows_approvals,
)


def slugs_fit_the_address_contract(reg: Registry) -> Iterator[Problem]:
    """Each slug is a valid local part with every suffix, and no two channels collide."""
    taken = {slug + suffix: slug for slug in reg.channels for suffix in addresses.SUFFIXES}
    if reg.service is not None:
        local, _, domain = reg.service.value.inquiry_address.partition("@")
        if domain.lower() == reg.service.value.mail_domain.lower():
            taken[local.lower()] = ""
    for local in addresses.RESERVED:
        taken[local] = "@" + local  # no slug holds "@": a reserved part clashes with any
    for slug, _channel, doc in channels_of(reg):
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
            if other.startswith("@"):
                whose = addresses.RESERVED[other[1:]]
            else:
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


def senders_are_the_citys(reg: Registry) -> Iterator[Problem]:
    """第5条: the 情報管理者 answers for what is sent, so posts come from the city's own
    mail. The registry has no list of the city's domains; the service's mail domain's
    registrable domain (Public Suffix List) stands for it: a sender elsewhere (a private
    or a contractor's address) is worth a second look, not refused."""
    if reg.service is None:
        return
    ours = addresses.organizational_domain(reg.service.value.mail_domain)
    for _slug, channel, doc in channels_of(reg):
        for i, sender in enumerate(channel.senders):
            domain = sender.rpartition("@")[2]
            if addresses.organizational_domain(domain) != ours:
                yield Problem(
                    doc.at("senders", i),
                    "sender-domain",
                    f"投稿者 {sender} は市のドメイン（{ours}）のアドレスではありません。"
                    "個人や委託先のアドレスでよいか確かめてください",
                    Severity.WARNING,
                )


# --- references -----------------------------------------------------------------------


def _categories(reg: Registry) -> set[str] | None:
    return {c.id for c in reg.service.value.categories} if reg.service else None


def channel_references_resolve(reg: Registry) -> Iterator[Problem]:
    categories = _categories(reg)
    for _slug, channel, doc in channels_of(reg):
        if reg.departments_doc is not None and channel.department not in reg.departments:
            yield _unknown(doc.at("department"), "情報配信課", channel.department, reg.departments)
        if categories is not None and channel.category not in categories:
            yield _unknown(doc.at("category"), "分類", channel.category, categories)
        if channel.application is not None:
            app = reg.applications.get(channel.application)
            if app is None and channel.application in reg.broken.get(APPLICATIONS_DIR, ()):
                yield _unreadable(doc.at("application"), "申請", channel.application)
            elif app is None:
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
        undecided_start = app.kind is ApplicationKind.START and not app.approved
        if channel is None and app.channel in reg.broken.get(CHANNELS_DIR, ()):
            yield _unreadable(doc.at("channel"), "チャネル", app.channel)
        elif channel is None and not undecided_start:
            yield Problem(
                doc.at("channel"),
                "unknown-channel",
                f"チャネル '{app.channel}' がありません（channels/{app.channel}.yaml）",
            )
        moves = app.kind is ApplicationKind.CHANGE and app.requested.department is not None
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


def _unreadable(pos: Pos, what: str, value: str) -> Problem:
    """The file exists but failed to load: say so, not that it is missing."""
    return Problem(
        pos,
        "unreadable-reference",
        f"{what} {value} のファイルに誤りがあるため確かめられません（先にそのファイルを直してください）",
        Severity.WARNING,
    )


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


RULES: tuple[Rule, ...] = (
    roles_are_filled,
    slugs_fit_the_address_contract,
    inquiry_is_ours,
    senders_are_the_citys,
    channel_references_resolve,
    application_references_resolve,
    decisions_are_proper,
    state_follows_approvals,
    pending_starts_match,
    no_disaster_channels,
    pauses_are_by_the_general_manager,
    outages_are_announced,
)
