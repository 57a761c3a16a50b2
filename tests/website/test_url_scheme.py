"""One URL scheme (haishin/urls.py) for the site and the daemon: every link the daemon puts
in a mail names a page the site builds or a route the daemon serves. Replaces a test that
kept two copies of the scheme equal."""

from __future__ import annotations

import email.policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

from haishin import urls
from haishin.commands import membership, moves, mypage
from haishin.context import Context
from haishin.delivery import fanout
from haishin.delivery.render import render
from haishin.directory import Directory
from haishin.posting import approval
from haishin.registry import load_valid
from haishin.store import open_store
from haishin.tokens import Keyring
from haishin.web import app as web_app

from .conftest import build

GOLDEN = Path(__file__).resolve().parent / "golden"
KEY = Keyring(b"k" * 32)
SLUG = "minato-news"  # public back numbers, and one published post in the golden archive
POSTED = "2026-11-01-0001"
PUBLIC = "https://daemon.example.jp/haishin/"
TOKEN = "a" * 26


def _context() -> Context:
    return Context(Directory(load_valid(GOLDEN / "config"), KEY), KEY, PUBLIC)


def test_the_links_of_a_post_name_pages_the_site_builds(tmp_path: Path) -> None:
    result = build(tmp_path / "out", GOLDEN / "config", archive=GOLDEN / "archive")
    assert result.returncode == 0, result.log
    ctx = _context()
    rctx = fanout.render_context(ctx, SLUG, ())
    links = [rctx.channel_url, rctx.archive_url, fanout.archived_url(ctx, SLUG, POSTED)]
    site = urls.base(ctx.service.site_url)
    for link in links:
        assert link is not None and link.startswith(site), link
        assert (result.output / link.removeprefix(site)).is_file(), link


def test_the_links_of_every_mail_name_routes_the_daemon_serves(tmp_path: Path) -> None:
    ctx = _context()
    rendered = render(fanout.render_context(ctx, SLUG, ()), "p1", "件名", "本文")
    head = rendered.personal("taro@example.jp", TOKEN) + rendered.common()
    unsubscribe = BytesParser(policy=email.policy.default).parsebytes(head)["List-Unsubscribe"]
    one_click = str(unsubscribe).split("<", 1)[1].split(">", 1)[0]
    links = {
        urls.CONFIRM: membership.confirm_url(ctx, TOKEN),
        urls.UNSUBSCRIBE: membership.unsubscribe_url(ctx, TOKEN),
        urls.POST: approval.post_url(ctx, TOKEN),
        urls.ONE_CLICK: one_click,
        urls.ME: mypage.link_url(ctx, TOKEN),
        urls.ME_MOVE: moves.move_url(ctx, TOKEN),
    }
    assert set(links) == set(urls.DAEMON_PAGES)
    engine = open_store(f"sqlite:///{tmp_path / 'haishin.db'}")
    app = web_app.build(engine, lambda: ctx, lambda: None, None)
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    prefix = urlsplit(PUBLIC).path.rstrip("/")
    for pattern, link in links.items():
        assert link.startswith(PUBLIC), link
        route = urls.route(pattern)
        # a GET shows the page, its button POSTs (web/app.py: a GET never changes anything)
        assert {("GET", route), ("POST", route)} <= served, route
        assert urlsplit(link).path == prefix + route.format(token=TOKEN), link
    engine.dispose()
