"""What each model and field of the registry means, in Japanese, for the people who edit
the YAML: the editor's schema (`jsonschema.py`) and the field reference (`fieldref.py`)
are both generated from this one table. model.py stays the authority on what is valid;
this table only explains it (tests/registry/test_fields.py keeps it complete).
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel

from . import model as m


class Doc(NamedTuple):
    title: str
    description: str = ""


MODELS: dict[type[BaseModel], Doc] = {
    m.Service: Doc("サービス全体の設定", "service.yaml: サービス全体の設定（第10条）"),
    m.Person: Doc("担当者", "役職と連絡先のある担当者"),
    m.Category: Doc("分類", "サイトでチャネルを分ける分類"),
    m.Policy: Doc("配信の基本要件", "情報配信課が発信する情報の基本要件（第3条(2)）"),
    m.Cap: Doc("上限", "window_hours 時間に count 通まで"),
    m.AnswerLimits: Doc(
        "自動返信の上限",
        "アドレスごと・送信元ネットワークごと・全体の 3 つで数える。per_network が overall の"
        "時間窓で使える数は overall.count より小さくすること",
    ),
    m.ClientNetworks: Doc("送信元ネットワークのまとめ方", "per_network の上限で数える単位"),
    m.Limits: Doc("上限と保存期間", "自動返信の上限、確認の有効期限、個人情報の保存期間"),
    m.Bounces: Doc("配信エラー（バウンス）", "エラーの点数と、配信を停止するしきい値"),
    m.BounceFiltered: Doc(
        "携帯電話会社の受信拒否設定",
        "span_days 日以上にわたって times 回続いたら、そのアドレスへの配信を停止する",
    ),
    m.SenderAlarm: Doc(
        "送信側の原因による拒否の通報",
        "こちらの送信に原因がある拒否を宛先ドメインごとに数え、多ければ担当者に知らせる（第4条(1)）",
    ),
    m.DomainLimit: Doc("宛先ドメインごとの制限", "書かない項目は配信全体の設定に従う"),
    m.Delivery: Doc(
        "配信（送信側）の設定", "スマートホストへの同時接続数と速度、宛先ドメインごとの制限"
    ),
    m.Departments: Doc(
        "情報配信課の一覧", "departments.yaml: 情報配信課（第2条(2)）とその情報管理者"
    ),
    m.Department: Doc("情報配信課", "情報配信課（第2条(2)）。課の長が情報管理者（第5条）"),
    m.Contact: Doc("問い合わせ先", "サイトに載せる課の問い合わせ先"),
    m.Pause: Doc("配信の一時停止", "統括管理者による配信の停止（第3条5）"),
    m.Channel: Doc(
        "配信チャネル",
        "channels/<slug>.yaml: 1 つの配信チャネル。slug はファイル名（.yaml を除く）と同じにする",
    ),
    m.Application: Doc(
        "利用等申請書（第1号様式）",
        "applications/<number>.yaml: 1 件の申請（第6条）と統括管理者の決定。"
        "number はファイル名（.yaml を除く）と同じにする",
    ),
    m.Applicant: Doc("申請者", "申請した課の長"),
    m.Requested: Doc("申請内容", "承認されたら、チャネルのファイルも同じ内容にする"),
    m.Decision: Doc("決定（第2号様式）", "統括管理者の承認または不承認（第6条2）"),
    m.Outage: Doc(
        "サービスの停止記録",
        "outages/<id>.yaml: クラウドサービスの停止（第9条）。id はファイル名（.yaml を除く）と同じにする",
    ),
    m.Party: Doc("通知・報告", "相手の役割と日時"),
}
"""Each model's Japanese title and description."""

_ROLE = "役割: general_manager（統括管理者）、cloud_admin（クラウドサービス管理者）、cms_admin（防災CMS管理者）"
_CHARS = "allow（許可）、warn（警告して配信）、refuse（保留）"

