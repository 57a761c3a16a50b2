"""Golden output: a small registry's site, diffed against files kept in git (as Pelican
tests itself). After an intended change, refresh them with HAISHIN_UPDATE_GOLDEN=1 and
review the diff like any other."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import build

GOLDEN = Path(__file__).resolve().parent / "golden"
EXPECTED = GOLDEN / "expected"
COMPARED = [
    "index.html",
    "departments.html",
    "notices.html",
    "channels/minato-news.html",
    "channels/minato-news/2026-11-01-0001.html",
    "channels/minato-kosodate.html",
    "feeds/minato-news.atom.xml",
    "feeds/notices.atom.xml",
    "sitemap.xml",
]
UPDATE = os.environ.get("HAISHIN_UPDATE_GOLDEN") == "1"


def test_small_registry_matches_the_golden_site(tmp_path: Path) -> None:
    result = build(tmp_path / "out", GOLDEN / "config", archive=GOLDEN / "archive")
    assert result.returncode == 0, result.log
    out = result.output
    tree = "".join(
        f"{p.relative_to(out).as_posix()}\n"
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.relative_to(out).as_posix().startswith(("pages/", "theme/"))
    )
    files = {"FILES.txt": tree} | {name: (out / name).read_text("utf-8") for name in COMPARED}
    if UPDATE:
        for name, text in files.items():
            (EXPECTED / name).parent.mkdir(parents=True, exist_ok=True)
            (EXPECTED / name).write_text(text, "utf-8")
    for name, text in files.items():
        assert text == (EXPECTED / name).read_text("utf-8"), f"{name} differs from golden"
