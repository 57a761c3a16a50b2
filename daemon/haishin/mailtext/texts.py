"""The texts of every automatic mail: Japanese first, with one English line.

Each function returns (subject, body). The confirmation request says which channel, who
runs it, how to confirm (reply, or open the page and press the button), that ignoring it
changes nothing, and how to reach the department (issue 5, double opt-in).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .. import urls


@dataclass(frozen=True)
class About:
    """What a reply says about the service and the channel."""

    service: str  # service.yaml `name`: every text names the service by it (第10条)
    site_url: str
    slug: str
    title: str
    department: str
    manager: str  # 情報管理者: title and name
    contact: str  # phone, address, hours: one line each
    owner_address: str
    request_address: str
    subscribe_address: str
    unsubscribe_address: str


Text = tuple[str, str]


def _footer(a: About) -> str:
    return (
        "\n----\n"
        f"{a.service}\n"
        f"チャネル: {a.title}\n"
        f"発行: {a.department}（情報管理者: {a.manager}）\n"
        f"お問い合わせ: {a.owner_address}\n"
        f"{a.contact}"
        f"{a.site_url}\n"
    )


@dataclass(frozen=True)
class Resumes:
    """The channel is paused (第3条5) and resumes `on` that day, or when not yet decided."""

    on: dt.date | None


def _carriers(a: About) -> str:
    """Issue 14 item 5: the way to the carrier guides, in every confirmation request (a
    phone whose filter drops the welcome or the posts is the commonest failure)."""
    domain = a.subscribe_address.rpartition("@")[2]
    return (
        "このあとのメールが届かないときは、迷惑メール設定で次のドメインからの受信を許可して"
        f"ください: {domain}\n"
        f"設定のしかた（携帯電話会社・メールサービス別）: {urls.at(a.site_url, urls.CARRIERS)}\n\n"
    )


def confirm_subscribe(
    a: About, token: str, url: str, ttl_hours: int, resumes: Resumes | None = None
) -> Text:
    subject = f"【{a.service}】登録の確認: {a.title} [confirm {token}]"
    body = (
        f"{a.service}の「{a.title}」への登録のお申し込みを受け付けました。\n"
        f"（配信元: {a.department}）\n\n"
        f"{_paused(a, resumes, also='登録はできます。')}"
        "登録を完了するには、次のどちらかを行ってください。\n"
        "  1. このメールにそのまま返信する（本文は空でかまいません）\n"
        f"  2. 次のページを開き、「登録する」ボタンを押す\n     {url}\n\n"
        f"この確認は {ttl_hours} 時間有効です。\n"
        "お申し込みに心当たりがない場合は、このメールを無視してください。"
        "何もしなければ登録されず、今後メールが届くこともありません。\n\n"
        f"{_carriers(a)}"
        f"English: reply to this message or open {url} to confirm your subscription to "
        f'"{a.slug}"; if you did not ask for it, ignore this mail and nothing will change.\n'
    )
    return subject, body + _footer(a)


def confirm_unsubscribe(a: About, token: str, url: str, ttl_hours: int) -> Text:
    subject = f"【{a.service}】配信停止の確認: {a.title} [confirm {token}]"
    body = (
        f"{a.service}の「{a.title}」の配信停止のお申し込みを受け付けました。\n\n"
        "配信停止を完了するには、次のどちらかを行ってください。\n"
        "  1. このメールにそのまま返信する（本文は空でかまいません）\n"
        f"  2. 次のページを開き、「配信を停止する」ボタンを押す\n     {url}\n\n"
        f"この確認は {ttl_hours} 時間有効です。\n"
        "お申し込みに心当たりがない場合は、このメールを無視してください。"
        "配信はこれまでどおり続きます。\n\n"
        f"{_carriers(a)}"
        f"English: reply to this message or open {url} to confirm that you want to leave "
        f'"{a.slug}"; if you did not ask for it, ignore this mail.\n'
    )
    return subject, body + _footer(a)


def _paused(a: About, resumes: Resumes | None, also: str = "") -> str:
    if resumes is None:
        return ""
    when = (
        f"{resumes.on.year}年{resumes.on.month}月{resumes.on.day}日までの予定です"
        if resumes.on
        else "再開の時期は、決まりしだいサービスのページでお知らせします"
    )
    return (
        f"なお、「{a.title}」は現在、配信を一時停止しています（{when}）。"
        f"{also}再開後の配信からお届けします。\n\n"
    )


def _resumes(a: About, resumes: Resumes | None) -> str:
    return "次回の配信からお届けします。\n\n" if resumes is None else "\n" + _paused(a, resumes)


def welcome(a: About, unsubscribe_url: str, resumes: Resumes | None = None) -> Text:
    """`resumes`: the channel is paused; the welcome says until when (issue 14 item 4)."""
    paused = " (paused for now; posts resume later)" if resumes else ""
    return (
        f"【{a.service}】登録が完了しました: {a.title}",
        f"「{a.title}」への登録が完了しました。"
        + _resumes(a, resumes)
        + "配信の停止: 次のページのボタンから、すぐに停止できます。\n"
        f"  {unsubscribe_url}\n"
        f"（{a.unsubscribe_address} へ空メールを送り、届く確認メールに返信しても停止できます）\n\n"
        f'English: you are now subscribed to "{a.slug}"{paused}.\n' + _footer(a),
    )


def goodbye(a: About) -> Text:
    return (
        f"【{a.service}】配信を停止しました: {a.title}",
        f"「{a.title}」の配信を停止しました。ご利用ありがとうございました。\n"
        f"再び登録するには {a.subscribe_address} へ空メールを送ってください。\n\n"
        f'English: you have left "{a.slug}".\n' + _footer(a),
    )


def already_subscribed(a: About) -> Text:
    return (
        f"【{a.service}】すでに登録されています: {a.title}",
        f"このアドレスはすでに「{a.title}」に登録されています。手続きは不要です。\n\n"
        f'English: this address is already subscribed to "{a.slug}".\n' + _footer(a),
    )


def not_subscribed(a: About) -> Text:
    return (
        f"【{a.service}】登録されていません: {a.title}",
        f"このアドレスは「{a.title}」に登録されていません。配信停止の手続きは不要です。\n"
        f"登録するには {a.subscribe_address} へ空メールを送ってください。\n\n"
        f'English: this address is not subscribed to "{a.slug}".\n' + _footer(a),
    )


def expired(a: About) -> Text:
    return (
        f"【{a.service}】確認の有効期限が切れています: {a.title}",
        "この確認の有効期限が切れているか、すでに使われています。\n"
        f"お手数ですが、もう一度お申し込みください（登録: {a.subscribe_address}、"
        f"配信停止: {a.unsubscribe_address}）。\n\n"
        "English: this confirmation has expired or was already used; please ask again.\n"
        + _footer(a),
    )


def unavailable(a: About) -> Text:
    return (
        f"【{a.service}】このチャネルは現在ご利用いただけません: {a.title}",
        f"「{a.title}」は現在ご利用いただけません。\n\n"
        f'English: "{a.slug}" is not in service.\n' + _footer(a),
    )


def help_text(a: About) -> Text:
    return (
        f"【{a.service}】使い方: {a.title}",
        f"「{a.title}」の使い方\n\n"
        f"登録: {a.subscribe_address} へ空メールを送る\n"
        f"配信停止: {a.unsubscribe_address} へ空メールを送る\n"
        f"コマンド: {a.request_address} へ、件名か本文に次のどれかを書いて送る\n"
        "  登録 (subscribe) / 解除 (unsubscribe) / ヘルプ (help)\n"
        "  一覧 (mypage): 登録しているチャネルの一覧とまとめて変更するページのリンク\n"
        f"お問い合わせ: {a.owner_address}\n\n"
        "English: send an empty mail to the subscribe or unsubscribe address above, or a "
        "command (subscribe, unsubscribe, help) to the request address.\n" + _footer(a),
    )


def unsubscribed_by_link(a: About) -> Text:
    return goodbye(a)


def forward_note(kind: str, sender: str) -> str:
    return (
        f"{kind}に次のお問い合わせが届きました。返信すると差出人（{sender}）に届きます。\n"
        "English: an inquiry follows; replying goes to its sender.\n"
    )


def unreadable(a: About, why: str) -> Text:
    """A mail we did not read (issue 11: hostile MIME is a result): say so, and how."""
    return (
        f"【{a.service}】メールを読み取れませんでした: {a.title}",
        f"お送りいただいたメールは、{why}ため読み取れず、何も手続きしていません。\n"
        "添付ファイルのない、短いテキストのメールでもう一度お送りください"
        "（登録・配信停止は空メールで足ります）。\n\n"
        f"登録: {a.subscribe_address}\n配信停止: {a.unsubscribe_address}\n\n"
        "English: we could not read your mail and did nothing with it; please send a short "
        "plain-text mail without attachments.\n" + _footer(a),
    )
