"""Broken files get one clear, positioned finding each; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from haishin.registry import check

from .conftest import Reg

F = "config/channels/gomi-recycle.yaml"

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}]\n"
    for i in range(8)
)

CASES: dict[str, tuple[bytes, list[str]]] = {
    "invalid-yaml": (
        b"slug: gomi-recycle\ntitle: [unclosed\n",
        [
            f"{F}:3:1: YAML の書き方に誤りがあります: [ ] の一覧が閉じていません。「,」か「]」が足りません [yaml-syntax]"
        ],
    ),
    "tab-indent": (
        b"slug: gomi-recycle\nsenders:\n\t- a@example.jp\n",
        [f"{F}:3:1: 字下げにタブ文字は使えません。半角スペースで字下げしてください [tab-indent]"],
    ),
    "shift-jis": (
        "slug: gomi-recycle\ntitle: ごみ\n".encode("shift_jis"),
        [
            f"{F}:2:8: UTF-8 として読めない文字があります。UTF-8 で保存してください"
            "（Shift_JIS で保存されていませんか） [encoding]"
        ],
    ),
    "empty": (b"", [f"{F}:1:1: ファイルが空です [empty-file]"]),
    "only-comments": (b"# TODO\n\n", [f"{F}:1:1: ファイルが空です [empty-file]"]),
    "object-tag": (
        b"slug: !!python/object/apply:os.system ['rm -rf /']\n",
        [
            f"{F}:1:7: YAML タグ !!python/object/apply:os.system は使えません"
            "（文字列・数値・日付・一覧・対応表だけが書けます） [yaml-tag]"
        ],
    ),
    "local-tag": (
        b"slug: !include other.yaml\n",
        [
            f"{F}:1:7: YAML タグ !include は使えません（文字列・数値・日付・一覧・対応表だけが書けます） [yaml-tag]"
        ],
    ),
    "alias-bomb": (
        BOMB.encode(),
        [
            f"{F}:5:4: エイリアスの展開が大きすぎる、または入れ子が深すぎます（値 50,000 個・深さ 32 まで） [alias-bomb]"
        ],
    ),
    "huge": (
        b"slug: gomi-recycle\ndescription: |\n" + b"  " + b"x" * 3_000_000 + b"\n",
        [
            f"{F}:1:1: ファイルが大きすぎます（3,000,037 バイト、上限 1,048,576 バイト） [file-too-large]"
        ],
    ),
    "long-number": (
        b"slug: gomi-recycle\nfrequency: " + b"9" * 5_000 + b"\n",
        [f"{F}:2:12: 数が長すぎます（5,000 桁、30 桁まで） [number-too-long]"],
    ),
    "control-character": (
        b"slug: gomi-recycle\ntitle: \xe3\x81\x94\x00\n",
        [f"{F}:2:9: 使えない制御文字（U+0000）があります。消してください [control-character]"],
    ),
    "not-a-mapping": (
        b"- slug: gomi-recycle\n",
        [f"{F}:1:1: ファイル全体を対応表（キー: 値 の形）で書いてください [type]"],
    ),
    "merge-key": (
        b"base: &b {title: x}\n<<: *b\n",
        [f"{F}:2:1: キーには単純な文字列を書いてください（<< や複合キーは使えません） [yaml-key]"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file(reg: Reg, case: str) -> None:
    raw, expected = CASES[case]
    reg.write("channels/gomi-recycle.yaml", raw)
    assert reg.findings() == expected


def test_contents_checked_before_they_are_written_are_bounded_alike(reg: Reg) -> None:
    """Contents given in memory (load.Overrides: an edit checked before it is written) are
    never stat'ed; a huge one gets the same finding as the file would."""
    raw, expected = CASES["huge"]
    overrides = {reg.path("channels/gomi-recycle.yaml").absolute(): raw}
    _reg, problems = check(Path("config"), overrides)
    assert [str(p) for p in problems] == expected


def test_missing_service_file(reg: Reg) -> None:
    reg.path("service.yaml").unlink()
    assert reg.findings() == ["config/service.yaml:1:1: service.yaml がありません [missing-file]"]


def test_every_problem_in_one_run(reg: Reg) -> None:
    """A pull request with several mistakes in several files gets them all at once."""
    reg.write("channels/gomi-recycle.yaml", b"slug: [\n")
    reg.edit("channels/nakahara-kurashi.yaml", "category: kurashi", "category: kurashii")
    reg.edit("outages/R8-12-maintenance.yaml", "to: cms_admin", "to: cloud_admin")
    keys = [f.rsplit("[", 1)[1] for f in reg.findings()]
    assert keys == ["yaml-syntax]", "unknown-reference]", "outage-party]"]
