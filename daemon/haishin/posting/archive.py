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

from .. import urls
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


def _replace(target: Path, text: str) -> None:
    """Write `text` to a temporary name, then rename: a site build sees all or nothing."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mark_sent(folder: Path, channel: str, sent_at: dt.datetime) -> Path:
    """Record when the channel's latest post went out, for the site's 最終配信日: only
    the date and time, for public and private archives alike (urls.LAST_SENT)."""
    target = folder / urls.LAST_SENT.format(channel=channel)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        before = dt.datetime.fromisoformat(target.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        before = None
    if before is None or before.tzinfo is None or before < sent_at:
        _replace(target, sent_at.astimezone(JST).isoformat(timespec="minutes") + "\n")
    return target


def export(
    folder: Path, channel: str, name: str, subject: str, text: str, sent_at: dt.datetime
) -> Path:
    target_dir = folder / channel
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.md"
    _replace(target, markdown(subject, text, sent_at))
    return target


def export_store(engine: sa.Engine, folder: Path) -> int:
    """Write every public back number of the store into `folder`, and each channel's
    latest post time (public or private archive) for its 最終配信日; returns how many
    back numbers."""
    with reading(engine) as conn:
        found = posts.back_numbers(conn)
        latest = posts.last_sent(conn)
    for b in found:
        export(folder, b.channel, b.slug, b.subject, b.text, b.sent_at)
    for channel, sent_at in latest.items():
        mark_sent(folder, channel, sent_at)
    return len(found)
