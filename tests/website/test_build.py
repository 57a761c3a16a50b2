"""The site built from the sample registry, read as HTML (not by searching templates)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import zxingcpp
from PIL import Image

from haishin.registry import channel_states, load_valid

from .conftest import CONFIG, build
from .html import Node, parse

DOMAIN = "mail.city.kawasaki.example.jp"
ATOM = "{http://www.w3.org/2005/Atom}"


def listed_slugs() -> set[str]:
    reg = load_valid(CONFIG)
    states = channel_states(reg, dt.date(2026, 11, 25))
    return {slug for slug, s in states.items() if s.listed}


def card_slugs(page: Node) -> list[str]:
    slugs = []
    for card in page.find_all("li", cls="card"):
        href = card.find("h3", cls="card-title").find("a").attrs["href"]
        match = re.fullmatch(r"(?:\./|\.\./)?channels/([a-z0-9-]+)\.html", href)
        assert match, href
        slugs.append(match.group(1))
    return slugs


def test_home_lists_exactly_the_active_and_paused_channels(sample_site: Path) -> None:
    home = parse(sample_site / "index.html")
    slugs = card_slugs(home)
    assert len(slugs) == len(set(slugs))
    assert set(slugs) == listed_slugs()
    # stopped, pending: absent (第7条)
    assert {"kigyou-shien", "noriai-bus"}.isdisjoint(slugs)
    assert not (sample_site / "channels" / "kigyou-shien.html").exists()
    assert not (sample_site / "channels" / "noriai-bus.html").exists()


def test_home_groups_by_category_and_marks_paused(sample_site: Path) -> None:
    home = parse(sample_site / "index.html")
    groups = {g.find("h2").text: card_slugs(g) for g in home.find_all("section", cls="group")}
    assert groups["子育て・教育"] == ["kosodate-news"]
    assert "sports-event" in groups["スポーツ・文化・生涯学習"]
    paused = [c for c in home.find_all("li", cls="card") if c.find_all("p", cls="badge")]
    assert card_slugs(Node("ul", {}, list(paused))) == ["sports-event"]
    for card in home.find_all("li", cls="card"):
        slug = card_slugs(Node("ul", {}, [card]))[0]
        assert card.find("a", cls="button").attrs["href"] == f"mailto:{slug}-subscribe@{DOMAIN}"


def test_home_points_to_the_disaster_service(sample_site: Path) -> None:
    home = parse(sample_site / "index.html")
    note = home.find("section", cls="disaster")
    assert note.find("a").attrs["href"] == "https://bosai.city.kawasaki.example.jp/mail/"


def test_department_view_lists_the_same_channels(sample_site: Path) -> None:
    page = parse(sample_site / "departments.html")
    assert set(card_slugs(page)) == listed_slugs()
    names = [g.find("h2").text for g in page.find_all("section", cls="group")]
    assert "環境局 生活環境部 減量推進課" in names


def test_channel_page(sample_site: Path) -> None:
    page = parse(sample_site / "channels" / "kosodate-news.html")
    assert page.find("html").attrs["lang"] == "ja"
    assert page.find("h1").text == "子育て応援ニュース"
    link = page.find("a", id="subscribe-link")
    assert link.attrs["href"] == f"mailto:kosodate-news-subscribe@{DOMAIN}"
    text = page.find("main").text
    for expected in (
        "こども未来局 子育て推進部 子育て推進課",  # department
        "子育て推進課長",  # 情報管理者, by title only
        "月2回程度",  # frequency
        f"kosodate-news-owner@{DOMAIN}",  # 第5条(3) inquiries
        f"kosodate-news-unsubscribe@{DOMAIN}",
        "確認メール",  # what happens next
        "ドメイン指定受信",
        DOMAIN,
        "044-200-0001",  # the department's public contact
    ):
        assert expected in text, expected
    assert "幸 次郎" not in text  # no personal names on the public site
    posts = page.find("section", **{"aria-labelledby": "backnumbers-title"}).find_all("a")
    assert [a.text for a in posts][:3] == [
        "12月の子育て広場のご案内",
        "保育所等の入所申請の受付が始まります",
        "10月の子育て広場のご案内",
    ]


def test_qr_code_decodes_to_the_subscribe_mailto(sample_site: Path) -> None:
    page = parse(sample_site / "channels" / "gomi-recycle.html")
    img = page.find("figure", cls="qr").find("img")
    png = (sample_site / "channels" / img.attrs["src"]).resolve()
    image = Image.open(png)
    assert image.size == (int(img.attrs["width"]), int(img.attrs["height"]))
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [f"mailto:gomi-recycle-subscribe@{DOMAIN}"]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode


def test_home_and_channel_pages_offer_mypage_by_mailto_and_qr(sample_site: Path) -> None:
    """Issue 14 item 1: an empty mail to mypage@ brings the citizen's own page."""
    for name in ("index.html", "channels/gomi-recycle.html"):
        page = parse(sample_site / name)
        section = page.find("section", **{"aria-labelledby": "mypage-title"})
        assert section.find("a", id="mypage-link").attrs["href"] == f"mailto:mypage@{DOMAIN}"
        assert "一覧" in section.text
        img = section.find("figure", cls="qr").find("img")
        png = (sample_site / name).parent.joinpath(img.attrs["src"]).resolve()
        image = Image.open(png)
        assert image.size == (int(img.attrs["width"]), int(img.attrs["height"]))
        assert [r.text for r in zxingcpp.read_barcodes(image)] == [f"mailto:mypage@{DOMAIN}"]


