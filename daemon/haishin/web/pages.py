"""The daemon's own pages (confirm, results, one-click unsubscribe, held posts, /me/) in the
public site's look: Jinja2 templates in templates/, each extending base.html, which carries
the site theme's header, footer and style sheet (issue 14 item 3).

`render(template, status=, **values)` is all a handler calls. What every page shows of the
service (its name, operator, inquiry address 第3条(1), where the site is) comes from the
registry of the request being answered: the application's middleware (`themed`) puts it in
a context variable for the request's task, so a registry reload shows on the next page.

Where the theme's CSS and the site's links point, as a table (`SITE_BASE`): when the daemon
serves the built site itself (`haishin serve --static`, as `haishin demo` and deploy/ do),
its own public URL, so the page needs nothing from another host; otherwise `site_url` from
service.yaml, where the site is published.
"""

from __future__ import annotations

import contextvars
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from .. import urls
from ..registry.model import Service

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Site:
    """What base.html shows of the service; `base` is where the site's pages are."""

    service_name: str
    operator: str
    inquiry_address: str
    mail_domain: str
    base: str

    def url(self, pattern: str, **values: str) -> str:
        return urls.at(self.base, pattern, **values)


SITE_BASE: dict[bool, Callable[[Service, str], str]] = {
    True: lambda service, public_url: public_url,  # `--static`: the daemon serves the site
    False: lambda service, public_url: service.site_url,  # the site is published elsewhere
}
"""Whether the daemon serves the built site → where the theme's CSS and the site's pages are."""


def site_of(service: Service, public_url: str, *, serves_site: bool) -> Site:
    return Site(
        service_name=service.name,
        operator=service.operator,
        inquiry_address=service.inquiry_address,
        mail_domain=service.mail_domain,
        base=urls.base(SITE_BASE[serves_site](service, public_url)),
    )


log = logging.getLogger(__name__)

_CURRENT: contextvars.ContextVar[Site] = contextvars.ContextVar("haishin_page_site")

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # every value is escaped: titles and reasons come from the registry
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,  # a misspelt value fails the page's test, not silently
)
_ENV.globals["urls"] = urls


@contextmanager
def showing(site: Site) -> Iterator[None]:
    """Pages rendered inside the block show `site` (one request's task)."""
    token = _CURRENT.set(site)
    try:
        yield
    finally:
        _CURRENT.reset(token)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def themed(site: Callable[[], Site]) -> Middleware:
    """The aiohttp middleware that makes `site()` the pages' service for each request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        with showing(site()):
            try:
                return await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise  # a redirect
                page = error_page(exc.status)
                if "Allow" in exc.headers:  # 405 (RFC 9110 §15.5.6)
                    page.headers["Allow"] = exc.headers["Allow"]
                return page
            except Exception as exc:
                # a fault of ours: the citizen gets a page in Japanese, the log the type and
                # where, never the message (it may hold an address: redact.py, 第4条)
                where = traceback.extract_tb(exc.__traceback__)[-1]
                resource = request.match_info.route.resource
                log.error(
                    "web: %s %s failed: %s at %s:%d",  # the route, not the path: no token
                    request.method,
                    resource.canonical if resource else "?",
                    type(exc).__name__,
                    where.filename.rsplit("/", 1)[-1],
                    where.lineno or 0,
                )
                return error_page(500)

    return middleware


ERRORS: dict[int, tuple[str, str, str]] = {
    404: ("ページが見つかりません", "このアドレスのページはありません。", "Not found."),
    405: (
        "この方法では受け付けていません",
        "ページのボタンからお手続きください。何も変わっていません。",
        "Method not allowed.",
    ),
    413: (
        "送られた内容が大きすぎます",
        "受け付けられる大きさを超えていたため、読まずにお断りしました。何も変わっていません。",
        "Request body too large; nothing changed.",
    ),
    500: (
        "処理できませんでした",
        "申し訳ありません。時間をおいてもう一度お試しください。",
        "Internal error; please try again later.",
    ),
}
"""Statuses aiohttp answers by itself (or a fault of ours) → heading, line, English."""


def error_page(status: int) -> web.Response:
    """The page for an HTTP error `status`, in Japanese with the site's look."""
    heading, line, english = ERRORS.get(
        status,
        ("受け付けられませんでした", "何も変わっていません。", f"HTTP {status}; nothing changed."),
    )
    return render("error.html", status=status, heading=heading, line=line, english=english)


def render(template: str, *, status: int = 200, **values: Any) -> web.Response:
    """The page `template` (in templates/, extending base.html) filled with `values`."""
    text = _ENV.get_template(template).render(site=_CURRENT.get(), **values)
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        # the token is in the URL: no other site learns it from a Referer (the page's
        # links and its CSS request). same-origin, not no-referrer: under no-referrer
        # Chromium sends `Origin: null` with the page's own form POST, which the citizen's
        # page (web/mypage.py cross_site) must refuse as it would another site's
        headers={"Referrer-Policy": "same-origin", "X-Robots-Tag": "noindex"},
    )
