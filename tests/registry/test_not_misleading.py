"""Issue 15 item 4: findings that do not mislead — one broken file is not reported as
missing elsewhere."""

from __future__ import annotations

from .conftest import Reg

CH = "config/channels"
AP = "config/applications"


def test_broken_application_is_not_reported_missing(reg: Reg) -> None:
    reg.edit("applications/R6-0011.yaml", "kind: ", "kind: kaishi\nkindx: ")
    found = reg.findings()
    assert not any("は登録されていません" in f for f in found), found
    assert (
        f"{CH}/kaigo-yobou.yaml:15:14: 警告: 申請 R6-0011 のファイルに誤りがあるため確かめられません"
        "（先にそのファイルを直してください） [unreadable-reference]"
    ) in found
    assert all(f.startswith(f"{AP}/R6-0011.yaml") or "R6-0011" in f for f in found), found


def test_broken_channel_is_not_reported_missing(reg: Reg) -> None:
    reg.edit("channels/kenshin-info.yaml", "title: ", "titel: ")
    found = reg.findings()
    assert not any("がありません（channels/" in f for f in found), found
    assert any(
        "警告: チャネル kenshin-info のファイルに誤りがあるため確かめられません" in f
        and "[unreadable-reference]" in f
        for f in found
    ), found
