"""What the daemon's result pages say for each outcome of a button or a link, as a table.

Each page names its channel (issue 14 item 3) and says what holds now; a second press of a
confirm button finds the work done and says so (ALREADY_SUBSCRIBED / NOT_SUBSCRIBED), not
that the link expired.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..context import Outcome
from . import pages


@dataclass(frozen=True)
class Said:
    heading: str
    lines: tuple[str, ...]
    english: str
    status: int  # RFC 9110: 200 when what the person wants holds now


RESULTS: dict[Outcome, Said] = {
    Outcome.SUBSCRIBED: Said(
        "登録が完了しました",
        ("次回の配信からお届けします。登録完了のメールもお送りしました。",),
        "Your subscription is confirmed.",
        200,
    ),
    Outcome.UNSUBSCRIBED: Said(
        "配信を停止しました",
        ("このアドレスへの配信を停止しました。ご利用ありがとうございました。",),
        "You have been unsubscribed.",
        200,
    ),
    Outcome.ALREADY_SUBSCRIBED: Said(
        "登録済みです",
        ("このアドレスはすでに登録されています。手続きは不要です。",),
        "You are subscribed already; nothing more to do.",
        200,
    ),
    Outcome.NOT_SUBSCRIBED: Said(
        "配信は停止済みです",
        ("このアドレスは登録されていません。配信停止の手続きは不要です。",),
        "This address is not subscribed; nothing more to do.",
        200,  # what the person wants already holds
    ),
    Outcome.EXPIRED: Said(
        "このリンクの有効期限が切れています",
        (
            "手続きは完了していません。お手数ですが、もう一度はじめからお申し込みください。",
            "登録も配信停止も、配信メールのページにあるアドレスに空メールを送ると、はじめからやり直せます。",
        ),
        "This link has expired; nothing changed. Please start again.",
        410,  # Gone: it was valid once
    ),
    Outcome.INVALID_TOKEN: Said(
        "このリンクは無効です",
        (
            "リンクが途中で切れているか、正しくありません。何も変わっていません。",
            "メールのリンクをもう一度開くか、配信メール一覧からお手続きください。",
        ),
        "This link is not valid; nothing changed.",
        404,  # no such link
    ),
    Outcome.UNAVAILABLE: Said(
        "この配信メールは現在ご利用いただけません",
        ("配信を終了したか、準備中です。何も変わっていません。",),
        "This channel is not available; nothing changed.",
        410,
    ),
}


@dataclass(frozen=True)
class Channel:
    """The channel a page names, with its page on the site."""

    slug: str
    title: str


def result(outcome: Outcome, channel: Channel | None) -> web.Response:
    said = RESULTS.get(outcome) or Said(
        "受け付けました", ("お手続きを受け付けました。",), "Done.", 400
    )
    return pages.render(
        "result.html",
        status=said.status,
        heading=said.heading,
        lines=said.lines,
        english=said.english,
        channel=channel,
    )
