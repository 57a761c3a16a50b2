"""Issue 15 item 3: the slips of a Japanese keyboard are named where they stand, and
nothing a library says in English reaches staff (see also conftest.no_english)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from haishin.registry.library_messages import EMAIL_PROBLEMS, YAML_PROBLEMS, japanese
from haishin.registry.slips import in_value
from haishin.registry.yamlsource import _compose

from .conftest import Reg
from .leaks import english_in

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
        f"{SV}:95:18: 'ipv4_prefix' に全角数字があります。半角で書いてください: ２４ → 24"
        " [fullwidth-digit]",
    ),
    "全角数字-フロー": (
        SV,
        "per_address: {count: 3,",
        "per_address: {count: ３,",
        f"{SV}:87:26: 'limits.confirmations.per_address.count' に全角数字があります。"
        "半角で書いてください: ３ → 3 [fullwidth-digit]",
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


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "平成31年4月30日",
            "'d' に和暦の日付は書けません。西暦（例: 2026-04-01）で書いてください: 平成31年4月30日 → 2019-04-30",
        ),
        (
            "令和元年2月30日",
            "'d' に和暦の日付は書けません。西暦（例: 2026-04-01）で書いてください（その日付はありません）",
        ),
        (
            "2026／１１／26",
            "'d' に全角数字があります。半角で書いてください: 2026／１１／26 → 2026/11/26",
        ),
        ("月１回", None),
        ("2026-11-26", None),
    ],
)
def test_a_value_slip(value: str, message: str | None) -> None:
    found = in_value("d", value)
    assert (found.message if found else None) == message


def test_full_width_text_in_a_block_is_the_clerks(reg: Reg) -> None:
    # 「　」 opening a paragraph, 全角数字 and 令和 in prose are Japanese writing, not slips
    reg.edit(
        "channels/gomi-recycle.yaml",
        "  年末年始",
        "  \u3000令和８年の年末年始\u3000\n  ",
    )
    reg.edit("channels/gomi-recycle.yaml", "月1〜2回程度", "月１回程度（令和8年4月1日から）")
    assert reg.findings() == []


# (file, text in the sample, the clerk's version, the one finding): library messages
LIBRARIES: dict[str, tuple[str, str, str, str]] = {
    "email-全角スペース": (
        CH,
        "genryo@city",
        "genryo\u3000@city",
        f"{CH}:12:5: 'senders.0' のメールアドレス「genryo〔全角スペース〕@city.kawasaki.example.jp」"
        f"は使えません: 使えない文字 {SPACE} が含まれています [email]",
    ),
    "email-@なし": (
        CH,
        "genryo@city",
        "genryo.city",
        f"{CH}:12:5: 'senders.0' のメールアドレス「genryo.city.kawasaki.example.jp」は使えません:"
        " 「@」がありません [email]",
    ),
    "email-ドメイン": (
        CH,
        "genryo@city.kawasaki.example.jp",
        "genryo@kawasaki",
        f"{CH}:12:5: 'senders.0' のメールアドレス「genryo@kawasaki」は使えません:"
        " 「@」の後ろのドメインに「.」がありません（例: city.kawasaki.jp） [email]",
    ),
    "範囲-上限": (
        SV,
        "per_address: {count: 3, window_hours: 24}",
        "per_address: {count: 3, window_hours: 48}",
        f"{SV}:87:43: 'limits.confirmations.per_address.window_hours' は 1 以上 24 以下の整数で"
        "書いてください（書かれている値: 「48」） [out-of-range]",
    ),
    "範囲-下限": (
        SV,
        "ipv4_prefix: 24",
        "ipv4_prefix: 4",
        f"{SV}:95:18: 'limits.client_networks.ipv4_prefix' は 8 以上 32 以下の整数で"
        "書いてください（書かれている値: 「4」） [out-of-range]",
    ),
    "範囲-正の整数": (
        SV,
        "per_address: {count: 3,",
        "per_address: {count: 0,",
        f"{SV}:87:26: 'limits.confirmations.per_address.count' は 1 以上の整数で"
        "書いてください（書かれている値: 「0」） [out-of-range]",
    ),
    "型-IP": (
        SV,
        'forwarders: [127.0.0.1, "::1"]',
        'forwarders: [127.0.0.1, "localhost"]',
        f"{SV}:99:29: 'limits.client_networks.forwarders.1':"
        " IP アドレス（例: 192.0.2.0/24）で書いてください [ip_v4_network]",
    ),
    "不明な項目-書ける項目": (
        SV,
        "    address: promo-kanri@city.kawasaki.example.jp\n",
        "    address: promo-kanri@city.kawasaki.example.jp\n    mobile: 090-0000-0000\n",
        f"{SV}:16:5: 不明な項目 'roles.general_manager.mobile' です。"
        "書ける項目: 'name', 'title', 'address' [unknown-key]",
    ),
    "自前の検証はそのまま": (
        SV,
        "per_network: {count: 200, window_hours: 1}",
        "per_network: {count: 5000, window_hours: 1}",
        f"{SV}:87:5: 'limits.confirmations': 1 つのネットワークが overall の 1 時間に使える数"
        "（per_network.count 5000 × 1）は overall.count（3000）より小さくしてください"
        "（同じか大きいと、1 つのネットワークからの大量の申込みで全体の枠が尽き、"
        "ほかの利用者に返信できなくなります） [network_cap]",
    ),
    "ruamel-mapping-values": (
        CH,
        "title: ごみ・リサイクル情報",
        "title: ごみ: リサイクル情報",
        f"{CH}:3:10: YAML の書き方に誤りがあります: この位置に「:」は書けません。"
        "値の中に「: 」があるときは値全体を ' ' で囲んでください [yaml-syntax]",
    ),
    "ruamel-cannot-start": (
        CH,
        "category: kankyo",
        "category: @kankyo",
        f"{CH}:8:11: YAML の書き方に誤りがあります: 値の始めに使えない文字（タブ文字・@・` など）"
        "があります。値を ' ' で囲んでください [yaml-syntax]",
    ),
}


@pytest.mark.parametrize("case", list(LIBRARIES))
def test_a_library_message_in_japanese(reg: Reg, case: str) -> None:
    path, old, new, expected = LIBRARIES[case]
    reg.edit(path.removeprefix("config/"), old, new)
    assert [f for f in reg.findings() if f.startswith(f"{path}:")] == [expected]


# What each composer really says: libyaml, and ruamel's pure-Python one used without it.
YAML_TEXTS = [
    "title: a: b\n",
    "a\nb: c\n",
    "title: @a\n",
    "a: `b`\n",
    "a:\n  b: 1\n c: 2\n",
    "a:\n  - b\n  c: d\n",
    "a: b\n- c\n",
    "a: 'b' c\n",
    "a: [b\n",
    "a: {b: 1\n",
    'a: "abc\n',
    "a: 'x\n---\n",
    'a: "\\q"\n',
    "a: *x\n",
    "a: &\n",
    "a: b\n...\nc\n",
]
PURE = YAML(typ="safe", pure=True)


@pytest.mark.parametrize("composer", ["libyaml", "pure"])
@pytest.mark.parametrize("text", [*YAML_TEXTS, "a: &x 1\nb: &x 2\nc: *x\n"])
def test_ruamel_says_it_in_japanese(composer: str, text: str) -> None:
    if composer == "pure" and "&x 2" in text:
        return  # the pure composer warns (ReusedAnchorWarning) and goes on
    with pytest.raises(MarkedYAMLError) as raised:
        (_compose if composer == "libyaml" else PURE.compose)(text)
    english = " ".join(t for t in (raised.value.problem, raised.value.context) if t)
    said = japanese(YAML_PROBLEMS, english, "FALLBACK")
    assert "FALLBACK" not in said, english
    assert not english_in(said)


@pytest.mark.parametrize(
    "address",
    [
        "a\u3000b@example.jp",
        "ab.example.jp",
        "a@",
        "@b.jp",
        "a@b",
        "a@@b.jp",
        "a..b@b.jp",
        "a@-b.jp",
        "a b@c.jp",
        "a@xn--zz.jp",
        "a@" + "b" * 64 + ".jp",
        "a@" + ("b" * 60 + ".") * 5 + "jp",
        "a.@b.jp",
        ".a@b.jp",
        '"a b"@c.jp',
    ],
)
def test_email_validator_says_it_in_japanese(address: str) -> None:
    with pytest.raises(EmailNotValidError) as raised:
        validate_email(address, check_deliverability=False)
    said = japanese(EMAIL_PROBLEMS, str(raised.value), "FALLBACK")
    assert "FALLBACK" not in said, str(raised.value)
    assert not english_in(said)


def test_an_unknown_text_is_quoted_after_japanese() -> None:
    said = japanese(YAML_PROBLEMS, "while frobnicating the stream", "書き方を確かめてください")
    assert said == "書き方を確かめてください（詳細: 「while frobnicating the stream」）"
    assert not english_in(said)


def test_japanese_of_a_validator_passes_but_english_inside_it_does_not() -> None:
    assert japanese(YAML_PROBLEMS, "値が大きすぎます", "FALLBACK") == "値が大きすぎます"
    said = japanese(YAML_PROBLEMS, "found strange thing '：'", "書き方を確かめてください")
    assert said == "書き方を確かめてください（詳細: 「found strange thing '：'」）"


def test_the_rule_finds_english_and_spares_quotes() -> None:
    assert english_in("YAML の書き方に誤りがあります: could not find expected ':'") == [
        "could not find expected"
    ]
    assert english_in("'senders.0': unsafe characters: IDEOGRAPHIC SPACE") == [
        "unsafe characters: IDEOGRAPHIC SPACE"
    ]
    assert english_in("'title': Value error, 題名が長すぎます") == ["Value error"]
    assert english_in("'category' の値 'x y' は使えません（使えるのは 'a', 'b' or 'c'）") == []
    assert english_in("'enabled' は true か false で書いてください") == []
    assert english_in("UTF-8 で保存してください（Shift_JIS で保存されていませんか）") == []
    assert english_in("YAML タグ !!python/object/apply:os.system は使えません") == []
