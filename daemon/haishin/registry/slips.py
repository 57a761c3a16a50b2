"""The slips of a Japanese keyboard, found in the raw text before YAML reads it.

An IME left in full-width mode types 「：」 for ':', 「　」 (U+3000) for a space and
「２０２６」 for digits, and clerks write dates in 和暦. YAML either misreads these
(`frequency：月1回` is a one-line string, `　　title` a key with two spaces in its name)
or stops at the line after with "could not find expected ':'"; so each is named here,
at its own line and column, with the key and what to type instead.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from .problems import Pos, Problem

SPACE = "\u3000"
SHOWN_SPACE = "全角スペース「　」(U+3000)"

_ERAS = {"令和": 2018, "平成": 1988}
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)([ \u3000]*)([:：])")
_DASHES = re.compile(r"(?:-[ \u3000]+)*")
_WAREKI = re.compile(r"(令和|平成)(元|[0-9０-９]{1,2})年([0-9０-９]{1,2})月([0-9０-９]{1,2})日")
_NUMERIC = re.compile(r"[0-9０-９\-－/／.．:：+＋ ]+")
_WIDE_DIGIT = re.compile(r"[０-９]")
_ANY_SLIP = re.compile("[\u3000：０-９]|令和|平成")


def visible(text: str) -> str:
    """`text` with its full-width spaces made visible, for quoting a value in a message."""
    return text.replace(SPACE, "〔全角スペース〕")


def _western(match: re.Match[str]) -> str | None:
    era, year, month, day = match.groups()
    number = 1 if year == "元" else int(unicodedata.normalize("NFKC", year))
    try:
        day_ = dt.date(
            _ERAS[era] + number,
            int(unicodedata.normalize("NFKC", month)),
            int(unicodedata.normalize("NFKC", day)),
        )
    except ValueError:
        return None
    return day_.isoformat()


@dataclass(frozen=True)
class ValueSlip:
    """A 全角数字 or 和暦 slip inside one value: `col` counts from the value's start."""

    key: str
    message: str
    col: int = 0


def in_value(key: str, value: str) -> ValueSlip | None:
    """The slip of a value where a number or a date is expected, if it is one; used by
    the pre-scan and for values YAML read (flow style: `{count: ３}`)."""
    wareki = _WAREKI.fullmatch(value)
    if wareki is not None:
        western = _western(wareki)
        hint = f": {value} → {western}" if western else "（その日付はありません）"
        return ValueSlip(
            "wareki-date",
            f"'{key}' に和暦の日付は書けません。西暦（例: 2026-04-01）で書いてください{hint}",
        )
    wide = _WIDE_DIGIT.search(value)
    if _NUMERIC.fullmatch(value) and wide is not None:
        return ValueSlip(
            "fullwidth-digit",
            f"'{key}' に全角数字があります。半角で書いてください: "
            f"{value} → {unicodedata.normalize('NFKC', value)}",
            wide.start(),
        )
    return None


class _Lines:
    """One pass over the lines; `block` is the indentation of an open `|`/`>` block."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.block: int | None = None
        self.found: list[Problem] = []

    def add(self, line: int, col: int, key: str, message: str) -> None:
        self.found.append(Problem(Pos(self.shown, line, col + 1), key, message))

    def line(self, n: int, text: str) -> None:
        text = text.rstrip("\r")
        width = len(text) - len(text.lstrip(" "))
        if self.block is not None:
            if not text.strip(" ") or width > self.block:
                return  # the block's own text: a full-width space there is the clerk's
            self.block = None
        stripped = text.lstrip(f" {SPACE}")
        if not stripped or stripped.startswith("#"):
            return
        indent = text[: len(text) - len(stripped)]
        if SPACE in indent:
            self.add(
                n,
                indent.index(SPACE),
                "fullwidth-space",
                f"字下げに{SHOWN_SPACE}が使われています。字下げは半角スペースにしてください",
            )
            return
        dashes = _DASHES.match(stripped)
        start = len(indent) + (dashes.end() if dashes else 0)
        match = _KEY.match(text, start)
        if match is None:
            self.trailing(n, text, None)
            return
        self.keyed(n, text, match, width)

    def keyed(self, n: int, text: str, match: re.Match[str], width: int) -> None:
        key, gap, colon = match.groups()
        if colon == "：":
            self.add(
                n,
                match.start(3),
                "fullwidth-colon",
                f"'{key}' の後ろの区切りが全角コロン「：」です。半角の「:」にしてください",
            )
            return
        after = text[match.end() :]
        spaces = after[: len(after) - len(after.lstrip(f" {SPACE}"))]
        if SPACE in gap or SPACE in spaces:
            col = match.start(2) + gap.index(SPACE) if SPACE in gap else match.end()
            where = "前" if SPACE in gap else "直後"
            self.add(
                n,
                col + (0 if SPACE in gap else spaces.index(SPACE)),
                "fullwidth-space",
                f"'{key}' の「:」の{where}に{SHOWN_SPACE}があります。半角スペースにしてください",
            )
            return
        value = after.strip(" ")
        if value[:1] not in ("'", '"'):
            value = value.split(" #", 1)[0].rstrip(" ")
        if value[:1] in ("|", ">"):
            self.block = width
            return
        if self.trailing(n, text, key):
            return
        column = match.end() + len(spaces)
        bare = value.strip("'\"")
        column += len(value) - len(value.lstrip("'\""))
        found = in_value(key, bare)
        if found is not None:
            self.add(n, column + found.col, found.key, found.message)

    def trailing(self, n: int, text: str, key: str | None) -> bool:
        body = text.rstrip(" ")
        if not body.endswith(SPACE):
            return False
        of = f"'{key}' の値" if key else "値"
        self.add(
            n,
            len(body.rstrip(f" {SPACE}")),
            "fullwidth-space",
            f"{of}の末尾に{SHOWN_SPACE}があります。消してください",
        )
        return True


def scan(text: str, shown: str) -> list[Problem]:
    """Every full-width slip of `text` (a decoded registry file)."""
    if _ANY_SLIP.search(text) is None:
        return []  # the common case, one regex pass: nothing typed in full-width mode
    lines = _Lines(shown)
    for n, text_line in enumerate(text.split("\n"), start=1):
        lines.line(n, text_line)
    return lines.found
