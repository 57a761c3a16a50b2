"""The daemon's pages in the site's look (web/pages.py): where their CSS and site links
point, and that each names its channel; the browser checks are in test_pages_browser.py."""

from __future__ import annotations

import http.client
import re
import smtplib
import urllib.error
import urllib.request
from email import policy
from email.parser import BytesParser
from pathlib import Path

from haishin import urls
from haishin.store import subscribers
from support import helpers, posting
from support.helpers import DOMAIN
from support.inprocess import inprocess
from website.conftest import sample_site  # noqa: F401 (the built site, a fixture)

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
    assert headers["Referrer-Policy"] == "same-origin"  # no other site sees the token
    assert "このリンクは無効です" in page


def test_haishin_serve_with_the_built_site_gives_its_pages_the_themes_css(
    tmp_path: Path,
    sample_site: Path,  # noqa: F811
) -> None:
    """As `haishin demo` and deploy/ run it (`--static`): the page's style sheet is the
    daemon's own copy of the site's, at its public URL, so nothing comes from another host."""
    with helpers.running(
        tmp_path, f"sqlite:///{tmp_path / 'h.db'}", extra=["--static", str(sample_site)]
    ) as (d, _engine):
        with smtplib.SMTP(*d.smtp) as client:
            client.sendmail(
                "css@example.jp", [f"gomi-recycle-subscribe@{DOMAIN}"], b"Subject: \r\n\r\n"
            )
        mail = helpers.wait_until(lambda: _maildir(tmp_path / "maildir"), what="confirmation")
        url = next(w for w in mail.split() if "/confirm/" in w)
        base = f"http://{d.http[0]}:{d.http[1]}/"
        assert url.startswith(base)
        with urllib.request.urlopen(url, timeout=10) as r:
            page = r.read().decode()
        css = f"{base}{urls.THEME_CSS}"
        assert f'href="{css}"' in page
        assert f'href="{base}{urls.CARRIERS}"' in page  # the site's links: the same host
        with urllib.request.urlopen(css, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/css")
            assert (sample_site / urls.THEME_CSS).read_bytes() == r.read()
        # every link of the page's header and footer names a page the site built
        links = set(re.findall(r'href="([^"]+)"', page))
        site_links = [u for u in links if u.startswith(base)]
        assert len(site_links) >= 8
        for link in site_links:
            with urllib.request.urlopen(link, timeout=10) as r:
                assert r.status == 200, link
        helpers.assert_no_traceback(d)


def _maildir(root: Path) -> str | None:
    new = root / "new"
    found = sorted(new.iterdir()) if new.is_dir() else []
    if not found:
        return None
    msg = BytesParser(policy=policy.default).parsebytes(found[0].read_bytes())
    part = msg.get_body(("plain",))  # type: ignore[attr-defined]
    return str(part.get_content()) if part is not None else None


def test_a_broken_form_on_the_held_post_page_is_answered_and_decides_nothing(
    tmp_path: Path,
) -> None:
    with inprocess(f"sqlite:///{tmp_path / 'h.db'}") as ip:
        msg = posting.post_message("お知らせ", "本文です。\n")
        ip.deliver(msg.as_bytes(policy=policy.SMTP), posting.SENDER, [str(msg["To"])])
        [request] = ip.mail(posting.SENDER, "投稿の確認")
        url = next(w for w in request.body.split() if "/post/" in w)
        path = "/" + url.split("/", 3)[3]
        with ip.web() as (host, port):
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request(
                "POST",
                path,
                body=b"--x\r\nContent-Disposition: form-data; name=action\r\n\r\napprove",
                headers={"Content-Type": "multipart/form-data; boundary=x"},
            )
            answer = conn.getresponse()
            status, page = answer.status, answer.read().decode()
            conn.close()
        assert status == 400 and "この確認は無効です" in page, page
        row = posting.post_row(ip.engine)
        assert row is not None and row["state"] == "held"
