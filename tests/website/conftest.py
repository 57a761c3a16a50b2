"""Real Pelican builds into temporary folders, an HTTP server on a port from the OS, and
Debian's headless Chromium driven by Selenium, with axe-core from npm (support/browser.py)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.browser import ARTIFACTS, axe_js, chromium  # noqa: F401 (fixtures, re-exported)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
CONTENT = ROOT / "content"
NOW = "2026-11-25T12:00:00+09:00"
"""The moment the sample site describes, so that the test does not age with the calendar."""


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
