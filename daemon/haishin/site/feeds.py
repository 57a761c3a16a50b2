"""Atom items for the notices feed (第9条), shaped as Pelican's writer expects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from .. import urls
from .jpformat import jpdatetime, jpwindow
from .view import Notice


@dataclass(frozen=True)
class NoticeItem:
    title: str
    url: str
    date: dt.datetime
    body: str

    @property
    def summary(self) -> str:
        return self.body

    def get_content(self, siteurl: str) -> str:
        return self.body


def notice_title(notice: Notice) -> str:
    what = "計画停止" if notice.planned else "緊急停止"
    return f"【{notice.status}】{what}: {jpdatetime(notice.start)}から"


def notice_items(notices: list[Notice]) -> list[NoticeItem]:
    items = []
    for n in notices:
        window = jpwindow(n.start, n.end)
        body = f"<p>{escape(window)}</p>" + "".join(
            f"<p>{escape(line)}</p>" for line in n.text.splitlines() if line.strip()
        )
        items.append(NoticeItem(notice_title(n), f"{urls.NOTICES}#{n.id}", n.start, body))
    return items
