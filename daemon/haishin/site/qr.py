"""QR codes of the subscribe `mailto:`, made at build time (空メール登録 from a phone)."""

from __future__ import annotations

from pathlib import Path

import segno

SCALE = 6
"""Pixels per module: a version-4 code is then about 250 px, easy for phone cameras."""


BORDER = 4
"""The quiet zone the QR standard asks for, in modules."""


def write_qr(data: str, path: Path) -> int:
    """Write the code as a PNG; returns its width in pixels (the page's <img> needs it, and
    a longer address makes a larger code)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Level M survives a smudged print-out or a glare on a screen, at a modest size.
    code = segno.make(data, error="m", micro=False)
    code.save(str(path), kind="png", scale=SCALE, border=BORDER, dark="#000", light="#fff")
    width, _height = code.symbol_size(scale=SCALE, border=BORDER)
    return int(width)
