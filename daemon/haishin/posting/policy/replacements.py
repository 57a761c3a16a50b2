"""What to write instead of each 機種依存文字 (第3条(2)), as one table.

The warning of characters.py names every character it finds with its replacement (issue 14
item 4: 髙 was listed without one). Three sources, in this order:

1. `VARIANTS` below: the common JIS X 0208 form of the IBM-extension kanji that people
   actually write (names of people and places: 髙橋, 山﨑, 濵田), and the symbols whose
   compatibility decomposition is not a JIS character (∑, 〝〟);
2. Unicode's compatibility decomposition (NFKC), when it gives a JIS X 0208 text: ①→1,
   ㈱→(株), Ⅱ→II, ㌔→キロ;
3. otherwise `IN_KANA`: a rare variant with no JIS form is written in kana.
"""

from __future__ import annotations

import unicodedata

VARIANTS: dict[str, str] = {
    # kanji: the IBM extensions (cp932 0xED-0xEE, 0xFA-0xFC) and their everyday forms
    "髙": "高",
    "﨑": "崎",
    "德": "徳",
    "濵": "浜",
    "瀨": "瀬",
    "栁": "柳",
    "桒": "桑",
    "增": "増",
    "寬": "寛",
    "敎": "教",
    "橫": "横",
    "淸": "清",
    "綠": "緑",
    "緖": "緒",
    "羡": "羨",
    "薰": "薫",
    "賴": "頼",
    "郞": "郎",
    "鄕": "郷",
    "靑": "青",
    "黑": "黒",
    "悅": "悦",
    "甁": "瓶",
    "閒": "間",
    "\ufa15": "熙",  # 凞 (CJK COMPATIBILITY IDEOGRAPH-FA15)
    "昻": "昂",
    "曻": "昇",
    "杦": "杉",
    "隝": "島",
    "嶹": "島",
    "冝": "宜",
    "凬": "風",
    "勛": "勲",
    "咜": "咤",
    "喆": "哲",
    "埈": "峻",
    "崧": "嵩",
    "兤": "晃",
    # symbols (NEC row 13) whose NFKC form is not in JIS X 0208
    "∑": "Σ",
    "∮": "∫",
    "∟": "∠",
    "⊿": "△",
    "〝": "“",
    "〟": "”",
    "￤": "｜",
    "丨": "｜",
}

IN_KANA = "かな書き"
"""The advice for a variant kanji that has no JIS X 0208 form."""


def _in_jis(text: str) -> bool:
    try:
        text.encode("iso2022_jp")
    except UnicodeEncodeError:
        return False
    return True


def replacement(ch: str) -> str:
    """What to write instead of the 機種依存文字 `ch`."""
    if ch in VARIANTS:
        return VARIANTS[ch]
    plain = unicodedata.normalize("NFKC", ch)
    return plain if plain != ch and _in_jis(plain) else IN_KANA
