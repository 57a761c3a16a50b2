"""A real browser for the site's and the daemon's pages: Debian's headless Chromium driven
by Selenium, axe-core from npm at WCAG 2.1 AA, phone and desktop widths, screenshots kept
in test-artifacts/ (CI keeps that folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE_VERSION = "4.10.3"
ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (390, 1280)
"""A phone (an iPhone's CSS width) and a desktop window."""
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def press(driver: Any, find: Callable[[Any], Any]) -> None:
    """Press the button `find` finds and wait until the page it brings has replaced this
    one and is loaded (conditions, not sleeps).

    Chromium can lose the button's node while a viewport that a screenshot changed
    settles ("Node with given id does not belong to the document", seen in loaded CI
    runs of both daemon-page tests): the button is found again and pressed, unless the
    click went through and the next page is already here (never pressed twice)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    old = driver.find_element("tag name", "html")
    for attempt in range(3):
        try:
            find(driver).click()
            break
        except WebDriverException:
            if _replaced(old):
                break
            if attempt == 2:
                raise
            time.sleep(0.2)
    WebDriverWait(driver, 10).until(lambda _: _replaced(old))
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _replaced(element: Any) -> bool:
    """Whether `element`'s document is gone. selenium's staleness_of knows only its own
    stale-element error; Chromium also answers "Node with given id does not belong to
    the document" for a node of a page it has just left (the same fact)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def viewport(driver: Any, width: int, height: int = 900) -> None:
    """Emulate the exact CSS width of a phone or a desktop window (not the window frame)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )


def axe(driver: Any, axe_js: str) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.1 A and AA on the page now shown."""
    driver.execute_script(axe_js)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(JSON.stringify(r.violations)))"
        ".catch(e => done(JSON.stringify([{id: 'axe-error', help: String(e)}])));",
        AXE_TAGS,
    )
    violations: list[dict[str, Any]] = json.loads(result)
    return violations


def summary(violations: list[dict[str, Any]]) -> list[tuple[Any, Any, list[Any]]]:
    return [
        (v["id"], v.get("help"), [n.get("target") for n in v.get("nodes", [])][:3])
        for v in violations
    ]


def no_overflow(driver: Any, width: int) -> None:
    inner = driver.execute_script("return window.innerWidth")
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert inner == width
    assert scroll <= inner, f"horizontal overflow: {scroll}px in a {inner}px window"


def screenshot(driver: Any, name: str, width: int) -> Path:
    """The whole page (up to 6000 px tall) as test-artifacts/<name>-<width>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    viewport(driver, width, min(height, 6000))
    path = ARTIFACTS / f"{name}-{width}.png"
    driver.save_screenshot(str(path))
    viewport(driver, width)
    return path


@pytest.fixture(scope="session")
def axe_js() -> str:
    """axe-core's axe.min.js, installed once with npm into a cache folder (not the repo)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (needed to fetch axe-core)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "haishin-tests"
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-save", "--no-audit", "--no-fund",
             f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--lang=ja",
    ):
        options.add_argument(flag)
    # Selenium Manager must not look for (or download) drivers: the path is given.
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
