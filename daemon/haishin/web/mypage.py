"""The citizen's own page `/me/<token>` and the change-of-address confirmation
`/me/move/<token>` (issue 14).

A GET shows and never acts (link scanners and previews open every link). The forms POST
urlencoded to the same URL; the token in it is the proof of the mailbox, so another site
cannot forge a POST without it. A POST that says it comes from another site (Origin,
Sec-Fetch-Site) is refused all the same, and the pages are never framed, cached or sent as
a Referer (their URL is a key).

| request | answer |
|---|---|
| token not ours, or not a page's | 404, nothing shown |
| token expired, or its address moved away | 410, how to get a new link |
| a POST from another site | 403, nothing changed |
| a form that cannot be read, an unknown action | 400, nothing changed |
| a channel that is not served (forged or stale form) | 400, nothing changed |
| a body over 64 KiB (10,000 channel values) | 413 from aiohttp, unread |
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy

from .. import addresses as contract
from .. import urls
from ..clock import JST, utcnow
from ..commands import moves, mypage
from ..context import Context
from ..outbound.ratelimit import client_network
from ..store import mypage as store
from ..store.engine import reading
from ..tokens import TOKEN_LEN, Purpose, Verdict
from .pages import render
from .peer import client_address

ContextSource = Callable[[], Context]

HEADERS = {
    # the URL is a key: no Referer to another site (the public site it links to), never
    # cached, never indexed, never framed (clickjacking), forms only to ourselves. Not
    # "no-referrer": under it a browser sends `Origin: null` with the page's own form POST
    # (Fetch, "append a request Origin header"), which `cross_site` must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; form-action 'self'",
}

FORM = "application/x-www-form-urlencoded"


def _page(template: str, ctx: Context, status: int = 200, **values: Any) -> web.Response:
    response = render(template, status=status, **values)
    response.headers.update(HEADERS)
    return response


def _message(ctx: Context, status: int, heading: str, *lines: str, back: str = "") -> web.Response:
    return _page(
        "me_result.html",
        ctx,
        status,
        heading=heading,
        lines=list(lines),
        subscribed=[],
        unsubscribed=[],
        back=back,
    )


def _new_link_hint(ctx: Context) -> str:
    return f"{ctx.address(contract.MYPAGE, '')} に空メールを送ると、新しいリンクが届きます。"


def _cross_site_refused(ctx: Context) -> web.Response:
    """A POST from another site's form (`cross_site`): 403, and nothing changes."""
    return _message(
        ctx, 403, "受け付けられませんでした", "ほかのサイトからの送信です。何も変わっていません。"
    )


def _gone(ctx: Context, invalid: bool) -> web.Response:
    if invalid:
        return _message(ctx, 404, "このリンクは無効です", _new_link_hint(ctx))
    return _message(
        ctx,
        410,
        "このリンクは使えなくなりました",
        "有効期限が切れたか、配信先のアドレスが変更されました。",
        _new_link_hint(ctx),
    )


def _token(request: web.Request) -> str:
    token = request.match_info["token"].lower()
    return token if len(token) == TOKEN_LEN else ""


def _forged(ctx: Context, purpose: Purpose, token: str) -> bool:
    return ctx.keyring.open(purpose, token, utcnow()).verdict is Verdict.INVALID


