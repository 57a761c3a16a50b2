"""The citizen's own page (issue 14) in real headless Chromium, at phone and desktop
widths, with axe-core at WCAG 2.1 AA like the site (test_browser.py): the page for a
first-time address (一括登録), the page with subscriptions in every state, the result of
saving (pressed in the browser: its real Origin passes the cross-site check), the page of a
link that no longer works, and the change-of-address confirmation and its result.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from haishin.store import subscribers as subs
from support.browser import (
    WIDTHS,
    axe,
    no_overflow,
    press,
    screenshot,
    summary,
    viewport,
)
from support.helpers import DOMAIN
from support.inprocess import inprocess

BRAND = "rgba(18, 63, 115, 1)"  # site.css --brand: the header's colour proves the CSS loaded
ADDRESS = "hanako@example.jp"
NEW = "hanako2@example.jp"


def _check(driver: Any, axe_js: str, name: str, width: int) -> None:
    assert driver.execute_script("return document.documentElement.lang") == "ja"
    no_overflow(driver, width)
    header = driver.find_element("css selector", ".site-header")
    assert header.value_of_css_property("background-color") == BRAND, "the theme's CSS"
    screenshot(driver, f"daemon-{name}", width)
    violations = axe(driver, axe_js)
    assert violations == [], (name, summary(violations))


def _press(driver: Any, selector: str) -> str:
    """Press a form's button and wait for the page it brings; that page's heading."""
    press(driver, lambda d: d.find_element("css selector", selector))
    return str(driver.find_element("tag name", "h1").text)


def _path(body: str, pattern: str) -> str:
    (url,) = set(re.findall(rf"http://\S+/{pattern}/[a-z2-7]{{26}}", body))
    return urllib.parse.urlsplit(url).path


@pytest.mark.parametrize("width", WIDTHS)
def test_mypage_pages_in_chromium(
    chromium: Any, axe_js: str, sample_site: Path, tmp_path: Path, width: int
) -> None:
    driver = chromium
    driver.set_script_timeout(60)
    with (
        inprocess(f"sqlite:///{tmp_path / 'haishin.db'}") as ip,
        ip.web(static=sample_site) as (host, port),
    ):
        base = f"http://{host}:{port}"
        ip.ctx = dataclasses.replace(
            ip.ctx, public_url=base + "/"
        )  # as `serve` without --public-url
        raw = f"From: {ADDRESS}\r\nTo: mypage@{DOMAIN}\r\nSubject: \r\n\r\n".encode()
        ip.deliver(raw, ADDRESS, [f"mypage@{DOMAIN}"])
        link = _path(ip.mail(ADDRESS, "マイページ")[0].body, "me")
        viewport(driver, width)

        driver.get(base + link)  # first time: nothing checked (一括登録)
        assert not driver.find_elements("css selector", "input[name=channel]:checked")
        _check(driver, axe_js, "me-first", width)

        # choose two channels and save, as a person does
        for slug in ("gomi-recycle", "sports-event"):
            driver.find_element("id", f"ch-{slug}").click()
        assert "登録内容を保存しました" in _press(driver, "form[aria-labelledby=choose] button")
        _check(driver, axe_js, "me-saved", width)
        with ip.engine.connect() as conn:
            assert {
                s for s, x in subs.of_address(conn, ADDRESS).items() if x.status == "active"
            } == {
                "gomi-recycle",
                "sports-event",
            }

        with ip.engine.begin() as conn:  # a channel stopped for bounces, one pending
            sub = subs.activate(conn, "kenshin-info", ADDRESS, method="t", evidence="t")
            subs.disable(conn, sub.id, method="bounce")
            subs.ensure_pending(conn, "kaigo-yobou", ADDRESS)
        driver.get(base + link)
        text = driver.find_element("tag name", "main").text
        assert "一時停止" in text and "配信エラー" in text and "確認待ち" in text
        _check(driver, axe_js, "me-states", width)

        # ask to change the address; the new address's confirmation page, then its result
        driver.find_element("id", "new-address").send_keys(NEW)
        assert "確認のメールを送りました" in _press(driver, "form[aria-labelledby=move] button")
        _check(driver, axe_js, "me-move-asked", width)
        move = _path(ip.mail(NEW, "配信先の変更の確認")[0].body, "me/move")
        driver.get(base + move)
        _check(driver, axe_js, "me-move-confirm", width)
        assert "配信先を変更しました" in _press(driver, "form button")
        _check(driver, axe_js, "me-moved", width)

        driver.get(base + link)  # the old link: gone
        assert "使えなくなりました" in driver.find_element("tag name", "h1").text
        _check(driver, axe_js, "me-gone", width)
