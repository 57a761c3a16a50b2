"""One failing fixture per rule of `haishin check`, each with its exact place and message.

Each case edits a private copy of the sample registry (which itself is valid) and asserts
the complete list of findings, so a rule that also fires somewhere unexpected fails too.
"""

from __future__ import annotations

import pytest

from .conftest import Edit, Reg

CH = "config/channels"
AP = "config/applications"
OU = "config/outages"


def _new_channel(slug: str, **override: str) -> str:
    fields = {
        "slug": slug,
        "title": "テスト",
        "summary": "概要",
        "description": "説明",
        "category": "kurashi",
        "frequency": "月1回",
        "department": "nakahara-chiiki",
        "registered": "2019-01-01",
    }
    fields.update(override)
    body = "".join(f"{k}: {v}\n" for k, v in fields.items())
    return body + "senders:\n  - nakahara@city.kawasaki.example.jp\n"


CASES: dict[str, tuple[Edit, list[str]]] = {
    # --- schema ----------------------------------------------------------------------
    "missing-field": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "title: ごみ・リサイクル情報\n", ""),
        [f"{CH}/gomi-recycle.yaml:2:1: 必須の項目 'title' がありません [missing]"],
    ),
    "type": (
        lambda r: r.edit(
            "channels/gomi-recycle.yaml",
            "senders:\n  - genryo@city.kawasaki.example.jp",
            "senders: 3",
        ),
        [
            f"{CH}/gomi-recycle.yaml:11:10: 'senders' は一覧（- で始まる行）で書いてください（書かれている値: 「3」） [type]"
        ],
    ),
    "date": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "2015-04-01", "2015/04/01"),
        [
            f"{CH}/gomi-recycle.yaml:15:13: 'registered' は日付（例: 2026-04-01）で書いてください（書かれている値: 「2015/04/01」） [type]"
        ],
    ),
    "impossible-date": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "2015-04-01", "2015-02-30"),
        [
            f"{CH}/gomi-recycle.yaml:15:13: 'registered' は日付（例: 2026-04-01）で書いてください（書かれている値: 「2015-02-30」） [type]"
        ],
    ),
    "email": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "genryo@city", "genryo@@city"),
        [
            f"{CH}/gomi-recycle.yaml:12:5: 'senders.0' のメールアドレス"
            "「genryo@@city.kawasaki.example.jp」は使えません: 「@」の後ろに使えない文字 「@」 があります [email]"
        ],
    ),
    "unknown-key": (
        lambda r: r.edit(
            "channels/gomi-recycle.yaml", "archive: public", "archive: public\narchiv: x"
        ),
        [
            f"{CH}/gomi-recycle.yaml:15:1: 不明な項目 'archiv' です。もしかして 'archive' ですか [unknown-key]"
        ],
    ),
    "unknown-value": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "approval: confirm", "approval: auto"),
        [
            f"{CH}/gomi-recycle.yaml:13:11: 'approval' の値 'auto' は使えません"
            "（使えるのは 'confirm', 'manager' or 'authenticated'） [unknown-value]"
        ],
    ),
    "duplicate-key": (
        lambda r: r.edit(
            "channels/gomi-recycle.yaml", "archive: public", "archive: public\narchive: private"
        ),
        [
            f"{CH}/gomi-recycle.yaml:15:1: キー 'archive' が重複しています（最初は 14 行目） [duplicate-key]"
        ],
    ),
    "empty-value": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "title: ごみ・リサイクル情報", 'title: ""'),
        [f"{CH}/gomi-recycle.yaml:3:8: 'title' が空です [empty-value]"],
    ),
    "file-name": (
        lambda r: r.write("channels/kurashi.yaml", _new_channel("kurashi-info")),
        [
            f"{CH}/kurashi.yaml:1:7: 'slug' (kurashi-info) とファイル名 (kurashi) を同じにしてください [file-name]"
        ],
    ),
    "yml-extension": (
        lambda r: r.write("channels/kurashi.yml", _new_channel("kurashi")),
        [
            f"{CH}/kurashi.yml:1:1: 拡張子は .yaml にしてください（.yml は読み込まれません） [file-name]"
        ],
    ),
    # --- slugs and the address contract ------------------------------------------------
    "slug-format": (
        lambda r: r.write("channels/Kurashi_Info.yaml", _new_channel("Kurashi_Info")),
        [
            f"{CH}/Kurashi_Info.yaml:1:7: slug 'Kurashi_Info' には半角英小文字・数字と、間のハイフン 1 つだけが使えます [slug-format]"
        ],
    ),
    "slug-length": (
        lambda r: r.write("channels/" + "a" * 26 + ".yaml", _new_channel("a" * 26)),
        [
            f"{CH}/{'a' * 26}.yaml:1:7: slug '{'a' * 26}' が長すぎます（25 文字まで: メールアドレスの前半は 64 文字以内のため） [slug-length]"
        ],
    ),
    "slug-collision": (
        lambda r: r.write("channels/gomi-recycle-owner.yaml", _new_channel("gomi-recycle-owner")),
        [
            f"{CH}/gomi-recycle-owner.yaml:1:7: アドレス gomi-recycle-owner@ が チャネル 'gomi-recycle' のアドレスと重なります [slug-collision]"
        ],
    ),
    "slug-collides-with-inquiry": (
        lambda r: r.write("channels/toiawase.yaml", _new_channel("toiawase")),
        [
            f"{CH}/toiawase.yaml:1:7: アドレス toiawase@ が サービスの問い合わせ先 のアドレスと重なります [slug-collision]"
        ],
    ),
    "slug-takes-mypage": (
        lambda r: r.write("channels/mypage.yaml", _new_channel("mypage")),
        [
            f"{CH}/mypage.yaml:1:7: アドレス mypage@ が マイページ（mypage@） のアドレスと重なります [slug-collision]"
        ],
    ),
    "inquiry-domain": (
        lambda r: r.edit("service.yaml", "toiawase@mail.city", "toiawase@city"),
        [
            "config/service.yaml:7:18: 問い合わせ先は配信サービスのドメイン（@mail.city.kawasaki.example.jp）の"
            "アドレスにしてください（受け取ったメールは統括管理者に転送されます） [inquiry-domain]"
        ],
    ),
    # --- references ---------------------------------------------------------------------
    "unknown-department": (
        lambda r: r.edit(
            "channels/gomi-recycle.yaml", "department: kankyo-genryo", "department: kankyo-genryou"
        ),
        [
            f"{CH}/gomi-recycle.yaml:10:13: 情報配信課 'kankyo-genryou' は登録されていません。もしかして 'kankyo-genryo' ですか [unknown-reference]"
        ],
    ),
    "unknown-category": (
        lambda r: r.edit("channels/gomi-recycle.yaml", "category: kankyo", "category: gomi"),
        [f"{CH}/gomi-recycle.yaml:8:11: 分類 'gomi' は登録されていません [unknown-reference]"],
    ),
    "unknown-application": (
        lambda r: r.edit(
            "channels/kenshin-info.yaml", "application: R5-0003", "application: R5-0033"
        ),
        [f"{CH}/kenshin-info.yaml:15:14: 申請 'R5-0033' は登録されていません [unknown-reference]"],
    ),
    "application-of-another-channel": (
        lambda r: r.edit(
            "channels/kenshin-info.yaml", "application: R5-0003", "application: R6-0011"
        ),
        [
            f"{CH}/kenshin-info.yaml:15:14: 申請 R6-0011 はチャネル 'kaigo-yobou' の申請です [application-channel]"
        ],
    ),
    "application-unknown-channel": (
        lambda r: r.edit("applications/R8-0002.yaml", "channel: kenshin-info", "channel: kenshin"),
        [
            f"{AP}/R8-0002.yaml:5:10: チャネル 'kenshin' がありません（channels/kenshin.yaml） [unknown-channel]"
        ],
    ),
    "application-unknown-department": (
        lambda r: r.edit(
            "applications/R8-0004.yaml", "department: machi-kotsu", "department: machi"
        ),
        [
            f"{AP}/R8-0004.yaml:4:13: 情報配信課 'machi' は登録されていません。もしかして 'machi-kotsu' ですか [unknown-reference]"
        ],
    ),
    "application-other-department": (
        lambda r: r.edit(
            "applications/R8-0004.yaml", "department: machi-kotsu", "department: nakahara-chiiki"
        ),
        [
            f"{AP}/R8-0004.yaml:4:13: 申請 R8-0004 の課 'nakahara-chiiki' がチャネルの課 'machi-kotsu' と違います [application-department]"
        ],
    ),
    # --- 第6条: approvals ------------------------------------------------------------------
    "approver": (
        lambda r: r.edit("applications/R5-0003.yaml", "by: general_manager", "by: cloud_admin"),
        [
            f"{AP}/R5-0003.yaml:19:7: 承認・不承認は 統括管理者（general_manager）が行います（第6条2） [approver]"
        ],
    ),
    "decision-before-application": (
        lambda r: r.edit("applications/R5-0003.yaml", "date: 2023-04-05", "date: 2023-03-01"),
        [
            f"{AP}/R5-0003.yaml:18:9: 決定日 2023-03-01 が申請日 2023-03-20 より前です [decision-date]"
        ],
    ),
    "notice-number-reused": (
        lambda r: r.edit("applications/R5-0003.yaml", "川シ第2011号", "川シ第1035号"),
        [
            f"{AP}/R5-0003.yaml:20:18: 通知番号 川シ第1035号 は申請 R4-0009 でも使われています [notice-number]"
        ],
    ),
    "no-application-after-revision": (
        lambda r: r.write(
            "channels/kurashi.yaml", _new_channel("kurashi", registered="2022-01-05")
        ),
        [
            f"{CH}/kurashi.yaml:8:13: 2021-12-24 以降に登録されたチャネルには利用開始の申請（第1号様式）と"
            "その承認が必要です（第6条）。application: に申請番号を書いてください [application-missing]"
        ],
    ),
    "refers-to-rejected": (
        lambda r: r.edit(
            "channels/kenshin-info.yaml", "application: R5-0003", "application: R8-0002"
        ),
        [
            f"{CH}/kenshin-info.yaml:15:14: 申請 R8-0002 は不承認です。不承認の申請は何も変えません: "
            "チャネルの内容と application: を元に戻してください [rejected-application]"
        ],
    ),
    "unapproved-change": (
        lambda r: (
            r.edit("applications/R8-0002.yaml", "decision:", "#decision:"),
            r.edit(
                "applications/R8-0002.yaml",
                "  result: rejected\n  date: 2026-05-25\n  by: general_manager\n  notice_number: 川シ第5014号\n  reason: 特定の医療機関の広告は行政情報の配信の対象外であるため\n",
                "",
            ),
            r.edit("channels/kenshin-info.yaml", "application: R5-0003", "application: R8-0002"),
        ),
        [
            f"{CH}/kenshin-info.yaml:15:14: 変更申請 R8-0002 はまだ承認されていません。承認（第2号様式）の前に"
            "チャネルの内容を変えると未承認の内容が公開されます [unapproved-change]"
        ],
    ),
    "stale-application": (
        lambda r: r.edit(
            "channels/kosodate-news.yaml", "application: R6-0007", "application: R4-0009"
        ),
        [
            f"{CH}/kosodate-news.yaml:17:14: 最新の承認済み申請は R6-0007 です。application: をそれに合わせてください [stale-application]"
        ],
    ),
    "content-not-approved": (
        lambda r: r.edit("channels/kosodate-news.yaml", "frequency: 月2回程度", "frequency: 毎日"),
        [
            f"{CH}/kosodate-news.yaml:8:12: 'frequency' が承認された申請 R6-0007 の内容（月2回程度）と違います。"
            "変更には変更申請と承認が必要です（第6条） [content-not-approved]"
        ],
    ),
    "change-before-start": (
        lambda r: r.edit("applications/R4-0009.yaml", "kind: start", "kind: change"),
        [
            f"{AP}/R4-0009.yaml:3:7: 申請 R4-0009: 利用開始の承認より前に変更は承認できません [application-order]"
        ],
    ),
    "start-while-running": (
        lambda r: r.edit("applications/R6-0007.yaml", "kind: change", "kind: start"),
        [
            f"{AP}/R6-0007.yaml:3:7: 申請 R6-0007: 利用中のチャネルに利用開始は申請できません（変更を使ってください） [application-order]"
        ],
    ),
    # --- 第1条 -----------------------------------------------------------------------------
    "disaster-category": (
        lambda r: (
            r.edit(
                "service.yaml",
                "  - id: machi\n",
                "  - id: bosai\n    name: 防災・気象\n  - id: machi\n",
            ),
            r.edit("channels/nakahara-kurashi.yaml", "category: kurashi", "category: bosai"),
        ),
        [
            f"{CH}/nakahara-kurashi.yaml:6:11: 防災気象情報のチャネルは登録できません（第1条）。防災情報は別のサービスで配信されます [disaster-category]",
            "config/service.yaml:38:9: 分類 'bosai'（防災・気象）: 防災気象情報はこのサービスの対象外です（第1条） [disaster-category]",
        ],
    ),
    # --- 第3条5 ----------------------------------------------------------------------------
    "pause-by": (
        lambda r: r.edit("channels/sports-event.yaml", "by: general_manager", "by: cloud_admin"),
        [
            f"{CH}/sports-event.yaml:19:7: 配信の停止は 統括管理者（general_manager）が行います（第3条5） [pause-by]"
        ],
    ),
    # --- 第9条 -----------------------------------------------------------------------------
    "notice-after-start": (
        lambda r: r.edit(
            "outages/R8-12-maintenance.yaml",
            "at: 2026-11-20 10:00:00+09:00",
            "at: 2026-12-13 02:00:00+09:00",
        ),
        [
            f"{OU}/R8-12-maintenance.yaml:10:7: 通知 2026-12-13 02:00:00+09:00 が停止開始 2026-12-13 01:00:00+09:00 より後です。"
            "事前に通知してください（第9条） [notice-late]"
        ],
    ),
    "notice-to-wrong-party": (
        lambda r: r.edit("outages/R8-12-maintenance.yaml", "to: cms_admin", "to: general_manager"),
        [
            f"{OU}/R8-12-maintenance.yaml:9:7: 通知・報告の相手は 防災CMS管理者（cms_admin）です（第9条2・4） [outage-party]"
        ],
    ),
    "report-before-stop": (
        lambda r: r.edit(
            "outages/R8-10-cms-failure.yaml",
            "at: 2026-10-08 16:30:00+09:00",
            "at: 2026-10-08 13:00:00+09:00",
        ),
        [
            f"{OU}/R8-10-cms-failure.yaml:10:7: 緊急停止の報告 2026-10-08 13:00:00+09:00 が停止 2026-10-08 14:10:00+09:00 "
            "より前です（報告は停止後） [report-early]"
        ],
    ),
    "window-ends-before-start": (
        lambda r: r.edit(
            "outages/R8-12-maintenance.yaml",
            "end: 2026-12-13 05:00:00+09:00",
            "end: 2026-12-12 05:00:00+09:00",
        ),
        [
            f"{OU}/R8-12-maintenance.yaml:7:6: 終了 2026-12-12 05:00:00+09:00 が開始 2026-12-13 01:00:00+09:00 より前です [window]"
        ],
    ),
    "outage-by-wrong-role": (
        lambda r: r.edit(
            "outages/R8-12-maintenance.yaml",
            "stopped_by: cloud_admin",
            "stopped_by: general_manager",
        ),
        [
            f"{OU}/R8-12-maintenance.yaml:4:13: 停止できるのはクラウドサービス管理者か防災CMS管理者です（第9条1・3） [outage-party]"
        ],
    ),
    # --- service ---------------------------------------------------------------------------
    "missing-role": (
        lambda r: r.edit(
            "service.yaml",
            "  cms_admin:         # 防災CMSを管理する者（第9条3）\n    name: 多摩 花子\n"
            "    title: 総務企画局危機管理本部危機管理部担当課長\n    address: bosai-cms@city.kawasaki.example.jp\n",
            "",
        ),
        [
            "config/service.yaml:12:3: 役割 'cms_admin'（防災CMS管理者）の担当者がいません [missing-role]"
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule(reg: Reg, case: str) -> None:
    edit, expected = CASES[case]
    edit(reg)
    assert reg.findings() == expected
