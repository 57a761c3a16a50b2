"""The `haishin-check` hook of this repository's .pre-commit-hooks.yaml, run by the real
`pre-commit` tool against a registry repository, as a clerk's `git commit` would.

`pre-commit try-repo` clones this repository (with its uncommitted changes) and builds the
hook's environment as for any user: `language: python` is a virtualenv into which pip
installs haishin from that clone with its dependencies. That needs a package index; here
pip's own configuration points at a local wheel house, elsewhere it is PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_hook_is_declared_for_the_registry_yaml() -> None:
    (hook,) = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    assert hook["id"] == "haishin-check"
    assert (hook["language"], hook["entry"], hook["pass_filenames"]) == (
        "python",
        "haishin check",
        False,
    )
    assert hook["files"] == r"^config/.*\.ya?ml$"


@pytest.mark.slow
def test_pre_commit_runs_the_hook_and_fails_on_a_broken_registry(tmp_path: Path) -> None:
    repo = tmp_path / "registry"
    shutil.copytree(SAMPLE, repo / "config")
    (repo / "README.md").write_text("登録情報\n", "utf-8")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),  # the hook's environment, built anew
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.jp",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.jp",
    }
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.jp", "commit", "-qm", "base")

    def try_repo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "try-repo", str(ROOT), "haishin-check", "--verbose", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    clean = try_repo("--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout and "OK: チャネル" in clean.stdout

    # a staged slip (pre-commit checks what is staged, as at commit time)
    channel = repo / "config" / "channels" / "kosodate-news.yaml"
    channel.write_text(channel.read_text("utf-8").replace("category: kosodate", "category: x"))
    git(repo, "add", "-A")
    broken = try_repo("--all-files")
    assert broken.returncode == 1
    assert "Failed" in broken.stdout and "- hook id: haishin-check" in broken.stdout
    assert "config/channels/kosodate-news.yaml:7:11: 分類 'x' は登録されていません" in broken.stdout

    # a commit that touches no registry YAML does not run the hook
    git(repo, "reset", "-q", "--hard")
    (repo / "README.md").write_text("登録情報のリポジトリ\n", "utf-8")
    git(repo, "add", "README.md")
    skipped = try_repo()
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "(no files to check)Skipped" in skipped.stdout
