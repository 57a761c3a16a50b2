"""The monthly report's HTML (the mail's HTML part) in real headless Chromium: drawn
charts without JavaScript, their tables as the text alternative, axe-core at WCAG 2.1 AA,
no address. Screenshots go to test-artifacts/ to be looked at."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from haishin.operations.report.collect import OutageLine, collect
from haishin.operations.report.render import html
from haishin.registry import load_valid
from haishin.store import open_store
from haishin.store.monthly import Month
from support.browser import axe, screenshot, summary, viewport
from support.helpers import CONFIG

from . import known


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    engine = open_store(f"sqlite:///{folder / 'haishin.db'}")
    known.build(engine)
    lines = [OutageLine("定期保守（クラウド）", "2026-11-03 01:00〜03:00", "2026-10-27 通知済み")]
    report = collect(
        engine,
        load_valid(CONFIG),
        Month(dt.date(2026, 11, 1)),
        today=dt.date(2026, 12, 1),
        outages=lambda *a: lines,
    )
    engine.dispose()
    page = folder / "report-2026-11.html"
    page.write_text(html(report), encoding="utf-8")
    return page


@pytest.mark.parametrize("width", [390, 1280])
def test_report_in_chromium(chromium: Any, axe_js: str, report_file: Path, width: int) -> None:
    driver = chromium
    viewport(driver, width)
    driver.get(report_file.as_uri())
    assert driver.execute_script("return document.scripts.length") == 0
    charts = driver.execute_script(
        "return [...document.querySelectorAll('figure svg')].map(s => {"
        " const r = s.getBoundingClientRect();"
        " return [s.getAttribute('role'), s.getAttribute('aria-label'), r.width, r.height,"
        "  s.querySelectorAll('path.line, rect.rect').length]; })"
    )
    sections = driver.execute_script("return document.querySelectorAll('section h2').length")
    assert len(charts) == 2 * (sections - 2)  # two per channel; then quiet channels, outages
    for role, label, w, h, marks in charts:
        assert role == "img" and label.endswith("（数値は下の表）")
        assert 300 <= w <= width and h > 100  # drawn, and within the page
        assert marks >= 12  # a dot or a bar for each month
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    text = driver.find_element("tag name", "body").text
    assert "ごみ・リサイクル情報（gomi-recycle）" in text
    assert "定期保守（クラウド）" in text and "配信が途絶えているチャネル（第5条4）" in text
    assert known.ADDRESS_DOMAIN not in driver.page_source
    screenshot(driver, "report-2026-11", width)
    violations = axe(driver, axe_js)
    assert violations == [], summary(violations)


def test_staff_text_is_escaped_in_the_html_and_the_charts() -> None:
    """A title is staff's text from the registry: it is shown, never run."""
    from haishin.operations.report.collect import ChannelReport, Report
    from haishin.store.monthly import Figures

    month = Month(dt.date(2026, 11, 1))
    hostile = '<script>alert(1)</script>"&<img src=x onerror=alert(2)>'
    figures = Figures("x")
    channel = ChannelReport(
        "x", hostile, hostile, figures, [(m, figures) for m in month.trail(12)], None
    )
    report = Report("サービス", month, None, "全チャネル", [channel], [], [])
    page = html(report)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
