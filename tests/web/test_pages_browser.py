"""Issue 14 item 3: every page of the daemon in real headless Chromium, at 390 and 1280 px,
with axe-core at WCAG 2.1 AA, as the site's pages are (tests/website/test_browser.py).

The daemon's web application runs in process (support/inprocess.py) on SQLite, serving the
sample site built by Pelican (`serve --static`, as the demo and deploy/ do), so each page
loads the theme's CSS from the daemon itself. Each row of PAGES makes the state its page
needs (a pending confirmation, a subscriber, a held post) through the store, opens the
page, presses what a citizen would press, then checks: lang="ja", English parts marked
lang="en", the theme applied (the header's colour), the channel named, no horizontal
overflow, no axe violation; the screenshot goes to test-artifacts/daemon-<row>-<width>.png.

A page another branch adds (the citizen's /me/ pages) is one more row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import pytest

from haishin import urls
from haishin.clock import utcnow
from haishin.store import confirmations, subscribers
from haishin.store.confirmations import Action
from haishin.tokens import Purpose
from support import browser, posting
from support.browser import (  # fixtures: chromium, axe_js
    WIDTHS,
    axe,
    axe_js,  # noqa: F401
    chromium,  # noqa: F401
    no_overflow,
    screenshot,
    summary,
    viewport,
)
from support.inprocess import InProcess, inprocess

ACTIVE = "gomi-recycle"
ACTIVE_TITLE = "ごみ・リサイクル情報"
PAUSED = "sports-event"  # paused in the sample registry (第3条5)
BRAND = "rgba(18, 63, 115, 1)"  # site.css --brand: the header's colour proves the CSS loaded


@dataclass
class Scene:
    """The daemon's web application on a port, over a store the rows fill."""

    ip: InProcess
    base: str  # the daemon's public URL, ending in "/"

    def address(self) -> str:
        return f"citizen-{uuid.uuid4().hex[:10]}@example.jp"

    def confirm_url(self, slug: str, action: Action, *, ttl_hours: float = 24) -> str:
        """A pending confirmation, as a mail to <slug>-subscribe@ leaves it."""
        address = self.address()
        with self.ip.engine.begin() as conn:
            if action is Action.SUBSCRIBE:
                subscribers.add_pending(conn, slug, address)
            else:
                subscribers.activate(conn, slug, address, method="test", evidence="test")
            pending = confirmations.create(
                conn, slug, address, action, dt.timedelta(hours=24), "test", None
            )
        expires = utcnow() + dt.timedelta(hours=ttl_hours)
        token = self.ip.ctx.keyring.make(Purpose.CONFIRM, pending.id, expires)
        return urls.at(self.base, urls.CONFIRM, token=token)

    def unsubscribe_url(self, slug: str) -> str:
        """The one-click link (RFC 8058) of a post to an active subscriber."""
        with self.ip.engine.begin() as conn:
            sub = subscribers.activate(conn, slug, self.address(), method="test", evidence="t")
        return urls.at(self.base, urls.ONE_CLICK, token=self.ip.ctx.unsubscribe_token(sub.id))

    def post_url(self) -> str:
        """The approval page of a post held for its sender's approval (第5条(1))."""
        msg = posting.post_message(f"お知らせ {uuid.uuid4().hex[:6]}", "収集日のお知らせです。\n")
        self.ip.deliver(msg.as_bytes(policy=policy.SMTP), posting.SENDER, [str(msg["To"])])
        request = self.ip.mail(posting.SENDER, "投稿の確認")[-1]
        return next(w for w in request.body.split() if w.startswith(self.base + "post/"))

    def post(self, url: str, body: bytes) -> int:
        """A POST from elsewhere (another tab, a second device) before the browser's."""
        req = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)


def press(driver: Any, text: str) -> None:
    """Press the page's button that says `text` (the page itself needs no JavaScript)."""

    def button(d: Any) -> Any:
        found = [b for b in d.find_elements("css selector", "form button") if b.text == text]
        assert found, f"no button {text!r}"
        return found[0]

    browser.press(driver, button)


@dataclass(frozen=True)
class Page:
    """One daemon page: how to reach it, and what it must say."""

    open: Callable[[Scene, Any], None]
    heading: str
    channel: str | None = ACTIVE_TITLE  # the channel the page names, if any
    says: str = ""


def _get(url: Callable[[Scene], str]) -> Callable[[Scene, Any], None]:
    return lambda scene, driver: driver.get(url(scene))


def _then(
    url: Callable[[Scene], str], *steps: Callable[[Scene, Any, str], None]
) -> Callable[[Scene, Any], None]:
    def open_(scene: Scene, driver: Any) -> None:
        target = url(scene)
        driver.get(target)
        for step in steps:
            step(scene, driver, target)

    return open_


def _press(text: str) -> Callable[[Scene, Any, str], None]:
    return lambda scene, driver, url: press(driver, text)


