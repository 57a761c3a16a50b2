"""Issue 15 item 3: the slips of a Japanese keyboard are named where they stand."""

from __future__ import annotations

import pytest

from .conftest import Reg

CH = "config/channels/gomi-recycle.yaml"
AP = "config/applications/R8-0004.yaml"
SV = "config/service.yaml"
SPACE = "全角スペース「　」(U+3000)"

# (file, text in the sample, the clerk's version, the one finding for that file)
SLIPS: dict[str, tuple[str, str, str, str]] = {
    "全角コロン": (
        CH,
        "frequency: 月1〜2回程度",
        "frequency：月1〜2回程度",
        f"{CH}:9:10: 'frequency' の後ろの区切りが全角コロン「：」です。半角の「:」にしてください"
        " [fullwidth-colon]",
    ),
    "全角スペース-コロンの直後": (
        CH,
        "category: kankyo",
        "category:\u3000kankyo",
        f"{CH}:8:10: 'category' の「:」の直後に{SPACE}があります。半角スペースにしてください"
        " [fullwidth-space]",
    ),
    "全角スペース-字下げ": (
        AP,
        "  title: 地域交通",
        "\u3000\u3000title: 地域交通",
        f"{AP}:11:1: 字下げに{SPACE}が使われています。字下げは半角スペースにしてください"
        " [fullwidth-space]",
    ),
    "全角スペース-値の末尾": (
        CH,
        "title: ごみ・リサイクル情報",
        "title: ごみ・リサイクル情報\u3000",
        f"{CH}:3:18: 'title' の値の末尾に{SPACE}があります。消してください [fullwidth-space]",
    ),
    "全角数字": (
        CH,
        "registered: 2015-04-01",
        "registered: ２０１５-04-01",
        f"{CH}:15:13: 'registered' に全角数字があります。半角で書いてください:"
        " ２０１５-04-01 → 2015-04-01 [fullwidth-digit]",
    ),
    "全角数字-数値": (
        SV,
        "ipv4_prefix: 24",
        "ipv4_prefix: ２４",
        f"{SV}:94:18: 'ipv4_prefix' に全角数字があります。半角で書いてください: ２４ → 24"
        " [fullwidth-digit]",
    ),
    "和暦": (
        AP,
        "applied: 2026-11-18",
        "applied: 令和8年11月18日",
        f"{AP}:6:10: 'applied' に和暦の日付は書けません。西暦（例: 2026-04-01）で書いてください:"
        " 令和8年11月18日 → 2026-11-18 [wareki-date]",
    ),
    "和暦-令和元年": (
        AP,
        "applied: 2026-11-18",
        "applied: '令和元年５月１日'",
        f"{AP}:6:11: 'applied' に和暦の日付は書けません。西暦（例: 2026-04-01）で書いてください:"
        " 令和元年５月１日 → 2019-05-01 [wareki-date]",
    ),
}


@pytest.mark.parametrize("slip", list(SLIPS))
def test_a_slip_is_named_where_it_stands(reg: Reg, slip: str) -> None:
    path, old, new, expected = SLIPS[slip]
    reg.edit(path.removeprefix("config/"), old, new)
    assert [f for f in reg.findings() if f.startswith(f"{path}:")] == [expected]


def test_full_width_text_in_a_block_is_the_clerks(reg: Reg) -> None:
    # 「　」 opening a paragraph, 全角数字 and 令和 in prose are Japanese writing, not slips
    reg.edit(
        "channels/gomi-recycle.yaml",
        "  年末年始",
        "  \u3000令和８年の年末年始\u3000\n  ",
    )
    reg.edit("channels/gomi-recycle.yaml", "月1〜2回程度", "月１回程度（令和8年4月1日から）")
    assert reg.findings() == []
