"""The texts of the automatic mail about posts, to staff: Japanese first, one English line.

Each function returns (subject, body). The approval request says what was received,
how to approve (reply, or the page's button), how to withdraw (reply with 取消), when it
will go out, and what the 第3条(2) check noticed.
"""

from __future__ import annotations

import datetime as dt

from ..registry.model import JST
from .texts import About, Text

WITHDRAW_WORDS = ("取消", "取り消し", "取りけし", "とりけし", "withdraw", "cancel")
"""A reply to an approval request that says one of these withdraws the post instead."""


def _when(at: dt.datetime | None) -> str:
    return (
        "承認後ただちに" if at is None else f"{at.astimezone(JST):%Y年%m月%d日 %H:%M}（日本時間）"
    )


def _footer(a: About) -> str:
    return f"\n----\n{a.service}\nチャネル: {a.title}（{a.slug}）\n{a.site_url}\n"


def _excerpt(text: str, lines: int = 12) -> str:
    kept = text.strip("\n").split("\n")
    more = "\n  …" if len(kept) > lines else ""
    return "\n".join("  " + line for line in kept[:lines]) + more


def refused(a: About, subject: str, explain: str) -> Text:
    return (
        f"【{a.service}】投稿が配信の基本要件を満たしていません: {a.title}",
        f"「{subject}」は、配信の基本要件（運営要領 第3条(2)）を満たしていないため、"
        "配信しませんでした。次の点を直して、あらためてお送りください。\n\n"
        f"{explain}\n\n"
        "English: the post was refused by the service's posting policy; see the list above.\n"
        + _footer(a),
    )


def approval_request(
    a: About,
    *,
    subject: str,
    text: str,
    sender: str,
    token: str,
    url: str,
    ttl_hours: int,
    send_at: dt.datetime | None,
    warnings: str,
    for_manager: bool,
    note: str = "",
) -> Text:
    who = (
        f"{sender} から次の投稿が届きました。情報管理者の承認があるまで配信されません。\n"
        if for_manager
        else "次の投稿を受け付けました。確認があるまで配信されません。\n"
    )
    body = (
        f"「{a.title}」への投稿の確認\n\n"
        f"{who}\n"
        f"件名: {subject}\n"
        f"配信予定: {_when(send_at)}\n"
        f"本文（冒頭）:\n{_excerpt(text)}\n\n"
        "配信してよければ、次のどちらかを行ってください。\n"
        "  1. このメールにそのまま返信する（本文は空でかまいません）\n"
        f"  2. 次のページを開き、「配信する」ボタンを押す\n     {url}\n\n"
        "配信をやめるには、件名か本文の1行目に「取消」と書いて返信するか、"
        "同じページの「取り消す」ボタンを押してください。\n"
        f"この確認は {ttl_hours} 時間有効です。それまでに確認がなければ投稿は破棄されます。\n"
    )
    if note:
        body += f"\n{note}\n"
    if warnings:
        body += f"\n配信の基本要件（第3条(2)）についての注意:\n{warnings}\n"
    body += (
        "\nEnglish: reply to this message (or press the button on the page) to send the post; "
        "reply with 'withdraw' to cancel it.\n"
    )
    return f"【{a.service}】投稿の確認: {a.title}「{subject}」", body + _footer(a)


def held_for_manager(a: About, subject: str, url: str) -> Text:
    return (
        f"【{a.service}】投稿は承認待ちです: {a.title}「{subject}」",
        f"「{subject}」を受け付けました。情報管理者（{a.manager}）の承認後に配信します。\n\n"
        "配信をやめるには、件名か本文の1行目に「取消」と書いてこのメールに返信するか、"
        f"次のページの「取り消す」ボタンを押してください。\n  {url}\n\n"
        "English: the post waits for the manager's approval; reply 'withdraw' to cancel it.\n"
        + _footer(a),
    )


def approved(a: About, subject: str, send_at: dt.datetime | None, approver: str) -> Text:
    return (
        f"【{a.service}】投稿を承認しました: {a.title}「{subject}」",
        f"「{subject}」は {approver} により承認されました。\n"
        f"配信予定: {_when(send_at)}\n"
        "配信前であれば、件名に「取消」と書いて確認のメールに返信すると取り消せます。\n\n"
        "English: the post is approved and will be sent as scheduled.\n" + _footer(a),
    )


def ended(a: About, subject: str, what: str, reason: str = "") -> Text:
    """A post that will not go out: withdrawn, rejected or expired."""
    why = f"\n理由: {reason}\n" if reason else "\n"
    return (
        f"【{a.service}】投稿は{what}: {a.title}「{subject}」",
        f"「{subject}」は{what}。配信されません。{why}\n"
        f"English: the post will not be sent ({what}).\n" + _footer(a),
    )


def expired_token(a: About) -> Text:
    return (
        f"【{a.service}】この投稿の確認は無効です: {a.title}",
        "この確認は有効期限が切れているか、投稿がすでに配信・取消・破棄されています。\n\n"
        "English: this confirmation is no longer valid.\n" + _footer(a),
    )


def withdraw_hint(a: About) -> Text:
    return (
        f"【{a.service}】投稿の取消の方法: {a.title}",
        "投稿を取り消すには、件名か本文の1行目に「取消」と書いて返信してください。"
        "承認は情報管理者が行います。\n\n"
        "English: reply with 'withdraw' to cancel the post; the manager approves it.\n"
        + _footer(a),
    )