def test_paused_channel_page_says_so(sample_site: Path) -> None:
    page = parse(sample_site / "channels" / "sports-event.html")
    note = page.find("div", cls="paused")
    assert "一時停止中" in note.text
    assert "第3条(2)" in note.text  # the reason from the registry


def test_private_archive_publishes_no_posts(sample_site: Path) -> None:
    page = parse(sample_site / "channels" / "kaigo-yobou.html")
    assert not page.find_all("section", **{"aria-labelledby": "backnumbers-title"})
    assert not list((sample_site / "channels" / "kaigo-yobou").glob("*.html"))
    assert not (sample_site / "feeds" / "kaigo-yobou.atom.xml").exists()
    # a stopped channel's old posts are not published either
    assert not (sample_site / "channels" / "kigyou-shien").exists()


def test_back_numbers_and_channel_feed(sample_site: Path) -> None:
    listing = parse(sample_site / "channels" / "kosodate-news" / "backnumbers.html")
    hrefs = [a.attrs["href"] for a in listing.find("ul", cls="posts").find_all("a")]
    assert hrefs[0] == "../../channels/kosodate-news/2026-11-20-0003.html"
    post = parse(sample_site / "channels" / "kosodate-news" / "2026-11-20-0003.html")
    assert post.find("h1").text == "12月の子育て広場のご案内"
    assert "クリスマス会" in post.find("div", cls="body").text

    feed = ET.parse(sample_site / "feeds" / "kosodate-news.atom.xml").getroot()
    entries = feed.findall(f"{ATOM}entry")
    assert entries[0].findtext(f"{ATOM}title") == "12月の子育て広場のご案内"
    link = entries[0].find(f"{ATOM}link")
    assert link is not None
    assert link.get("href") == (f"https://{DOMAIN}/channels/kosodate-news/2026-11-20-0003.html")


def test_notices_newest_first_with_feed(sample_site: Path) -> None:
    page = parse(sample_site / "notices.html")
    ids = [li.attrs["id"] for li in page.find_all("li", cls="notice")]
    assert ids == ["R9-02-db-upgrade", "R8-12-maintenance", "R8-10-cms-failure"]
    statuses = [li.find("span", cls="status").text for li in page.find_all("li", cls="notice")]
    assert statuses == ["予定", "予定", "終了"]
    feed = ET.parse(sample_site / "feeds" / "notices.atom.xml").getroot()
    links = [e.find(f"{ATOM}link").get("href") for e in feed.findall(f"{ATOM}entry")]  # type: ignore[union-attr]
    assert links == [f"https://{DOMAIN}/notices.html#{i}" for i in ids]


