"""Commands written in the Subject or body of `<slug>-request@` (design.md, addresses):
subscribe, unsubscribe, help, confirm, and マイページ / 一覧 / mypage (a link to the
citizen's own page, as `mypage@` answers).

Japanese phones write commands full-width or half-width (登録, ﾍﾙﾌﾟ, ＨＥＬＰ); NFKC folds
them to one form. Replies keep the subject with Re:/RE:/ＲＥ： prefixes, which are dropped.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable

from ..tokens import find_tokens


class Command(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    HELP = "help"
    CONFIRM = "confirm"
    MYPAGE = "mypage"  # a link to the citizen's own page, as a mail to mypage@ brings


_WORDS = {
    "subscribe": Command.SUBSCRIBE,
    "join": Command.SUBSCRIBE,
    "登録": Command.SUBSCRIBE,
    "とうろく": Command.SUBSCRIBE,
    "unsubscribe": Command.UNSUBSCRIBE,
    "leave": Command.UNSUBSCRIBE,
    "解除": Command.UNSUBSCRIBE,
    "登録解除": Command.UNSUBSCRIBE,
    "配信停止": Command.UNSUBSCRIBE,
    "退会": Command.UNSUBSCRIBE,
    "help": Command.HELP,
    "ヘルプ": Command.HELP,
    "へるぷ": Command.HELP,
    "confirm": Command.CONFIRM,
    "mypage": Command.MYPAGE,
    "マイページ": Command.MYPAGE,
    "一覧": Command.MYPAGE,
    "いちらん": Command.MYPAGE,
}
_JAPANESE_BY_LENGTH = sorted((w for w in _WORDS if not w.isascii()), key=len, reverse=True)
_PREFIX_RE = re.compile(r"^\s*((re|fw|fwd|aw|sv|回答|返信|転送)\s*(\[\d+\])?\s*:\s*)+", re.I)
MAX_LINES = 5
"""Only the first lines count: below them is a quoted message or a signature."""


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def strip_reply_prefix(subject: str) -> str:
    return _PREFIX_RE.sub("", normalize(subject))


def _command_in(line: str) -> Command | None:
    words = line.strip().lower().split()
    if not words:
        return None
    first = words[0].strip("[]()「」【】:：.。")
    if first in _WORDS:
        return _WORDS[first]
    # Japanese has no spaces: 「登録します」 and 「解除希望」 start with the command word;
    # the longest word first, so 登録解除 is not read as 登録
    for word in _JAPANESE_BY_LENGTH:
        if first.startswith(word):
            return _WORDS[word]
    return None


def parse(
    subject: str, body: str, is_confirmation: Callable[[str], bool] = lambda t: True
) -> tuple[Command | None, str | None]:
    """The command and a confirmation token, if any (tokens count in subject or body).

    `is_confirmation` tells a confirmation token from other token-shaped text, such as the
    unsubscribe link quoted from a welcome mail, which must not read as "confirm"."""
    tokens = [t for t in find_tokens(subject) + find_tokens(body) if is_confirmation(t)]
    token = tokens[0] if tokens else None
    command = _command_in(strip_reply_prefix(subject))
    if command is None:
        lines = [normalize(x) for x in body.splitlines()]
        lines = [x for x in lines if x and not x.startswith((">", "|"))][:MAX_LINES]
        for line in lines:
            command = _command_in(line)
            if command is not None:
                break
    if token and command in (None, Command.CONFIRM):
        return Command.CONFIRM, token
    return command, token