def cross_site(request: web.Request, ctx: Context) -> bool:
    """A POST a browser says comes from another site (Fetch Metadata, RFC 6454 Origin)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False  # not a browser, or an old one: the token still decides
    ours = {request.host.lower(), urlsplit(ctx.public_url).netloc.lower()}
    return urlsplit(origin).netloc.lower() not in ours  # "null" too


async def _form(request: web.Request) -> MultiDictProxy[Any] | None:
    if request.content_type != FORM:
        return None
    try:
        form = await request.post()
    except web.HTTPException:
        raise  # 413: too large, refused unread
    except (ValueError, LookupError, UnicodeError, AssertionError, RuntimeError):
        return None  # bad percent-encoding or charset: answered, never a traceback
    # urlencoded: every value is text (only multipart brings files, refused above)
    return form


def _when(at: dt.datetime) -> str:
    return at.astimezone(JST).strftime("%Y年%m月%d日 %H:%M")


def _titles(ctx: Context, slugs: list[str]) -> list[str]:
    channels = ctx.registry.channels
    return [channels[s].value.title if s in channels else s for s in slugs]


def add_routes(
    routes: web.RouteTableDef,
    engine: sa.Engine,
    ctx_of: ContextSource,
    wake_sender: Callable[[], None],
) -> None:
    @routes.get(urls.route(urls.ME))
    async def me_page(request: web.Request) -> web.Response:
        ctx = ctx_of()
        token = _token(request)

        def look() -> tuple[mypage.LinkVerdict, store.Link | None, list[mypage.Group]]:
            with reading(engine) as conn:
                verdict, link = mypage.open_link(conn, ctx, token)
                groups = mypage.page(conn, ctx, link.address) if link else []
                return verdict, link, groups

        verdict, link, groups = await asyncio.to_thread(look)
        if link is None:
            return _gone(ctx, verdict is mypage.LinkVerdict.INVALID)
        return _page(
            "me.html",
            ctx,
            address=link.address,
            groups=groups,
            any_checked=any(r.checked for g in groups for r in g.rows),
            expires=_when(link.expires_at),
            mypage_address=ctx.address(contract.MYPAGE, ""),
        )

    @routes.post(urls.route(urls.ME))
    async def me_post(request: web.Request) -> web.Response:
        ctx = ctx_of()
        if cross_site(request, ctx):
            return _cross_site_refused(ctx)
        token = _token(request)
        if _forged(ctx, Purpose.MYPAGE, token):
            return _gone(ctx, True)  # the HMAC first: a forgery opens no transaction
        form = await _form(request)
        back = urls.at(ctx.public_url, urls.ME, token=token) if token else ""
        if form is None or form.get("action") not in ("save", "leave", "move"):
            return _message(
                ctx,
                400,
                "受け付けられませんでした",
                "送られた内容を読めませんでした。何も変わっていません。",
                back=back,
            )
        action = form["action"]
        chosen = set(form.getall("channel", []))
        peer = client_address(request) or "unknown"
        # a change of address mails a stranger's address: counted per client network too,
        # so one client with many links cannot use up everyone's share (ratelimit.py)
        ctx = ctx.from_network(client_network("web", peer, ctx.service.limits.client_networks))
        if action == "save" and not chosen <= set(mypage.served(ctx)):
            # a forged or stale form (a slug not served, 10,000 values): nothing changes
            return _message(
                ctx,
                400,
                "受け付けられませんでした",
                "選べないチャネルが含まれていました。何も変わっていません。",
                back=back,
            )

        def act() -> web.Response:
            with engine.begin() as conn:
                verdict, link = mypage.open_link(conn, ctx, token, to_change=True)
                if link is None:
                    return _gone(ctx, verdict is mypage.LinkVerdict.INVALID)
                if action == "move":
                    asked = moves.request(conn, ctx, link, form.get("address", ""), peer)
                    return _moved_asked(ctx, asked, back)
                if action == "leave":
                    changes = mypage.leave_all(conn, ctx, link)
                    heading = "すべての配信を停止しました"
                else:
                    changes = mypage.save(conn, ctx, link, chosen, peer)
                    heading = "登録内容を保存しました"
                lines = (
                    []
                    if changes.subscribed or changes.unsubscribed
                    else ["変更はありませんでした。"]
                )
                return _page(
                    "me_result.html",
                    ctx,
                    heading=heading,
                    lines=lines,
                    subscribed=_titles(ctx, changes.subscribed),
                    unsubscribed=_titles(ctx, changes.unsubscribed),
                    back=back,
                )

        response = await asyncio.to_thread(act)
        wake_sender()
        return response

    @routes.get(urls.route(urls.ME_MOVE))
    async def move_page(request: web.Request) -> web.Response:
        ctx = ctx_of()
        token = _token(request)

        def look() -> tuple[moves.Confirmed, list[str], str]:
            with reading(engine) as conn:
                verdict, move = moves.open_move(conn, ctx, token)
                if verdict is not moves.Confirmed.MOVED or move is None:
                    return verdict, [], ""
                return verdict, moves.active(conn, move.old_address), move.new_address

        verdict, slugs, new = await asyncio.to_thread(look)
        if verdict is not moves.Confirmed.MOVED:
            return _move_gone(ctx, verdict)
        return _page("me_move.html", ctx, new_address=new, titles=_titles(ctx, slugs))

    @routes.post(urls.route(urls.ME_MOVE))
    async def move_post(request: web.Request) -> web.Response:
        ctx = ctx_of()
        if cross_site(request, ctx):
            return _cross_site_refused(ctx)
        token = _token(request)
        if _forged(ctx, Purpose.MOVE, token):
            return _move_gone(ctx, moves.Confirmed.INVALID)
        how = f"web button from {client_address(request) or 'unknown'} at {utcnow().isoformat()}"

        def act() -> moves.Result:
            with engine.begin() as conn:
                return moves.confirm(conn, ctx, token, how, mail_welcome=False)

        result = await asyncio.to_thread(act)
        wake_sender()
        if result.verdict is not moves.Confirmed.MOVED:
            return _move_gone(ctx, result.verdict)
        return _page(
            "me_result.html",
            ctx,
            heading="配信先を変更しました",
            lines=["これからは、このアドレスに届きます。前のアドレスにはお知らせを送りました。"],
            subscribed=_titles(ctx, result.moved),
            unsubscribed=[],
            back=result.new_link or "",
        )


def _moved_asked(ctx: Context, asked: moves.Asked, back: str) -> web.Response:
    if asked is moves.Asked.SENT:
        return _message(
            ctx,
            200,
            "確認のメールを送りました",
            "新しいアドレスに届いたメールに返信するか、メールのリンクのボタンを押すと、変更が完了します。",
            "それまでは、これまでのアドレスに届きます。",
            back=back,
        )
    why = {
        moves.Asked.NOT_AN_ADDRESS: "メールアドレスとして読めませんでした。",
        moves.Asked.SAME: "今のアドレスと同じです。",
        moves.Asked.OURS: "このサービス自身のアドレスには変更できません。",
        moves.Asked.TOO_MANY: f"このリンクからの変更の申し込みは {moves.MOVES_PER_LINK} 回までです。",
        moves.Asked.RATE_LIMITED: "そのアドレスへのメールが多すぎるため、しばらくしてからお試しください。",
    }[asked]
    status = 429 if asked in (moves.Asked.TOO_MANY, moves.Asked.RATE_LIMITED) else 400
    return _message(
        ctx, status, "変更を受け付けられませんでした", why, "何も変わっていません。", back=back
    )


def _move_gone(ctx: Context, verdict: moves.Confirmed) -> web.Response:
    if verdict is moves.Confirmed.INVALID:
        return _message(ctx, 404, "このリンクは無効です", "何も変わっていません。")
    return _message(
        ctx,
        410,
        "このリンクは使えなくなりました",
        "有効期限が切れたか、すでに手続きが済んでいます。",
        "変更がまだの場合は、前のアドレスのマイページからもう一度お申し込みください。",
    )
