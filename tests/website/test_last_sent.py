"""最終配信日 (第5条4) on the channel page and in the lists, from the back-number folder
alone (any host that builds the site has it): the newest back number, or the daemon's
`.last-sent` (for a private archive too); a broken `.last-sent` is a warning, not a failed
build."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import CONTENT, build
from .html import Node, parse


def _fact(page: Node, name: str) -> str:
    for div in page.find("dl", cls="facts").find_all("div"):
        if div.find("dt").text == name:
            return div.find("dd").text
    raise AssertionError(f"no {name}")


def _card_fact(page: Node, slug: str, name: str) -> str:
    for card in page.find_all("li", cls="card"):
        if f"channels/{slug}.html" in card.find("h3", cls="card-title").find("a").attrs["href"]:
            return _fact(card, name)
    raise AssertionError(f"no card for {slug}")


def test_last_sent_date_on_pages_and_lists(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(CONTENT / "archive", archive)
    # a later post of a public channel than its newest back number (not yet exported)
    (archive / "kosodate-news" / ".last-sent").write_text("2026-11-24T08:30+09:00\n")
    # hostile or broken files: a warning, and the back numbers still count
    (archive / "gomi-recycle" / ".last-sent").write_bytes(b"\xff\xfe<script>\n")
    (archive / "kenshin-info" / ".last-sent").write_text("<script>alert(1)</script>\n")
    result = build(tmp_path / "out", archive=archive)
    assert result.returncode == 0, result.log
    out = result.output

    kosodate = parse(out / "channels" / "kosodate-news.html")
    assert _fact(kosodate, "最終配信日") == "2026年11月24日（火）"
    private = parse(out / "channels" / "kaigo-yobou.html")  # archive: private
    assert _fact(private, "最終配信日") == "2026年11月12日（木）"
    assert not (out / "channels" / "kaigo-yobou").exists() or not list(
        (out / "channels" / "kaigo-yobou").glob("*.html")
    )  # still no back numbers of a private archive
    gomi = parse(out / "channels" / "gomi-recycle.html")
    assert _fact(gomi, "最終配信日") == "2026年11月18日（水）"  # its newest back number
    assert (
        _fact(parse(out / "channels" / "kenshin-info.html"), "最終配信日") == "2026年11月10日（火）"
    )
    never = parse(out / "channels" / "nakahara-kurashi.html")
    assert _fact(never, "最終配信日") == "まだ配信がありません"
    assert "<script>" not in (out / "channels" / "kenshin-info.html").read_text()

    home = parse(out / "index.html")
    assert _card_fact(home, "kosodate-news", "最終配信日") == "2026年11月24日（火）"
    assert _card_fact(home, "nakahara-kurashi", "最終配信日") == "まだ配信がありません"
    departments = parse(out / "departments.html")
    assert _card_fact(departments, "kaigo-yobou", "最終配信日") == "2026年11月12日（木）"

    assert "最終配信日のファイルを読めません（UnicodeDecodeError）" in result.log
    assert "最終配信日のファイルの日時が読めません" in result.log
    assert "Traceback" not in result.log
