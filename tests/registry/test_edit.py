"""`haishin approve`, `reject` and `notice`: the Form 2 block, and nothing else, is written."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from haishin.registry.edit import next_notice_number
from haishin.registry.notice import wareki

from .conftest import Reg

HAISHIN = [sys.executable, "-m", "haishin"]


def haishin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HAISHIN, *args], capture_output=True, text=True, timeout=60)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(reg: Reg) -> Reg:
    git(reg.root, "init", "-q")
    git(reg.root, "-c", "user.name=t", "-c", "user.email=t@example.jp", "add", "-A")
    git(reg.root, "-c", "user.name=t", "-c", "user.email=t@example.jp", "commit", "-qm", "base")
    return reg


def test_approve_adds_only_the_form2_block(repo: Reg) -> None:
    done = haishin("approve", "R8-0004", "--by", "general_manager", "--date", "2026-11-26")
    assert done.returncode == 0, done.stderr
    assert git(repo.root, "diff", "--numstat") == "6\t0\tapplications/R8-0004.yaml\n"
    added = [
        line[1:]
        for line in git(repo.root, "diff", "-U0").splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    assert added == [
        "# 第2号様式 電子メール配信サービス利用等承認書",
        "decision:",
        "  result: approved",
        "  date: 2026-11-26",
        "  by: general_manager",
        "  notice_number: 川シ第5015号",
    ]
    assert haishin("check", "config").returncode == 0
    assert repo.findings() == []


def test_reject_records_the_reason(repo: Reg) -> None:
    done = haishin(
        "reject",
        "R8-0004",
        "--by",
        "general_manager",
        "--reason",
        "対象: 民間の広告",
        "--date",
        "2026-11-26",
        "--notice-number",
        "川シ第6001号",
    )
    assert done.returncode == 0, done.stderr
    added = [ln[1:] for ln in git(repo.root, "diff", "-U0").splitlines() if ln.startswith("+  ")]
    assert added == [
        "  result: rejected",
        "  date: 2026-11-26",
        "  by: general_manager",
        "  notice_number: 川シ第6001号",
        "  reason: '対象: 民間の広告'",
    ]
    assert repo.findings() == []  # a rejected start publishes nothing and breaks nothing


def test_keeps_the_files_indentation(repo: Reg) -> None:
    repo.write(
        "applications/R8-0004.yaml",
        repo.path("applications/R8-0004.yaml").read_text().replace("\n  ", "\n    "),
    )
    assert haishin("approve", "R8-0004", "--by", "general_manager").returncode == 0
    assert (
        "\ndecision:\n    result: approved\n" in repo.path("applications/R8-0004.yaml").read_text()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["approve", "R8-0004", "--by", "cloud_admin"],
            "haishin: 承認・不承認は 統括管理者（general_manager）が行います（第6条2）。"
            "'クラウドサービス管理者' にはできません\n",
        ),
        (
            ["approve", "R5-0003", "--by", "general_manager"],
            "haishin: 申請 R5-0003 はすでに 2023-04-05 に承認されています\n",
        ),
        (
            ["approve", "R9-0001", "--by", "general_manager"],
            "haishin: 申請 R9-0001 が見つからないか、読めません（config/applications/R9-0001.yaml）\n",
        ),
        (
            ["approve", "R8-0004", "--by", "general_manager", "--date", "2026-11-01"],
            "haishin: 決定日 2026-11-01 が申請日 2026-11-18 より前です\n",
        ),
    ],
)
def test_refusals_change_nothing(repo: Reg, args: list[str], message: str) -> None:
    done = haishin(*args)
    assert (done.returncode, done.stderr) == (1, message)
    assert git(repo.root, "status", "--porcelain") == ""


def test_an_approval_that_would_break_the_registry_is_not_written(repo: Reg) -> None:
    """Approving a change the channel file does not follow would publish a stale state."""
    repo.write(
        "applications/R8-0010.yaml",
        "number: R8-0010\nkind: change\ndepartment: kenko-zoshin\nchannel: kenshin-info\n"
        "applied: 2026-11-20\napplicant:\n  name: 高津 三郎\n  title: 健康増進担当課長\n"
        "requested:\n  frequency: 月2回程度\n",
    )
    before = repo.path("applications/R8-0010.yaml").read_bytes()
    done = haishin("approve", "R8-0010", "--by", "general_manager", "--date", "2026-11-25")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "haishin: この決定を書くと登録情報が不正になるため、書き込みませんでした:",
        "config/channels/kenshin-info.yaml:15:14: 最新の承認済み申請は R8-0010 です。"
        "application: をそれに合わせてください [stale-application]",
    ]
    assert repo.path("applications/R8-0010.yaml").read_bytes() == before


def test_notice_renders_form2(repo: Reg, tmp_path: Path) -> None:
    out = tmp_path / "notice.html"
    done = haishin("notice", "R6-0007", "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = _text(out.read_text(encoding="utf-8"))
    assert "電子メール配信サービス利用等承認書" in text
    assert "川シ第3008号" in text
    assert "令和6年3月15日" in text  # decision date
    assert "令和6年3月1日付けで申請のあった川崎市電子メール配信サービスの変更について" in text
    assert "こども未来局子育て推進部子育て推進課" in text
    assert "kosodate-news@mail.city.kawasaki.example.jp" in text


def test_notice_of_a_rejection_gives_the_reason(repo: Reg) -> None:
    done = haishin("notice", "R7-0009")
    text = _text(done.stdout)
    assert "電子メール配信サービス利用等不承認通知書" in text
    assert "民間事業者の広告を含む内容" in text


def test_notice_of_an_undecided_application(repo: Reg) -> None:
    done = haishin("notice", "R8-0004")
    assert (done.returncode, done.stderr) == (
        1,
        "haishin: 申請 R8-0004 はまだ決定されていません（haishin approve / reject）\n",
    )


def test_next_notice_number() -> None:
    assert next_notice_number(["川シ第12号", "川シ第9号", "別第99号"]) == "川シ第13号"
    assert next_notice_number([]) == "第1号"


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (dt.date(2026, 11, 25), "令和8年11月25日"),
        (dt.date(2019, 5, 1), "令和元年5月1日"),
        (dt.date(2019, 4, 30), "平成31年4月30日"),
    ],
)
def test_wareki(day: dt.date, text: str) -> None:
    assert wareki(day) == text


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "".join("".join(parser.parts).split())
