"""Characters that do not survive the trip to every phone (第3条(2)).

機種依存文字 are the characters Windows (cp932) has beyond JIS X 0208 — NEC row 13
(①, Ⅱ, ㈱, ㌔, №) and the IBM extensions — which older phones and non-Windows mailers
show as garbage. 半角カナ (JIS X 0201 katakana) break in ISO-2022-JP mail. Both are found
with one character class built once from the codecs themselves.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ...registry.model import Policy
from .base import Finding, PostVerdict, PostView, passed
from .replacements import replacement


def _machine_dependent() -> str:
    # Only the cp932 rows beyond JIS X 0208: NEC row 13 (0x87), NEC-selected IBM (0xED,
    # 0xEE) and IBM (0xFA-0xFC). Elsewhere cp932 and ISO-2022-JP differ only in which
    # code point they map a JIS character to (～ U+FF5E vs 〜 U+301C), which is no fault.
    found: set[str] = set()
    for lead in (0x87, 0xED, 0xEE, 0xFA, 0xFB, 0xFC):
        for trail in (*range(0x40, 0x7F), *range(0x80, 0xFD)):
            try:
                ch = bytes((lead, trail)).decode("cp932")
            except UnicodeDecodeError:
                continue
            try:
                ch.encode("iso2022_jp")
            except UnicodeEncodeError:
                found.add(ch)
    return "".join(sorted(found))


_MACHINE_RE = re.compile("[" + re.escape(_machine_dependent()) + "]")
_KANA_RE = re.compile("[\uff61-\uff9f]+")


def _show(chars: Iterable[str]) -> str:
    """Each character with what to write instead, e.g. ①→1, ㈱→(株), 髙→高."""
    return "、".join(f"{ch}→{replacement(ch)}" for ch in list(dict.fromkeys(chars))[:8])


def check_machine_dependent(post: PostView, policy: Policy) -> Finding:
    name = "machine-dependent-chars"
    if policy.machine_dependent_chars == "allow":
        return passed(name)
    found = _MACHINE_RE.findall(post.subject + "\n" + post.text)
    if not found:
        return passed(name)
    verdict = PostVerdict.REFUSE if policy.machine_dependent_chars == "refuse" else PostVerdict.WARN
    return Finding(
        name,
        verdict,
        f"機種依存文字が使われています（{_show(found)}）。"
        "携帯電話などで正しく表示されないことがあるため、右側の書き方に直してください。",
    )


def check_halfwidth_kana(post: PostView, policy: Policy) -> Finding:
    name = "halfwidth-kana"
    if policy.halfwidth_kana == "allow":
        return passed(name)
    found = _KANA_RE.findall(post.subject + "\n" + post.text)
    if not found:
        return passed(name)
    verdict = PostVerdict.REFUSE if policy.halfwidth_kana == "refuse" else PostVerdict.WARN
    sample = "、".join(f"{k}→{unicodedata.normalize('NFKC', k)}" for k in dict.fromkeys(found))
    return Finding(
        name,
        verdict,
        f"半角カナが使われています（{sample[:80]}）。全角カナに直してください。",
    )