def test_hand_written_pages_sitemap_404_favicon(sample_site: Path) -> None:
    for name in ("about", "privacy", "help", "contact"):
        assert (sample_site / "pages" / f"{name}.html").exists(), name
    contact = parse(sample_site / "pages" / "contact.html")
    service = load_valid(CONFIG).service
    assert service is not None
    assert f"mailto:{service.value.inquiry_address}" in [
        a.attrs.get("href") for a in contact.find("main").find_all("a")
    ]  # 第3条(1): the 統括管理者's inquiry address, from service.yaml
    root = ET.parse(sample_site / "sitemap.xml").getroot()
    locs = {e.text for e in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    assert f"https://{DOMAIN}/channels/kosodate-news.html" in locs
    assert f"https://{DOMAIN}/pages/privacy.html" in locs
    assert f"https://{DOMAIN}/channels/kigyou-shien.html" not in locs
    not_found = parse(sample_site / "404.html")
    assert not_found.find("link", rel="stylesheet").attrs["href"] == "/theme/css/site.css"
    assert (sample_site / "favicon.ico").stat().st_size > 0


def test_no_scripts_and_nothing_loaded_from_elsewhere(sample_site: Path) -> None:
    for path in sample_site.rglob("*.html"):
        doc = parse(path)
        assert doc.find("html").attrs["lang"] == "ja", path
        assert not doc.find_all("script"), path
        assert not doc.find_all("iframe"), path
        for node in doc.iter():
            src = node.attrs.get("src") or (node.attrs.get("href") if node.tag == "link" else None)
            if src and node.attrs.get("rel") != "alternate":
                assert not re.match(r"^[a-z]+:|^//", src), (path, src)


def test_invalid_registry_stops_the_build(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    channel = config / "channels" / "gomi-recycle.yaml"
    text = channel.read_text(encoding="utf-8")
    channel.write_text(text.replace("department: kankyo-genryo", "department: nowhere"), "utf-8")
    out = tmp_path / "output"
    result = build(out, config)
    assert result.returncode == 1
    assert not out.exists()
    lines = re.findall(r"\S*gomi-recycle\.yaml:\d+:\d+: .*", result.log)
    assert lines == [
        f"{channel}:10:13: 情報配信課 'nowhere' は登録されていません [unknown-reference]"
    ], result.log
    assert "Traceback" not in result.log


def test_channel_page_links_its_feed(sample_site: Path) -> None:
    page = parse(sample_site / "channels" / "kosodate-news.html")
    feeds = [n.attrs["href"] for n in page.find_all("link", rel="alternate")]
    assert "../feeds/kosodate-news.atom.xml" in feeds


def test_archive_folder_contract(tmp_path: Path) -> None:
    """What an export may put in the archive, and what the build does with mistakes."""
    archive = tmp_path / "archive"
    (archive / "kosodate-news").mkdir(parents=True)
    (archive / "kosodate-newz").mkdir()  # a typo in an export: warned, not published
    good = "Title: 予防接種のお知らせ\nDate: 2026-11-21 09:00\n\n本文です。\n"
    (archive / "kosodate-news" / "2026-11-21-0001.md").write_text(good, "utf-8")
    (archive / "kosodate-news" / "no-date.md").write_text("Title: 日付なし\n\n本文\n", "utf-8")
    (archive / "kosodate-news" / "draft.md").write_text(
        "Title: 下書き\nDate: 2026-11-22\nStatus: draft\n\n本文\n", "utf-8"
    )
    (archive / "kosodate-newz" / "x.md").write_text(good, "utf-8")
    result = build(tmp_path / "out", archive=archive)
    assert result.returncode == 0, result.log
    assert "kosodate-newz" in result.log
    assert "no-date.md" in result.log
    published = sorted(p.name for p in (tmp_path / "out" / "channels" / "kosodate-news").iterdir())
    assert published == ["2026-11-21-0001.html", "backnumbers.html", "qr.png"]
    assert not (tmp_path / "out" / "channels" / "kosodate-newz").exists()


def test_build_is_reproducible(tmp_path: Path, sample_site: Path) -> None:
    """The same registry and date give the same bytes: a site diff in review means a change."""
    again = build(tmp_path / "again")
    assert again.returncode == 0, again.log
    first = {
        p.relative_to(sample_site): p.read_bytes() for p in sample_site.rglob("*") if p.is_file()
    }
    second = {
        p.relative_to(again.output): p.read_bytes() for p in again.output.rglob("*") if p.is_file()
    }
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_markup_in_the_registry_or_a_post_is_shown_as_text(tmp_path: Path) -> None:
    """Registry texts come from pull requests and back numbers from e-mail: neither may put
    markup on the city's homepage."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    channel = config / "channels" / "gomi-recycle.yaml"
    channel.write_text(
        channel.read_text("utf-8").replace(
            "title: ごみ・リサイクル情報", 'title: "ごみ<script>alert(1)</script>情報"'
        ),
        "utf-8",
    )
    archive = tmp_path / "archive"
    (archive / "gomi-recycle").mkdir(parents=True)
    (archive / "gomi-recycle" / "2026-11-21-0001.md").write_text(
        "Title: 収集日<img src=x onerror=alert(2)>\nDate: 2026-11-21 09:00\n\n"
        "本文<script>alert(3)</script>です。\n<iframe src=https://evil.example/></iframe>\n",
        "utf-8",
    )
    result = build(tmp_path / "out", config, archive=archive)
    assert result.returncode == 0, result.log
    for page in (tmp_path / "out").rglob("*.html"):
        html = page.read_text("utf-8")
        for bad in ("<script", "<img src=x", "<iframe"):
            assert bad not in html, (page, bad)
    post = (tmp_path / "out" / "channels" / "gomi-recycle" / "2026-11-21-0001.html").read_text()
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in post  # shown, not run
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    assert "ごみ&lt;script&gt;alert(1)&lt;/script&gt;情報" in index
