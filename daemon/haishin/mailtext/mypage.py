"""The texts of the citizen's own page (`mypage@`, `/me/<token>`): the link, the change
of address (the confirmation to the new address, the notice to the old one).

Japanese first, with one English line, like every automatic mail (texts.py). The link is
a key to every subscription of the address: the mail says so, and that forwarding it
lets another person change them.
"""

from __future__ import annotations

from .texts import Text


def _footer(service: str, site_url: str, inquiry: str) -> str:
    return f"\n----\n{service}\nお問い合わせ: {inquiry}\n{site_url}\n"


def link(service: str, site_url: str, inquiry: str, url: str, ttl_hours: int, address: str) -> Text:
    subject = f"【{service}】マイページのご案内"
    body = (
        f"{service}のマイページのリンクをお送りします。\n"
        f"このアドレス（{address}）で登録しているチャネルの一覧を見て、"
        "まとめて登録・解除したり、すべての配信を停止したり、"
        "配信先のアドレスを変更したりできます。\n\n"
        f"  {url}\n\n"
        f"このリンクは {ttl_hours} 時間有効です。パスワードの代わりになるので、"
        "ほかの人に転送しないでください。\n"
        "開くだけでは何も変わりません。変更はページのボタンを押したときだけ行います。\n"
        "お申し込みに心当たりがない場合は、このメールを無視してください。\n\n"
        f"English: your own page, listing every channel of this address: {url} "
        f"(valid for {ttl_hours} hours; opening it changes nothing).\n"
    )
    return subject, body + _footer(service, site_url, inquiry)


def move_confirm(
    service: str, site_url: str, inquiry: str, url: str, ttl_hours: int, titles: list[str]
) -> Text:
    subject = f"【{service}】配信先の変更の確認"
    listed = "".join(f"  ・{t}\n" for t in titles) or "  （現在、登録中のチャネルはありません）\n"
    body = (
        f"{service}の配信先を、このアドレスに変更するお申し込みを受け付けました。\n"
        "変更すると、次のチャネルの配信がこのアドレスに届くようになります。\n"
        f"{listed}\n"
        "変更を完了するには、次のどちらかを行ってください。\n"
        "  1. このメールにそのまま返信する（本文は空でかまいません）\n"
        f"  2. 次のページを開き、「このアドレスに変更する」ボタンを押す\n     {url}\n\n"
        f"この確認は {ttl_hours} 時間有効です。\n"
        "お申し込みに心当たりがない場合は、このメールを無視してください。"
        "何もしなければ変更されず、今後メールが届くこともありません。\n\n"
        f"English: reply to this message or open {url} to receive these channels at this "
        "address; if you did not ask for it, ignore this mail and nothing will change.\n"
    )
    return subject, body + _footer(service, site_url, inquiry)


def moved_notice(
    service: str, site_url: str, inquiry: str, new_masked: str, titles: list[str]
) -> Text:
    subject = f"【{service}】配信先を変更しました"
    listed = "".join(f"  ・{t}\n" for t in titles) or "  （移ったチャネルはありません）\n"
    body = (
        f"{service}の配信先が、このアドレスから {new_masked} に変わりました。\n"
        "次のチャネルは、今後このアドレスには届きません。\n"
        f"{listed}\n"
        "このアドレスへのマイページのリンクは使えなくなりました。\n"
        f"お心当たりがない場合は、{inquiry} までお知らせください。\n\n"
        f"English: your subscriptions moved to {new_masked}; this address gets no more "
        "posts from them.\n"
    )
    return subject, body + _footer(service, site_url, inquiry)


def moved_welcome(service: str, site_url: str, inquiry: str, url: str, titles: list[str]) -> Text:
    subject = f"【{service}】配信先の変更が完了しました"
    listed = "".join(f"  ・{t}\n" for t in titles) or "  （移ったチャネルはありません）\n"
    body = (
        f"{service}の配信先をこのアドレスに変更しました。次のチャネルが届きます。\n"
        f"{listed}\n"
        f"登録の確認や変更は、マイページから行えます。\n  {url}\n\n"
        f"English: your subscriptions now come to this address; your page: {url}\n"
    )
    return subject, body + _footer(service, site_url, inquiry)


def move_gone(service: str, site_url: str, inquiry: str) -> Text:
    """The answer to a reply to a change-of-address confirmation that is no longer open:
    the button was pressed first, it was replied to twice, it expired, or another change
    of the same address was confirmed (the web page's 410 says the same)."""
    subject = f"【{service}】配信先の変更について"
    body = (
        "このメールへの返信では、配信先を変更できませんでした。"
        "有効期限が切れたか、すでに手続きが済んでいます。\n"
        "変更がまだの場合は、前のアドレスのマイページからもう一度お申し込みください。\n\n"
        "English: this confirmation has expired or was already used; nothing changed.\n"
    )
    return subject, body + _footer(service, site_url, inquiry)


def mask(address: str) -> str:
    """An address as a notice names it to another mailbox: its first character and domain."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
