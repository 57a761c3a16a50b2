"""Real Pelican builds into temporary folders, an HTTP server on a port from the OS, and
Debian's headless Chromium driven by Selenium, with axe-core from npm."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
CONTENT = ROOT / "content"
NOW = "2026-11-25T12:00:00+09:00"
"""The moment the sample site describes, so that the test does not age with the calendar."""

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE_VERSION = "4.10.3"
ARTIFACTS = ROOT / "test-artifacts"


@dataclass(frozen=True)
class Build:
    returncode: int
    output: Path
    log: str


def build(output: Path, config: Path = CONFIG, *, archive: Path | None = None) -> Build:
    """`pelican content -s pelicanconf.py`, the standard command, pointed at `config`."""
    extra = [
        f"HAISHIN_CONFIG={_json(str(config))}",
        f"HAISHIN_NOW={_json(NOW)}",
        f"HAISHIN_ARCHIVE={_json(str(archive or CONTENT / 'archive'))}",
    ]
    cmd = [sys.executable, "-m", "pelican", str(CONTENT), "-s", str(ROOT / "pelicanconf.py")]
    cmd += ["-o", str(output), "-e", *extra]
    # Pelican logs through rich, which wraps at 80 columns when not on a terminal: widen it
    # so that a message and its path stay on one line for the assertions.
    env = dict(os.environ, COLUMNS="1000")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return Build(proc.returncode, output, proc.stdout + proc.stderr)


def _json(value: str) -> str:
    import json

    return json.dumps(value)


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "output"
    result = build(out)
    assert result.returncode == 0, result.log
    return out


@pytest.fixture(scope="session")
def served(sample_site: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(sample_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


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
