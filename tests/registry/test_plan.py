"""`haishin plan`: the effect of registry commits, as a reviewer reads it (第6条・第7条)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import SAMPLE

STOP = """number: R8-0010
kind: stop
department: kenko-zoshin
channel: kaigo-yobou
applied: 2026-11-20
applicant:
  name: 高津 三郎
  title: 健康増進担当課長
requested:
  purpose: 事業の終了
decision:
  result: approved
  date: 2026-11-24
  by: general_manager
  notice_number: 川シ第5016号
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.jp", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def haishin(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haishin", *args], cwd=repo, capture_output=True, text=True
    )


def test_plan_of_an_approval_and_a_stop(tmp_path: Path) -> None:
    repo = tmp_path / "registry"
    shutil.copytree(SAMPLE, repo / "config")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    # commit 1: the 統括管理者 approves the pending start of noriai-bus
    done = haishin(repo, "approve", "R8-0004", "--by", "general_manager", "--date", "2026-11-25")
    assert done.returncode == 0, done.stderr
    git(repo, "commit", "-qam", "承認 R8-0004")
    # commit 2: kaigo-yobou stops, by an approved Form 1
    (repo / "config" / "applications" / "R8-0010.yaml").write_text(STOP, "utf-8")
    channel = repo / "config" / "channels" / "kaigo-yobou.yaml"
    channel.write_text(channel.read_text("utf-8").replace("R6-0011", "R8-0010"), "utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "停止 kaigo-yobou")

    first = haishin(repo, "plan", "--from", "HEAD~2", "--to", "HEAD~1", "--on", "2026-11-26")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "~ noriai-bus: 承認待ち → 配信中（申請 R8-0004（利用開始）が 2026-11-25 に承認済み）",
        "~ 申請 R8-0004: 承認（2026-11-25、川シ第5015号）",
    ]
    second = haishin(repo, "plan", "--from", "HEAD~1", "--to", "HEAD", "--on", "2026-11-26")
    assert second.stdout.splitlines() == [
        "~ kaigo-yobou: 配信中 → 利用停止（申請 R8-0010（利用停止）が 2026-11-24 に承認済み）",
        "+ 申請 R8-0010: kaigo-yobou の利用停止（2026-11-20 申請）",
        "~ 申請 R8-0010: 承認（2026-11-24、川シ第5016号）",
    ]
    # uncommitted edits against HEAD: what a clerk sees before committing
    channel.write_text(channel.read_text("utf-8").replace("月2回程度", "週1回程度"), "utf-8")
    third = haishin(repo, "plan", "--on", "2026-11-26")
    assert third.stdout.splitlines() == ["~ kaigo-yobou: 配信頻度 「月2回程度」 → 「週1回程度」"]


def test_plan_refuses_an_invalid_revision(tmp_path: Path) -> None:
    repo = tmp_path / "registry"
    shutil.copytree(SAMPLE, repo / "config")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (repo / "config" / "service.yaml").write_text("name: [\n", "utf-8")
    done = haishin(repo, "plan")
    assert done.returncode == 1
    assert "版 . の登録情報に誤りがあります" in done.stderr
    assert "config/service.yaml:2:1: YAML の書き方に誤りがあります" in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_names_a_committed_slip_by_its_path_in_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "registry"
    shutil.copytree(SAMPLE, repo / "config")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (repo / "config" / "service.yaml").write_text("name: [\n", "utf-8")
    git(repo, "commit", "-qam", "壊す")
    done = haishin(repo, "plan", "--from", "HEAD~1", "--to", "HEAD")
    assert done.returncode == 1
    assert "\nconfig/service.yaml:2:1: YAML の書き方に誤りがあります" in done.stderr
    assert "haishin-plan-" not in done.stderr
