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


def test_pending_start_differing_from_its_channel_is_a_warning(reg: Reg) -> None:
    reg.edit("channels/noriai-bus.yaml", "title: 地域交通・乗合バス情報", "title: 乗合バス情報")
    assert reg.findings() == [
        f"{CH}/noriai-bus.yaml:2:8: 警告: 'title' が承認待ちの申請 R8-0004 の内容"
        "（地域交通・乗合バス情報）と違います。このままでは承認できません: "
        "申請かチャネルのどちらかを直してください（第6条） [content-differs-pending]"
    ]


def test_pending_start_matching_its_channel_is_quiet(reg: Reg) -> None:
    assert reg.findings() == []


def test_disaster_title_in_any_category_is_a_warning(reg: Reg) -> None:
    reg.write(
        "channels/bosai-kisho.yaml",
        "slug: bosai-kisho\ntitle: 防災気象情報メール\nsummary: 概要\ndescription: 説明\n"
        "category: bunka\nfrequency: 随時\ndepartment: nakahara-chiiki\n"
        "registered: 2019-01-01\nsenders:\n  - nakahara@city.kawasaki.example.jp\n",
    )
    assert reg.findings() == [
        f"{CH}/bosai-kisho.yaml:2:8: 警告: 'title' に「防災」とあります。"
        "防災気象情報はこのサービスの対象外です（第1条）。"
        "防災情報でなければ、そう読めない書き方にしてください [disaster-words]"
    ]


def test_disaster_words_in_a_description_are_a_warning(reg: Reg) -> None:
    reg.edit(
        "channels/noriai-bus.yaml",
        "ダイヤ改正のお知らせ",
        "ダイヤ改正、地震の際の運休のお知らせ",
    )
    assert reg.findings() == [
        f"{CH}/noriai-bus.yaml:4:14: 警告: 'description' に「地震」とあります。"
        "防災気象情報はこのサービスの対象外です（第1条）。"
        "防災情報でなければ、そう読めない書き方にしてください [disaster-words]"
    ]


def test_sender_outside_the_citys_domain_is_a_warning(reg: Reg) -> None:
    reg.edit(
        "channels/noriai-bus.yaml",
        "  - kotsu@city.kawasaki.example.jp\n",
        "  - kotsu@city.kawasaki.example.jp\n  - bus.tantou@gmail.com\n",
    )
    assert reg.findings() == [
        f"{CH}/noriai-bus.yaml:11:5: 警告: 投稿者 bus.tantou@gmail.com は市のドメイン"
        "（example.jp）のアドレスではありません。個人や委託先のアドレスでよいか確かめてください"
        " [sender-domain]"
    ]


def test_organizational_domain_of_a_real_city() -> None:
    from haishin.addresses import organizational_domain

    assert organizational_domain("mail.city.kawasaki.jp") == "city.kawasaki.jp"
    assert organizational_domain("City.Kawasaki.JP.") == "city.kawasaki.jp"


def test_broken_start_does_not_put_later_approvals_out_of_order(reg: Reg) -> None:
    reg.edit("applications/R4-0006.yaml", "applied: ", "appliedx: ")
    assert reg.findings() == [
        f"{AP}/R4-0006.yaml:2:1: 必須の項目 'applied' がありません [missing]",
        f"{AP}/R4-0006.yaml:6:1: 不明な項目 'appliedx' です。もしかして 'applied' ですか [unknown-key]",
    ]