FIELDS: dict[type[BaseModel], dict[str, Doc]] = {
    m.Service: {
        "name": Doc("サービス名"),
        "operator": Doc("運営者", "運営する部署の名前"),
        "mail_domain": Doc("配信のドメイン", "チャネルのアドレス（slug@この名前）のドメイン"),
        "site_url": Doc("サイトの URL", "公開サイト（第7条）のアドレス"),
        "inquiry_address": Doc(
            "問い合わせ先",
            "運営管理に関する問い合わせ先（第3条(1)）。mail_domain のアドレスにする（統括管理者に転送）",
        ),
        "disaster_info_url": Doc(
            "防災気象情報の案内先", "防災気象情報はこのサービスの対象外（第1条）。その案内先の URL"
        ),
        "roles": Doc("役割の担当者", f"役割ごとの担当者。{_ROLE}"),
        "categories": Doc("分類の一覧", "1 つ以上"),
        "policy": Doc("配信の基本要件", "第3条(2)"),
        "limits": Doc("上限と保存期間"),
        "bounces": Doc("配信エラー（バウンス）"),
        "delivery": Doc("配信（送信側）の設定"),
        "outage_notice_days": Doc(
            "計画停止の事前通知の日数",
            "停止開始の何日前に、配信サーバーが相手方へ事前通知（第9条2・4）を送るか。既定は 7",
        ),
        "dormant_after_days": Doc(
            "配信が途絶えたとみなす日数",
            "この日数のあいだ配信のないチャネルは、その情報管理者に配信の継続を促すメールを"
            "1 度送り、統括管理者の月次報告に載せる（第5条4）",
        ),
    },
    m.Person: {
        "name": Doc("氏名"),
        "title": Doc("役職"),
        "address": Doc("メールアドレス"),
    },
    m.Category: {
        "id": Doc("分類の ID", "チャネルの category に書く半角英字の名前"),
        "name": Doc("分類名", "サイトに表示する名前"),
        "description": Doc("分類の説明"),
    },
    m.Policy: {
        "max_size_kb": Doc("メールの大きさの上限", "KB 単位"),
        "allow_html": Doc("HTML メールを許可する"),
        "allow_attachments": Doc("添付ファイルを許可する"),
        "subject_max_length": Doc("件名の長さの上限", "文字数"),
        "subject_prefix": Doc("件名の先頭に付ける文字", "例: 【川崎市】"),
        "machine_dependent_chars": Doc("機種依存文字（①、㈱ など）の扱い", _CHARS),
        "halfwidth_kana": Doc("半角カナの扱い", _CHARS),
        "footer": Doc(
            "フッター",
            "配信メールの末尾に付ける文。{department}、{channel}、{unsubscribe}（配信停止の方法）、"
            "{mypage}（マイページの案内）、{owner} が置き換わる",
        ),
    },
    m.Cap: {
        "count": Doc("通数", "時間窓あたりの上限"),
        "window_hours": Doc("時間窓", "時間単位、24 まで"),
    },
    m.AnswerLimits: {
        "per_address": Doc("アドレスごとの上限"),
        "per_network": Doc("送信元ネットワークごとの上限"),
        "overall": Doc("全体の上限"),
    },
    m.ClientNetworks: {
        "ipv4_prefix": Doc(
            "IPv4 のまとめ方", "この長さのプレフィックスごとに 1 つの送信元として数える"
        ),
        "ipv6_prefix": Doc(
            "IPv6 のまとめ方", "この長さのプレフィックスごとに 1 つの送信元として数える"
        ),
        "forwarders": Doc(
            "XFORWARD を受け付ける相手",
            "接続元を伝えてよい前段のサーバー（Postfix）のアドレスまたはネットワーク",
        ),
    },
    m.Limits: {
        "confirmations": Doc("確認メールの上限", "登録・解除の確認メール"),
        "auto_replies": Doc("そのほかの自動返信の上限", "ヘルプ、登録済み、期限切れなど"),
        "client_networks": Doc("送信元ネットワークのまとめ方"),
        "token_ttl_hours": Doc("確認の有効期限", "時間単位"),
        "held_post_ttl_hours": Doc("保留した配信の有効期限", "時間単位"),
        "mypage_link_ttl_hours": Doc(
            "マイページのリンクの有効期限",
            "時間単位。mypage@ へのメールに返すリンク（/me/）が使える時間",
        ),
        "max_message_kb": Doc("受け付けるメールの大きさの上限", "KB 単位"),
        "unsubscribed_retention_days": Doc(
            "解除したアドレスの保存期間", "日数。同意の記録は残す（第4条(3)）"
        ),
        "spool_retention_days": Doc(
            "受信メールと返信の保存期間", "日数。アドレスを含むので期間後に消す（第4条(3)）"
        ),
    },
    m.Bounces: {
        "threshold": Doc("停止のしきい値", "この点数に達したアドレスへの配信を停止する"),
        "stale_days": Doc("点数を戻す日数", "この日数エラーがなければ 0 点に戻す"),
        "permanent_weight": Doc("恒久的なエラーの点数", "1 日 1 回まで数える"),
        "temporary_weight": Doc("一時的なエラーの点数", "1 日 1 回まで数える"),
        "unknown_weight": Doc("宛先の分からないエラーの点数", "1 日 1 回まで数える"),
        "filtered": Doc("携帯電話会社の受信拒否設定"),
        "sender_alarm": Doc("送信側の原因による拒否の通報"),
    },
    m.BounceFiltered: {
        "domains": Doc("携帯電話会社のドメイン"),
        "times": Doc("回数"),
        "span_days": Doc("期間", "最初と最後の拒否がこの日数以上離れていること"),
    },
    m.SenderAlarm: {
        "reasons": Doc("数える拒否の理由"),
        "threshold": Doc("しきい値", "時間窓あたりの件数"),
        "window_minutes": Doc("時間窓", "分単位"),
        "role": Doc("知らせる相手", _ROLE),
    },
    m.DomainLimit: {
        "recipients_per_connection": Doc("1 接続あたりの宛先数"),
        "messages_per_minute": Doc("1 分あたりの通数"),
        "connections": Doc("同時接続数"),
    },
    m.Delivery: {
        "connections": Doc("同時接続数", "スマートホストへの同時接続（使い回す）"),
        "messages_per_second": Doc("1 秒あたりの通数の上限", "全体の上限。既定はなし"),
        "recipients_per_connection": Doc("1 接続あたりの宛先数"),
        "domains": Doc(
            "宛先ドメインごとの制限", "キーは小文字のドメイン名。サブドメインは親に従う"
        ),
    },
    m.Departments: {
        "departments": Doc("情報配信課", "キーは課の ID（チャネルの department に書く名前）"),
    },
    m.Department: {
        "name": Doc("課の名前", "局・部から書く"),
        "manager": Doc("情報管理者", "課の長（第5条）"),
        "contact": Doc("問い合わせ先"),
        "paused": Doc("配信の一時停止", "課のすべてのチャネルを止める（第3条5）"),
    },
    m.Contact: {
        "phone": Doc("電話番号"),
        "address": Doc("メールアドレス"),
        "hours": Doc("受付時間"),
        "url": Doc("ウェブページ"),
    },
    m.Pause: {
        "since": Doc("停止した日"),
        "by": Doc("停止した人の役割", _ROLE),
        "reason": Doc("理由"),
        "until": Doc("再開の予定日"),
    },
    m.Channel: {
        "slug": Doc("チャネルの ID", "ファイル名と同じ半角の名前。アドレスの @ の前になる"),
        "title": Doc("チャネル名"),
        "summary": Doc("概要", "一覧に表示する 1 文"),
        "description": Doc("説明", "チャネルのページに表示する"),
        "category": Doc("分類", "service.yaml の categories の id"),
        "frequency": Doc("配信の頻度", "例: 月1回程度"),
        "department": Doc("情報配信課", "departments.yaml の課の ID"),
        "senders": Doc("配信できるアドレス", "1 つ以上"),
        "approval": Doc(
            "配信の承認方法",
            "confirm（送った人が確認）、manager（情報管理者が承認）、"
            "authenticated（DKIM 署名を確かめて配信）",
        ),
        "archive": Doc("過去の配信の公開", "public（公開）、private（非公開）"),
        "registered": Doc("登録日"),
        "application": Doc("承認済みの申請番号", "例: R8-0002"),
        "paused": Doc("配信の一時停止", "第3条5"),
    },
    m.Application: {
        "number": Doc("申請番号", "ファイル名と同じ。例: R8-0004"),
        "kind": Doc("申請の種類", "start（利用開始）、change（変更）、stop（利用停止）"),
        "department": Doc("申請した課", "departments.yaml の課の ID"),
        "channel": Doc("チャネルの ID", "channels/ のファイル名（.yaml を除く）"),
        "applied": Doc("申請日"),
        "applicant": Doc("申請者"),
        "requested": Doc("申請内容"),
        "decision": Doc("決定（第2号様式）", "haishin approve / reject が書く。審査中は書かない"),
    },
    m.Applicant: {
        "name": Doc("氏名"),
        "title": Doc("役職"),
    },
    m.Requested: {
        "title": Doc("チャネル名"),
        "summary": Doc("概要"),
        "category": Doc("分類"),
        "frequency": Doc("配信の頻度"),
        "department": Doc("情報配信課"),
        "purpose": Doc("利用の目的"),
    },
    m.Decision: {
        "result": Doc("結果", "approved（承認）、rejected（不承認）"),
        "date": Doc("決定日"),
        "by": Doc("決定した人の役割", _ROLE),
        "notice_number": Doc("通知番号"),
        "reason": Doc("理由", "不承認のとき"),
    },
    m.Outage: {
        "id": Doc("停止記録の ID", "ファイル名と同じ。例: R8-12-maintenance"),
        "kind": Doc("停止の種類", "planned（計画停止）、emergency（緊急停止）"),
        "stopped_by": Doc("停止した人の役割", _ROLE),
        "reason": Doc("理由"),
        "start": Doc("停止の開始", "日時。例: 2026-12-13 01:00:00+09:00（時差がなければ日本時間）"),
        "end": Doc("停止の終了", "日時。まだ分からなければ書かない"),
        "notice": Doc(
            "事前の通知",
            "計画停止の相手方への事前通知（第9条2・4）。書かなければ（下書き）、マージ後に配信サーバーが"
            "開始の outage_notice_days 日前に送って記録する。ほかの方法で通知したときだけ書く",
        ),
        "report": Doc(
            "事後の報告",
            "緊急停止の後の報告（第9条2・4 ただし書）。書かなければ、マージ後に配信サーバーが"
            "直ちに送って記録する。ほかの方法で報告したときだけ書く",
        ),
        "public_notice": Doc("サイトに載せるお知らせ"),
    },
    m.Party: {
        "to": Doc("相手の役割", _ROLE),
        "at": Doc("日時", "例: 2026-11-20 10:00:00+09:00"),
    },
}
"""Each field's Japanese title and description, by model."""

ENUMS: dict[type, Doc] = {
    m.Role: Doc("役割", _ROLE),
    m.Approval: Doc("配信の承認方法"),
    m.ApplicationKind: Doc("申請の種類"),
}
"""The enumerations' titles (each field that uses one says what its values mean)."""
