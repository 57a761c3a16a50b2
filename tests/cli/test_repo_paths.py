"""Issue 15 item 4.5: `sync` and `plan` take `--config` inside `--repo`, from any working
directory, and show repository paths — never a temporary one, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "config"
CHANNEL = "config/channels/gomi-recycle.yaml"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=clerk", "-c", "user.email=c@example.jp", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def haishin(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haishin", *args], cwd=cwd, capture_output=True, text=True
    )


def _commit(work: Path, text: str, message: str) -> None:
    (work / CHANNEL).write_text(text, encoding="utf-8")
    git(work, "commit", "-qam", message)


def _clean(out: subprocess.CompletedProcess[str]) -> None:
    both = out.stdout + out.stderr
    assert "Traceback" not in both, both
    # haishin's own scratch worktrees and extracts (tempfile prefixes) never show
    assert "haishin-sync-" not in both and "haishin-plan-" not in both, both


def test_sync_takes_config_inside_the_repository(tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(SAMPLE, work / "config")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "registry")
    subprocess.run(["git", "clone", "-q", str(work), str(tmp_path / "checkout")], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    original = (work / CHANNEL).read_text("utf-8")

    _commit(work, original.replace("category: kankyo", "category: x"), "誤り")
    refused = haishin(tmp_path, "sync", "--repo", "checkout", "--config", "config")
    _clean(refused)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.splitlines()[0] == (
        f"{CHANNEL}:8:11: 分類 'x' は登録されていません [unknown-reference]"
    )

    _commit(work, original.replace("月1〜2回程度", "月1回程度"), "直した")
    moved = haishin(elsewhere, "sync", "--repo", str(tmp_path / "checkout"), "--config", "config")
    _clean(moved)
    assert moved.returncode == 0, moved.stderr
    assert "に更新しました" in moved.stdout

    outside = haishin(tmp_path, "sync", "--repo", "checkout", "--config", str(elsewhere))
    _clean(outside)
    assert outside.returncode == 2
    assert "がリポジトリ checkout の中にありません" in outside.stderr


def test_plan_takes_config_inside_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo / "config")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "registry")
    original = (repo / CHANNEL).read_text("utf-8")
    _commit(repo, original.replace("category: kankyo", "category: x"), "誤り")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    bad = haishin(
        elsewhere,
        "plan",
        "--repo",
        "../repo",
        "--config",
        "config",
        "--from",
        "HEAD~1",
        "--to",
        "HEAD",
    )
    _clean(bad)
    assert bad.returncode == 1
    assert f"{CHANNEL}:8:11: 分類 'x' は登録されていません" in bad.stderr

    _commit(repo, original.replace("月1〜2回程度", "月1回程度"), "頻度")
    good = haishin(
        elsewhere,
        "plan",
        "--repo",
        "../repo",
        "--config",
        "config",
        "--from",
        "HEAD~2",
        "--to",
        "HEAD",
    )
    _clean(good)
    assert good.returncode == 0, good.stderr
    assert "月1回程度" in good.stdout
