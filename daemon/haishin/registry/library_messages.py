"""The English that ruamel.yaml (libyaml), email-validator and pydantic write, in Japanese.

One table per library, each a list of (pattern, Japanese): the first pattern found in the
library's message wins. Anything not in a table falls back to a Japanese sentence that
quotes the original in 「」 as a detail, so English never reaches staff on its own.
A new wording is one more row here (style.md: an explicit table, not name dispatch).
"""

from __future__ import annotations

import re
import unicodedata

from .slips import SHOWN_SPACE, SPACE

_JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
# starts only at a word's start: else quadratic in a long run of letters
_SENTENCE = re.compile(r"(?<![A-Za-z])[A-Za-z]{2,}(?:[,:]? +[A-Za-z]{2,})+")
Table = tuple[tuple[re.Pattern[str], str], ...]


def _table(*rows: tuple[str, str]) -> Table:
    return tuple((re.compile(pattern, re.IGNORECASE), ja) for pattern, ja in rows)


YAML_PROBLEMS = _table(
    # libyaml's scanner and parser, ruamel's pure-Python ones and its composer; the text
    # searched is the problem and then the context ("while parsing a block mapping")
    (
        r"mapping values are not allowed",
        "この位置に「:」は書けません。値の中に「: 」があるときは値全体を ' ' で囲んでください",
    ),
    (
        r"could not find expected ':'",
        "「キー: 値」の「:」が見つかりません。前の行の「:」が半角で、直後に半角スペースがあるか確かめてください",
    ),
    (
        r"found character .*that cannot start any token",
        "値の始めに使えない文字（タブ文字・@・` など）があります。値を ' ' で囲んでください",
    ),
    (
        r"did not find expected key|expected <block end>",
        "字下げがそろっていません。同じ階層の項目は同じ桁から書いてください",
    ),
    (r"did not find expected '-' indicator", "一覧の「- 」と項目の字下げがそろっていません"),
    (r"expected ',' or '\]'", "[ ] の一覧が閉じていません。「,」か「]」が足りません"),
    (
        r"expected ',' or '\}'",
        "{ } の対応表が閉じていません。「,」か「}」が足りません",
    ),
    (r"did not find expected node content", "値が書かれるべき位置に値がありません"),
    (r"did not find expected comment or line break", "値の後ろに余分な文字があります"),
    (
        r"found unexpected end of stream",
        "引用符（' や \"）が閉じられないままファイルが終わっています",
    ),
    (r"found unexpected document (indicator|separator)", "引用符（' や \"）が閉じられていません"),
    (
        r"found unknown escape character",
        "\" \" の中に使えない「\\」の組み合わせがあります。' ' で囲んでください",
    ),
    (
        r"found another document|expected <document start>",
        "一つのファイルには一つの文書だけを書いてください（「---」や「...」の後ろに続きがあります）",
    ),
    (r"found undefined alias", "定義されていないエイリアス（*名前）が使われています"),
    (
        r"expected alphabetic or numeric character",
        "「&」や「*」の後ろに名前がありません。値に & や * を使うときは ' ' で囲んでください",
    ),
    (
        r"block sequence entries are not allowed",
        "この位置に一覧の「- 」は書けません。字下げを確かめてください",
    ),
    (r"duplicate anchor|second occurrence", "同じ名前のアンカー（&名前）が二度定義されています"),
    (r"expected <block end>", "字下げがそろっていません。同じ階層の項目は同じ桁から書いてください"),
)

EMAIL_PROBLEMS = _table(
    # email-validator's EmailSyntaxError texts (2.x); {chars} names the characters it lists
    (r"unsafe characters: (?P<chars>.+?)\.?$", "使えない文字 {chars} が含まれています"),
    (
        r"after the @-sign contains invalid characters: (?P<chars>.+?)\.?$",
        "「@」の後ろに使えない文字 {chars} があります",
    ),
    (
        r"invalid characters before the @-sign: (?P<chars>.+?)\.?$",
        "「@」の前に使えない文字 {chars} があります",
    ),
    (r"must have an @-sign|exactly one @-sign", "「@」がありません"),
    (r"something before the @-sign", "「@」の前が空です"),
    (r"something after the @-sign", "「@」の後ろ（ドメイン）が空です"),
    (r"should have a period", "「@」の後ろのドメインに「.」がありません（例: city.kawasaki.jp）"),
    (
        r"periods cannot be separated by so many",
        "ドメインの「.」で区切られた部分が長すぎます（63 文字まで）",
    ),
    (r"too long", "長すぎます"),
    (r"two periods in a row", "「.」が二つ続いています"),
    (r"period", "「.」の位置が正しくありません（先頭・末尾には書けません）"),
    (r"hyphen", "「-」の位置が正しくありません（「@」の直後や「.」の前後には書けません）"),
    (r"after the @-sign|domain", "「@」の後ろのドメインが正しくありません"),
    (r"before the @-sign|local part", "「@」の前の部分が正しくありません"),
    (r"Quoting", "「@」の前を引用符で囲む書き方は使えません"),
)

PYDANTIC_PROBLEMS = _table(
    # pydantic's own texts, for error types schema_messages has no sentence for
    (r"^Value error, ", ""),
    (r"valid string", "文字列で書いてください"),
    (r"valid number|valid integer", "数値で書いてください"),
    (r"valid IPv[46]|valid IP", "IP アドレス（例: 192.0.2.0/24）で書いてください"),
    (r"valid URL|URL", "URL（https:// で始まる形）で書いてください"),
    (r"valid timezone|timezone", "時差付きの日時（例: 2026-12-01 09:00:00+09:00）で書いてください"),
)


def japanese(table: Table, english: str, fallback: str) -> str:
    """The Japanese for `english`, or `fallback` with the original quoted as a detail."""
    for pattern, ja in table:
        match = pattern.search(english)
        if match is None:
            continue
        if not ja:  # a prefix around our own (Japanese) text: keep the rest
            return english[match.end() :]
        chars = match.groupdict().get("chars")
        return ja.format(chars=_characters(chars)) if chars else ja
    if _JAPANESE.search(english) and not _SENTENCE.search(english):
        return english  # our own text, raised inside a validator
    return f"{fallback}（詳細: 「{english}」）"


def _characters(listed: str) -> str:
    """email-validator's list of characters ("'@', SPACE, IDEOGRAPHIC SPACE") shown
    without English: quoted characters as they are, Unicode names as the code point."""
    shown = []
    for item in listed.split(", "):
        if item.startswith("'"):
            shown.append(f"「{item.strip(chr(39))}」")
            continue
        try:
            char = unicodedata.lookup(item)
        except KeyError:
            shown.append(f"「{item}」")
            continue
        if char == SPACE:
            shown.append(SHOWN_SPACE)
        elif char == " ":
            shown.append("半角スペース")
        else:
            shown.append(f"U+{ord(char):04X}")
    return "、".join(shown)
