"""The daemon's pages in the site's look (web/pages.py): where their CSS and site links
point, and that each names its channel; the browser checks are in test_pages_browser.py."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from haishin import urls
from haishin.store import subscribers
from support.inprocess import inprocess

SITE_URL = "https://mail.city.kawasaki.example.jp/"  # config/service.yaml site_url


def test_without_the_built_site_the_pages_take_the_css_from_the_published_site(
    tmp_path: Path,
) -> None:
    with inprocess(f"sqlite:///{tmp_path / 'h.db'}") as ip:
        with ip.engine.begin() as conn:
            sub = subscribers.activate(
                conn, "gomi-recycle", "a@example.jp", method="t", evidence="t"
            )
        token = ip.ctx.unsubscribe_token(sub.id)
        code, page = ip.http(urls.at(ip.ctx.public_url, urls.ONE_CLICK, token=token))
    assert code == 200
    assert f'href="{SITE_URL}{urls.THEME_CSS}"' in page
    assert f'href="{SITE_URL}{urls.CHANNEL.format(slug="gomi-recycle")}"' in page
    assert "ごみ・リサイクル情報" in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page


def test_a_page_escapes_what_it_shows_and_keeps_its_token_from_other_sites(
    tmp_path: Path,
) -> None:
    with inprocess(f"sqlite:///{tmp_path / 'h.db'}") as ip, ip.web() as (host, port):
        try:
            urllib.request.urlopen(f"http://{host}:{port}/confirm/<script>{'a' * 18}", timeout=10)
        except urllib.error.HTTPError as e:
            code, headers, page = e.code, e.headers, e.read().decode()
    assert code == 404
    assert "<script>" not in page
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "このリンクは無効です" in page
