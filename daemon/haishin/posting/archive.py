"""Back numbers: a sent post of a public channel, kept in the store's `archive` table,
becomes `<folder>/<slug>/<name>.md` for the site build (`haishin site build --db`).

The store is where the back numbers live (issue 16 item 2), so any host builds the same
site; the folder is written for one build and is the contract with the site
(site/archive.py): Pelican metadata lines, a blank line, the body. Only the subject, the
sender's text and the date are written, never the footer, an address of a subscriber or
a token (第4条: registration data stays in the database). Each file is written to a
temporary name and renamed, so a reader sees the whole file or none.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import tempfile
from pathlib import Path

import sqlalchemy as sa

from ..registry.model import JST
from ..store import posts
from ..store.engine import reading

_MARKUP_START = re.compile(r"^(\s*)([#>*+=_`|~-]|\d+[.)])")


def _line(text: str) -> str:
    # The text is the sender's plain text: keep it plain in Markdown (no headings, lists
    # or raw HTML by accident) and keep its line breaks (two spaces: a hard break).
    escaped = _MARKUP_START.sub(lambda m: m[1] + "\\" + m[2], html.escape(text, quote=False))
    return escaped + "  " if escaped.strip() else ""


def markdown(subject: str, text: str, sent_at: dt.datetime) -> str:
    title = " ".join(subject.split())
    body = "\n".join(_line(line) for line in text.strip("\n").split("\n"))
    return f"Title: {title}\nDate: {sent_at.astimezone(JST):%Y-%m-%d %H:%M}\n\n{body}\n"


def export(
    folder: Path, channel: str, name: str, subject: str, text: str, sent_at: dt.datetime
) -> Path:
    target_dir = folder / channel
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.md"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=target_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(markdown(subject, text, sent_at))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def export_store(engine: sa.Engine, folder: Path) -> int:
    """Write every public back number of the store into `folder`; returns how many."""
    with reading(engine) as conn:
        found = posts.back_numbers(conn)
    for b in found:
        export(folder, b.channel, b.slug, b.subject, b.text, b.sent_at)
    return len(found)
