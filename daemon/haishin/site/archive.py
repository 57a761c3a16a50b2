"""Back numbers (バックナンバー): published posts read from `<archive>/<slug>/*.md`.

The folder is the contract with the posting side: a post that went out is exported as one
Markdown file with Pelican's metadata lines at the top, then a blank line and the body:

    Title: 12月の子育て広場のご案内
    Date: 2026-11-20 10:00

    本文…

The folder names the channel; the file name (without `.md`) is the post's slug in its URL,
so an export names files by something stable (e.g. `2026-11-20-0042.md`). Files are read
with Pelican's own readers, so any format Pelican reads (Markdown, reST, HTML) works.

Two folders of this shape feed a build: the one kept in git (`content/archive/`), and the
store's back numbers that `haishin site build --db` exports for the build (posting/
archive.py); a post in both is published once, from the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pelican.contents import Content

from .. import urls
from ..clock import JST

log = logging.getLogger(__name__)


class Post(Content):  # type: ignore[misc]  # Pelican is untyped
    """One published post of a channel."""

    mandatory_properties = ("title", "date")
    default_template = "post"
    channel: str


def _read(readers: Any, archive: Path, path: Path, channel: str) -> Post | None:
    post: Post = readers.read_file(
        base_path=str(archive), path=str(path.relative_to(archive)), content_class=Post
    )
    # The file name is the slug: titles are Japanese, and slugifying them loses everything.
    post.slug = path.stem
    post.channel = channel
    post.override_url = post.override_save_as = urls.ARCHIVED_POST.format(
        channel=channel, slug=path.stem
    )
    post.channel_url = urls.CHANNEL.format(slug=channel)
    if not post.is_valid() or getattr(post, "status", "") in ("draft", "hidden"):
        return None
    return post


def read_posts(readers: Any, archive: Path, channels: Iterable[str]) -> dict[str, list[Post]]:
    """The public posts of `channels`, newest first. Folders of other channels (stopped,
    pending, or with a private archive) are not read at all: nothing of them is published."""
    known = set(readers.readers)
    out: dict[str, list[Post]] = {}
    for slug in channels:
        folder = archive / slug
        if not folder.is_dir():
            out[slug] = []
            continue
        posts = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.suffix.lstrip(".") not in known:
                continue
            post = _read(readers, archive, path, slug)
            if post is None:
                log.warning("バックナンバーを読み飛ばしました（題名か日付がありません）: %s", path)
                continue
            posts.append(post)
        posts.sort(key=lambda p: (p.date, p.slug), reverse=True)
        out[slug] = posts
    return out


def merged(*sources: dict[str, list[Post]]) -> dict[str, list[Post]]:
    """Channel → posts, newest first, from several folders; a later source's post wins
    over an earlier one with the same name (one page per URL)."""
    out: dict[str, list[Post]] = {}
    for source in sources:
        for slug, found in source.items():
            names = {p.slug for p in found}
            kept = [p for p in out.get(slug, []) if p.slug not in names]
            out[slug] = sorted([*kept, *found], key=lambda p: (p.date, p.slug), reverse=True)
    return out


def unknown_folders(archive: Path, slugs: Iterable[str]) -> list[str]:
    """Archive folders that match no channel of the registry: likely a typo in an export."""
    if not archive.is_dir():
        return []
    known = set(slugs)
    return sorted(p.name for p in archive.iterdir() if p.is_dir() and p.name not in known)


def last_sent(archive: Path, slug: str, posts: list[Post]) -> dt.date | None:
    """The day (JST) the channel's latest post went out (最終配信日, 第5条4): what the daemon
    wrote into `<archive>/<slug>/.last-sent` (urls.LAST_SENT, for private archives too),
    or the newest back number's date, whichever is later; None when neither says."""
    days = [p.date.date() for p in posts[:1]]
    path = archive / urls.LAST_SENT.format(channel=slug)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("最終配信日のファイルを読めません（%s）: %s", type(exc).__name__, path)
        text = ""
    if text:
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            log.warning("最終配信日のファイルの日時が読めません: %s", path)
        else:
            days.append(at.astimezone(JST).date() if at.tzinfo else at.date())
    return max(days, default=None)