def _elsewhere(body: bytes) -> Callable[[Scene, Any, str], None]:
    return lambda scene, driver, url: None if scene.post(url, body) == 200 else pytest.fail(url)


def _drop_one_click_field(scene: Scene, driver: Any, url: str) -> None:
    # a form without the RFC 8058 body, as a scanner that follows forms sends it
    driver.execute_script("document.querySelector('input[type=hidden]').remove()")


def _subscribe(scene: Scene) -> str:
    return scene.confirm_url(ACTIVE, Action.SUBSCRIBE)


PAGES: dict[str, Page] = {
    "confirm-subscribe": Page(_get(_subscribe), "登録の確認", says="登録する"),
    "confirm-unsubscribe": Page(
        _get(lambda s: s.confirm_url(ACTIVE, Action.UNSUBSCRIBE)), "配信停止の確認"
    ),
    "confirm-paused": Page(
        _get(lambda s: s.confirm_url(PAUSED, Action.SUBSCRIBE)),
        "登録の確認",
        channel="スポーツ・イベント情報",
        says="一時停止",
    ),
    "subscribed": Page(_then(_subscribe, _press("登録する")), "登録が完了しました"),
    # the button pressed twice (another tab was quicker): done, not expired
    "already-subscribed": Page(
        _then(_subscribe, _elsewhere(b""), _press("登録する")), "登録済みです"
    ),
    "already-subscribed-reopened": Page(
        _then(_subscribe, _press("登録する"), lambda s, d, url: d.get(url)), "登録済みです"
    ),
    "expired": Page(
        _get(lambda s: s.confirm_url(ACTIVE, Action.SUBSCRIBE, ttl_hours=-1)),
        "このリンクの有効期限が切れています",
    ),
    "invalid": Page(
        _get(lambda s: urls.at(s.base, urls.CONFIRM, token="a" * 26)),
        "このリンクは無効です",
        channel=None,
    ),
    "unsubscribe": Page(_get(lambda s: s.unsubscribe_url(ACTIVE)), "配信停止"),
    "unsubscribed": Page(
        _then(lambda s: s.unsubscribe_url(ACTIVE), _press("配信を停止する")), "配信を停止しました"
    ),
    "already-unsubscribed": Page(
        _then(
            lambda s: s.unsubscribe_url(ACTIVE),
            _elsewhere(b"List-Unsubscribe=One-Click"),
            _press("配信を停止する"),
        ),
        "配信は停止済みです",
    ),
    "already-unsubscribed-reopened": Page(
        _then(
            lambda s: s.unsubscribe_url(ACTIVE),
            _press("配信を停止する"),
            lambda s, d, url: d.get(url),
        ),
        "配信は停止済みです",
    ),
    "not-one-click": Page(
        _then(lambda s: s.unsubscribe_url(ACTIVE), _drop_one_click_field, _press("配信を停止する")),
        "配信停止の手続きができませんでした",
        channel=None,
    ),
    "held-post": Page(_get(Scene.post_url), "投稿の確認", says="配信する"),
    "held-post-approved": Page(_then(Scene.post_url, _press("配信する")), "承認しました"),
    # what aiohttp refuses by itself (pages.py `themed`): a mistyped link
    "not-found": Page(
        _get(lambda s: s.base + "no-such-page/"),
        "ページが見つかりません",
        channel=None,
        says="Not found",
    ),
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, sample_site: Path) -> Iterator[Scene]:
    db = tmp_path_factory.mktemp("daemon-pages") / "haishin.db"
    with inprocess(f"sqlite:///{db}") as ip, ip.web(static=sample_site) as (host, port):
        base = f"http://{host}:{port}/"
        ip.ctx = dataclasses.replace(ip.ctx, public_url=base)  # as `serve` without --public-url
        yield Scene(ip, base)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_daemon_page_in_chromium(
    chromium: Any,  # noqa: F811
    axe_js: str,  # noqa: F811
    scene: Scene,
    name: str,
    width: int,
) -> None:
    driver = chromium
    page = PAGES[name]
    viewport(driver, width)
    driver.set_script_timeout(60)
    page.open(scene, driver)

    assert driver.execute_script("return document.documentElement.lang") == "ja"
    heading = driver.find_element("css selector", "main h1").text
    assert heading == page.heading
    header = driver.find_element("css selector", ".site-header")
    assert header.value_of_css_property("background-color") == BRAND, "the theme's CSS"
    main = driver.find_element("css selector", "main").text
    if page.channel:
        assert page.channel in driver.find_element("css selector", ".channel-name").text
    assert page.says in main
    # every English sentence is marked, so that a screen reader reads it as English
    for p in driver.find_elements("css selector", "main p"):
        if p.text.isascii() and any(c.isalpha() for c in p.text):
            assert p.get_attribute("lang") == "en", p.text
    no_overflow(driver, width)
    screenshot(driver, f"daemon-{name}", width)
    violations = axe(driver, axe_js)
    assert violations == [], summary(violations)
