"""第3条(2): each basic requirement refuses (or warns about) exactly what it should."""

from __future__ import annotations

from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from haishin.posting.policy import RULES, PostVerdict, evaluate
from haishin.posting.policy.characters import _machine_dependent
from haishin.posting.policy.replacements import replacement
from haishin.posting.view import view_of
from haishin.registry import load_valid
from haishin.registry.model import Policy

CONFIG = Path(__file__).resolve().parents[2] / "config"
POLICY = load_valid(CONFIG).service.value.policy  # type: ignore[union-attr]


def _msg(
    subject: str = "ごみ収集日の変更について", body: str = "年末年始の収集日をお知らせします。\n"
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "genryo@city.kawasaki.example.jp"
    msg["To"] = "gomi-recycle@mail.city.kawasaki.example.jp"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def _run(msg: EmailMessage, pol: Policy = POLICY) -> dict[str, tuple[PostVerdict, str]]:
    raw = msg.as_bytes(policy=email_policy.SMTP)
    parsed = BytesParser(policy=email_policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    result = evaluate(view_of(parsed, len(raw)), pol)
    assert len(result.findings) == len(RULES)  # every rule's outcome is recorded
    return {
        f.rule: (f.verdict, f.message) for f in result.findings if f.verdict is not PostVerdict.PASS
    }


def test_a_plain_post_passes() -> None:
    assert _run(_msg()) == {}


def test_size() -> None:
    found = _run(_msg(body="あ" * 120_000))
    assert found == {
        "size": (
            PostVerdict.REFUSE,
            "メールの大きさが上限の 300 KB を超えています（このメールは 482 KB）。"
            "画像や添付ファイルを外し、本文を短くしてください。",
        )
    }


def test_html_without_permission() -> None:
    msg = _msg()
    msg.add_alternative("<p>年末年始の収集日</p>", subtype="html")
    assert _run(msg) == {
        "content-types": (
            PostVerdict.REFUSE,
            "HTML 形式のメールは配信できません。メールソフトの設定で「テキスト形式」にして送ってください。",
        )
    }


def test_html_allowed_needs_a_text_part() -> None:
    msg = EmailMessage()
    msg["Subject"] = "お知らせ"
    msg.set_content("<p>本文</p>", subtype="html")
    found = _run(msg, POLICY.model_copy(update={"allow_html": True}))
    assert found["content-types"][0] is PostVerdict.REFUSE
    assert found["content-types"][1].startswith("本文（テキスト）がありません")
    with_text = _msg()
    with_text.add_alternative("<p>本文</p>", subtype="html")
    assert _run(with_text, POLICY.model_copy(update={"allow_html": True})) == {}


def test_attachments() -> None:
    msg = _msg()
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="収集日.pdf")
    assert _run(msg) == {
        "attachments": (
            PostVerdict.REFUSE,
            "添付ファイルは配信できません（収集日.pdf）。添付を外し、"
            "資料は市のホームページに掲載してその URL を本文に書いてください。",
        )
    }


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("", "件名がありません。内容がわかる件名を付けてください。"),
        ("あ" * 51, "件名が長すぎます（51 文字、上限 50 文字）。件名を短くしてください。"),
    ],
)
def test_subject(subject: str, message: str) -> None:
    assert _run(_msg(subject=subject)) == {"subject": (PostVerdict.REFUSE, message)}


def test_machine_dependent_characters_warn_by_default() -> None:
    found = _run(_msg(body="①受付は㈱川崎サービスが行います。～〜は問題ありません。\n"))
    assert found == {
        "machine-dependent-chars": (
            PostVerdict.WARN,
            "機種依存文字が使われています（①→1、㈱→(株)）。"
            "携帯電話などで正しく表示されないことがあるため、右側の書き方に直してください。",
        )
    }


def test_machine_dependent_characters_can_refuse() -> None:
    pol = POLICY.model_copy(update={"machine_dependent_chars": "refuse"})
    assert (
        _run(_msg(subject="第Ⅱ期の募集"), pol)["machine-dependent-chars"][0] is PostVerdict.REFUSE
    )


def test_halfwidth_kana_refused_in_the_sample_policy() -> None:
    found = _run(_msg(body="ｺﾞﾐの収集日\n"))
    assert found == {
        "halfwidth-kana": (
            PostVerdict.REFUSE,
            "半角カナが使われています（ｺﾞﾐ→ゴミ）。全角カナに直してください。",
        )
    }


def test_explain_lists_refusals_then_warnings() -> None:
    msg = _msg(subject="", body="①ｺﾞﾐ\n")
    raw = msg.as_bytes()
    parsed = BytesParser(policy=email_policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    text = evaluate(view_of(parsed, len(raw)), POLICY).explain()
    assert text.splitlines()[0].startswith("1. 件名がありません")
    assert text.splitlines()[1].startswith("2. 半角カナ")
    assert text.splitlines()[2].startswith("3. （注意）機種依存文字")


def test_every_machine_dependent_character_in_the_warning_has_its_replacement() -> None:
    # issue 14 item 4: 髙 was listed without one; the table covers every character the
    # check finds, each replacement in JIS X 0208 (it survives ISO-2022-JP to any phone)
    table = _machine_dependent()
    assert len(table) > 400
    for ch in table:
        instead = replacement(ch)
        assert instead and instead != ch, ch
        instead.encode("iso2022_jp")
    found = _run(_msg(body="髙橋さん、山﨑さん、濵田さん、∑と〝引用〟、仡。\n"))
    assert found["machine-dependent-chars"][1].startswith(
        "機種依存文字が使われています（髙→高、﨑→崎、濵→浜、∑→Σ、〝→“、〟→”、仡→かな書き）。"
    )
