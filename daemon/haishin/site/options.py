"""The plugin's settings, read once from Pelican's settings into a frozen object."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import jstnow
from ..registry.model import JST

DEFAULT_RECENT_POSTS = 5


@dataclass(frozen=True)
class SiteOptions:
    config: Path
    """The registry folder (config/)."""
    archive: Path
    """Published posts, one folder per channel: `<archive>/<slug>/*.md` (バックナンバー):
    those kept in git (written by hand, or from before the store kept them)."""
    now: dt.datetime
    """The moment the site describes: which channels are paused, which outages are past."""
    recent_posts: int = DEFAULT_RECENT_POSTS
    stored: Path | None = None
    """The store's back numbers, exported in the same shape for this build (`haishin site
    build --db`); where a name is in both folders, the store's copy is published."""

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(JST).date()


def _moment(value: Any) -> dt.datetime:
    if value in (None, ""):
        return jstnow()
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(12, 0))
    else:
        text = str(value)
        moment = (
            dt.datetime.fromisoformat(text)
            if "T" in text or " " in text
            else dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12, 0))
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


def from_settings(settings: dict[str, Any]) -> SiteOptions:
    """HAISHIN_CONFIG (required), HAISHIN_ARCHIVE (default: PATH/archive), HAISHIN_NOW
    (a fixed date or time, for reproducible builds and tests), HAISHIN_RECENT_POSTS,
    HAISHIN_STORED_ARCHIVE (set by `haishin site build --db`)."""
    config = settings.get("HAISHIN_CONFIG") or "config"
    archive = settings.get("HAISHIN_ARCHIVE") or Path(settings["PATH"]) / "archive"
    return SiteOptions(
        config=Path(config),
        archive=Path(archive),
        now=_moment(settings.get("HAISHIN_NOW")),
        recent_posts=int(settings.get("HAISHIN_RECENT_POSTS", DEFAULT_RECENT_POSTS)),
        stored=Path(stored) if (stored := settings.get("HAISHIN_STORED_ARCHIVE")) else None,
    )
