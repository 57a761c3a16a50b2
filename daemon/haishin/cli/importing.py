"""What `haishin subscribers import` made of each line of its file, told to the staff
member who runs it: each refused line with its number and the reason in Japanese, and a
summary. The addresses appear only on that person's terminal, never in the log or the
audit record (第4条(3)).
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import click

from ..context import Outcome
from ..mailtext.mailbox import mailbox
from ..store.subscribers import address_key


class Refusal(enum.StrEnum):
    """Why a line got no confirmation request; the value is the audit record's word."""

    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    SUBSCRIBED = "subscribed"
    PENDING = "pending"
    RATE_LIMITED = "rate-limited"
    CLOSED = "closed"


_REASONS = {
    Refusal.MALFORMED: "メールアドレスの形式が正しくありません",
    Refusal.DUPLICATE: "{first} 行目と同じアドレスです（大文字・小文字の違いは同じとみなします）",
    Refusal.SUBSCRIBED: "既に登録されています",
    Refusal.PENDING: "確認メールを送信済みで、本人の確認を待っています",
    Refusal.RATE_LIMITED: "送信数の上限に達したため確認メールを送れませんでした（後で取り込み直してください）",
    Refusal.CLOSED: "チャンネルが現在登録を受け付けていません（第3条5）",
}
_LABELS = {
    Refusal.MALFORMED: "形式の誤り",
    Refusal.DUPLICATE: "ファイル内の重複",
    Refusal.SUBSCRIBED: "登録済み",
    Refusal.PENDING: "確認待ち",
    Refusal.RATE_LIMITED: "送信数の上限",
    Refusal.CLOSED: "受付停止中",
}
_BY_OUTCOME = {
    Outcome.ALREADY_SUBSCRIBED: Refusal.SUBSCRIBED,
    Outcome.ALREADY_PENDING: Refusal.PENDING,
    Outcome.RATE_LIMITED: Refusal.RATE_LIMITED,
    Outcome.PAUSED: Refusal.CLOSED,
    Outcome.UNAVAILABLE: Refusal.CLOSED,
}
TO_FIX = frozenset({Refusal.MALFORMED, Refusal.RATE_LIMITED, Refusal.CLOSED})
"""Refusals that leave work for the staff member (exit 1): a line to correct, or one to
import again later. A duplicate, a subscriber and an open request need nothing."""


@dataclass(frozen=True)
class Refused:
    number: int
    text: str
    refusal: Refusal
    first: int | None = None
    """For a duplicate: the line that made the request."""

    def line(self, source: str) -> str:
        reason = _REASONS[self.refusal].format(first=self.first)
        if self.refusal is Refusal.MALFORMED and _FULL_WIDTH.search(self.text):
            reason += "（全角文字が含まれています）"
        return f"{source}:{self.number}: {reason}: {_visible(self.text)}"


@dataclass
class Report:
    accepted: int = 0
    refused: list[Refused] = field(default_factory=list)

    def counts(self) -> Counter[Refusal]:
        return Counter(r.refusal for r in self.refused)

    @property
    def exit_code(self) -> int:
        return 1 if any(r.refusal in TO_FIX for r in self.refused) else 0

    def summary(self) -> str:
        text = f"確認メール {self.accepted} 件を送信待ちにしました"
        if not self.refused:
            return text + "。"
        counts = self.counts()
        parts = "、".join(f"{_LABELS[k]} {counts[k]}" for k in Refusal if counts[k])
        return f"{text}。受け付けなかった行 {len(self.refused)} 件（{parts}）。"

    def audit(self) -> str:
        """Counts and line numbers only: the audit record holds no address."""
        counts = self.counts()
        parts = [f"confirmation-sent {self.accepted}"]
        parts += [f"{k} {counts[k]}" for k in Refusal if counts[k]]
        lines = ",".join(str(r.number) for r in self.refused)
        return ", ".join(parts) + (f"; refused lines {lines}" if lines else "")


_FULL_WIDTH = re.compile("[\u3000\uff01-\uff5e]")
"""全角スペース and the full-width forms of ASCII (＠, ａ, １, ．): the slip of a
Japanese input method left on."""


def read_listing(data: bytes) -> list[str]:
    """The file's lines, read whole before anything is done. UTF-8, with or without the
    BOM that Excel's "CSV UTF-8" writes; anything else (Shift_JIS, Excel's plain "CSV")
    is refused with the line it fails on, before a single request goes out."""
    try:
        # split on LF only, so numbers match an editor's (splitlines also breaks at
        # U+2028, U+0085 and others); a CR is stripped with the line's blanks
        return data.decode("utf-8-sig").split("\n")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise click.ClickException(
            f"{line} 行目が UTF-8 ではありません。UTF-8 で保存し直してください"
            "（Excel では「CSV UTF-8（コンマ区切り）」）"
        ) from None


def import_lines(lines: Iterable[str], request: Callable[[str], Outcome], report: Report) -> None:
    """Each address line once per mailbox (`address_key`: A1@ and a1@ are one), through
    `request`, into `report` as it goes (an import cut short still reports what it did);
    blank lines and `#` comments are skipped. A CSV line's first field is the address."""
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        address = mailbox(text.split(",")[0])
        if address is None:
            report.refused.append(Refused(number, text, Refusal.MALFORMED))
            continue
        key = address_key(address)
        if key in first_line:
            refused = Refused(number, text, Refusal.DUPLICATE, first_line[key])
            report.refused.append(refused)
            continue
        first_line[key] = number
        outcome = request(address)
        if outcome is Outcome.CONFIRMATION_SENT:
            report.accepted += 1
        else:
            report.refused.append(Refused(number, text, _BY_OUTCOME[outcome]))


SHOWN = 200
"""Characters of a refused line shown: a 50 MB line is not echoed whole."""


def _visible(text: str) -> str:
    """The line as typed, with control characters shown escaped: a file must not drive
    the staff member's terminal. A long line is cut, and says so."""
    cut = text[:SHOWN]
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut)
    return shown + (f"…（{len(text)} 文字のうち {SHOWN} 文字）" if len(text) > SHOWN else "")
