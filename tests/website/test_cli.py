"""`haishin site build`: wraps the Pelican build, and never leaves a half-built site."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import CONFIG, ROOT

HAISHIN = [sys.executable, "-c", "from haishin.cli import main; main()"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HAISHIN, "site", "build", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_site_build_writes_the_site(tmp_path: Path) -> None:
    out = tmp_path / "public"
    result = run("--output", str(out), "--now", "2026-11-25")
    assert result.returncode == 0, result.stderr
    assert "掲載チャネル 8 件" in result.stdout
    assert (out / "index.html").exists()
    assert (out / "channels" / "kosodate-news" / "qr.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["public"]  # no staging folder left


def test_invalid_registry_keeps_the_last_good_site(tmp_path: Path) -> None:
    out = tmp_path / "public"
    assert run("--output", str(out), "--now", "2026-11-25").returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    service.write_text(service.read_text("utf-8").replace("mail_domain:", "mail_domian:"), "utf-8")
    result = run("--config", str(config), "--output", str(out))
    assert result.returncode == 1
    assert "service.yaml:" in result.stderr
    assert "公開サイトを作成しませんでした" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "public"]
