"""Issue 14 item 5: one guide per carrier on the site, each naming the service's domain and
the carrier's own names for its settings, reached from every channel page and from every
confirmation request (the browser checks are rows of test_browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from haishin import urls
from haishin.commands import membership
from haishin.registry import load_valid
from support.inprocess import inprocess

from .conftest import CONFIG
from .html import parse

SERVICE = load_valid(CONFIG).service
assert SERVICE is not None
DOMAIN = SERVICE.value.mail_domain
SITE_URL = SERVICE.value.site_url

SETTINGS = {
    # what each carrier calls the settings a reader must find (their own words)
    "docomo": ("受信リスト設定", "URL付きメール拒否設定", "My docomo"),
    "au": ("迷惑メールフィルター", "受信リスト設定", "URLリンク規制"),
    "softbank": ("受信許可リスト", "URLリンク付きメール拒否設定", "My SoftBank"),
    "ymobile-rakuten": ("受信許可リスト設定", "My Y!mobile", "Rakuten Link"),
    "gmail": (
        "迷惑メールにしない",
        "フィルタとブロック中のアドレス",
        "迷惑メールではないことを報告",
    ),
    "icloud": ("迷惑メールではない", "ルール", "iCloud.com"),
}


def _text(path: Path) -> str:
    return parse(path).text


def test_one_page_per_carrier_with_the_domain_and_the_carriers_names(sample_site: Path) -> None:
    assert set(SETTINGS) == set(urls.CARRIER_PAGES)
    index = (sample_site / urls.CARRIERS).read_text("utf-8")
    for carrier, names in SETTINGS.items():
        page = sample_site / urls.CARRIER.format(carrier=carrier)
        text = _text(page)
        assert DOMAIN in text, carrier
        for name in names:
            assert name in text, (carrier, name)
        assert f'href="../{urls.CARRIER.format(carrier=carrier)}"' in index


@pytest.mark.parametrize("slug", ["kosodate-news", "sports-event"])
def test_every_channel_page_links_the_guides(sample_site: Path, slug: str) -> None:
    page = (sample_site / urls.CHANNEL.format(slug=slug)).read_text("utf-8")
    assert f'href="../{urls.CARRIERS}"' in page


def test_every_confirmation_request_links_the_guides(tmp_path: Path) -> None:
    guide = urls.at(SITE_URL, urls.CARRIERS)
    with inprocess(f"sqlite:///{tmp_path / 'h.db'}") as ip:
        with ip.engine.begin() as conn:
            membership.request_subscribe(conn, ip.ctx, "gomi-recycle", "a@example.jp", origin="t")
            membership.request_subscribe(conn, ip.ctx, "sports-event", "b@example.jp", origin="t")
        [sub] = ip.mail("a@example.jp", "登録の確認")
        [paused] = ip.mail("b@example.jp", "登録の確認")
        token = sub.body.split("/confirm/", 1)[1].split()[0]
        with ip.engine.begin() as conn:
            membership.confirm(conn, ip.ctx, token, method="t", evidence="t", answer_to=None)
            membership.request_unsubscribe(conn, ip.ctx, "gomi-recycle", "a@example.jp", origin="t")
        [unsub] = ip.mail("a@example.jp", "配信停止の確認")
    for mail in (sub, paused, unsub):
        assert guide in mail.body, mail.subject
        assert DOMAIN in mail.body
