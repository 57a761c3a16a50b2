"""sitemap.xml (sitemaps.org 0.9) of every page the build wrote."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape


def write_sitemap(path: Path, site_url: str, urls: Iterable[str]) -> None:
    base = site_url.rstrip("/") + "/"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    lines += [f"  <url><loc>{escape(base + url)}</loc></url>" for url in urls]
    lines.append("</urlset>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
