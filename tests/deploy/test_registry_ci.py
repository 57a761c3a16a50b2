"""deploy/registry-ci/: the registry repository's pull-request checks, run as a CI would.

The GitHub workflow's `run:` lines and the GitLab file's `script:` lines are read from the
shipped files and run with bash in a real clone of a registry repository whose change
approves an application and breaks a channel: the annotations must point at the break,
and the Markdown plan must say why it cannot be shown; once the break is mended, the plan
shows the approval. Only the CI's own variables are put in (the base branch, the summary
file, the API address); installing haishin (`pip install` from the network) is read, not
run: the haishin under test is on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ruamel.yaml import YAML

from haishin.clock import today

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "deploy" / "registry-ci"
SAMPLE = ROOT / "config"
BIN = Path(sys.executable).parent  # where `haishin` is installed beside this Python
BROKEN = "config/channels/kosodate-news.yaml"


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text("utf-8"))  # YAML 1.2: `on:` stays a key


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.jp", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A step as a runner runs it: bash, stopping at the first failing command."""
    environ = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=environ, capture_output=True, text=True
    )


@pytest.fixture
def change(tmp_path: Path) -> Path:
    """A clerk's clone of the registry repository on a branch that approves R8-0004 (the
    pending start of noriai-bus) and misspells kosodate-news's category; origin/main is the
    base, as after a checkout with full history."""
    upstream = tmp_path / "upstream"
    shutil.copytree(SAMPLE, upstream / "config")
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-qm", "base")
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(upstream), str(work)], check=True)
    git(work, "switch", "-qc", "change")
    approved = bash("haishin approve R8-0004 --by general_manager", work)
    assert approved.returncode == 0, approved.stderr
    broken = work / BROKEN
    broken.write_text(
        broken.read_text("utf-8").replace("category: kosodate", "category: kosodat", 1)
    )
    git(work, "commit", "-qam", "承認 R8-0004、分類の書き損じ")
    return work


def break_position(work: Path) -> tuple[int, int]:
    lines = (work / BROKEN).read_text("utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("category: "))
    return line, len("category: ") + 1


def mend(work: Path) -> None:
    broken = work / BROKEN
    broken.write_text(
        broken.read_text("utf-8").replace("category: kosodat", "category: kosodate", 1)
    )
    git(work, "commit", "-qam", "分類を直す")


def approval_lines() -> list[str]:
    on = today().isoformat()
    return [
        f"- **変更** noriai-bus: 承認待ち → 配信中（申請 R8-0004（利用開始）が {on} に承認済み）",
        f"- **変更** 申請 R8-0004: 承認（{on}、川シ第5015号）",
    ]


def github_steps() -> dict[str, dict[str, Any]]:
    workflow = load(CI / "github-workflow.yml")
    assert "pull_request" in workflow["on"]
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    install = next(s for s in steps if "pip install" in s.get("run", ""))
    assert install["run"] == 'python -m pip install "$HAISHIN_PIP"'
    assert "git+https://" in workflow["env"]["HAISHIN_PIP"]
    return {
        "check": next(s for s in steps if "haishin check" in s.get("run", "")),
        "plan": next(s for s in steps if "haishin plan" in s.get("run", "")),
        "comment": next(s for s in steps if "gh pr comment" in s.get("run", "")),
    }


def run_github_step(step: dict[str, Any], work: Path, summary: Path) -> Any:
    env = {
        k: str(v).replace("${{ github.base_ref }}", "main") for k, v in step.get("env", {}).items()
    }
    assert not any("${{" in v for v in env.values()), env  # a variable this test lacks
    return bash(step["run"], work, GITHUB_STEP_SUMMARY=str(summary), **env)


def test_github_workflow_annotates_the_break_and_summarises_the_plan(
    change: Path, tmp_path: Path
) -> None:
    steps = github_steps()
    assert "!cancelled()" in steps["plan"]["if"]  # the plan runs when check has failed
    line, col = break_position(change)

    check = run_github_step(steps["check"], change, tmp_path / "check-summary.md")
    assert check.returncode == 1
    (annotation,) = check.stdout.splitlines()
    assert annotation.startswith(
        f"::error file={BROKEN},line={line},col={col},title=unknown-reference::"
        "分類 'kosodat' は登録されていません"
    )

    summary = tmp_path / "plan-summary.md"
    plan = run_github_step(steps["plan"], change, summary)
    assert plan.returncode == 1
    shown = summary.read_text("utf-8")
    assert shown == (change / "plan.md").read_text("utf-8")  # what the comment step posts
    assert shown.splitlines()[:3] == [
        "## 登録情報の変更（haishin plan: `origin/main` → `HEAD`）",
        "",
        "**変更の内容を示せません。** 版 HEAD の登録情報に誤りがあります:",
    ]
    assert f"{BROKEN}:{line}:{col}: 分類 'kosodat' は登録されていません" in shown
    assert "/tmp" not in shown and "haishin-plan-" not in shown
    assert "--body-file plan.md" in steps["comment"]["run"]

    mend(change)
    assert run_github_step(steps["check"], change, tmp_path / "s").stdout == ""
    summary.unlink()
    plan = run_github_step(steps["plan"], change, summary)
    assert plan.returncode == 0, plan.stderr
    assert summary.read_text("utf-8").splitlines() == [
        "## 登録情報の変更（haishin plan: `origin/main` → `HEAD`）",
        "",
        *approval_lines(),
    ]


class Notes(BaseHTTPRequestHandler):
    """GitLab's notes API, as far as the plan job uses it: the requests are kept."""

    received: ClassVar[list[tuple[str, str | None, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append((self.path, self.headers["PRIVATE-TOKEN"], body))
        self.send_response(201)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gitlab_api() -> Iterator[tuple[str, list[tuple[str, str | None, str]]]]:
    server = HTTPServer(("127.0.0.1", 0), Notes)
    Notes.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v4", Notes.received
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def run_gitlab_job(job: dict[str, Any], work: Path, **env: str) -> tuple[Any, Any]:
    """The job's script, then its after_script (which runs whatever the script gave)."""
    script = bash("\n".join(job["script"]), work, **env)
    after = bash("\n".join(job.get("after_script", [])), work, **env)
    return script, after


def test_gitlab_jobs_report_the_break_and_note_the_plan(
    change: Path, gitlab_api: tuple[str, list[tuple[str, str | None, str]]]
) -> None:
    ci = load(CI / "gitlab-ci.yml")
    rule = ci["workflow"]["rules"][0]["if"]
    assert rule == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert ci["default"]["image"] == "python:3.11"
    assert ci["variables"]["GIT_DEPTH"] == "0"  # the base revision is in the clone
    assert "git+https://" in ci["variables"]["HAISHIN_PIP"]
    assert ci["default"]["before_script"] == ['python -m pip install "$HAISHIN_PIP"']
    assert ci["haishin-plan"]["artifacts"]["paths"] == ["plan.md"]
    assert ci["haishin-plan"]["artifacts"]["when"] == "always"
    api, received = gitlab_api
    env = {
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "7",
        "HAISHIN_NOTE_TOKEN": "glpat-test",
    }
    # the runner's clone has no origin/main until the job fetches it
    git(change, "update-ref", "-d", "refs/remotes/origin/main")
    line, col = break_position(change)

    check, _ = run_gitlab_job(ci["haishin-check"], change, **env)
    assert check.returncode == 1
    assert f"{BROKEN}:{line}:{col}: 分類 'kosodat' は登録されていません" in check.stdout

    plan, note = run_gitlab_job(ci["haishin-plan"], change, **env)
    assert plan.returncode == 1 and note.returncode == 0, note.stderr
    ((path, token, body),) = received
    assert (path, token) == ("/api/v4/projects/42/merge_requests/7/notes", "glpat-test")
    posted = urllib.parse.parse_qs(body)["body"][0]
    assert posted == (change / "plan.md").read_text("utf-8")
    assert "**変更の内容を示せません。**" in posted
    assert f"{BROKEN}:{line}:{col}:" in posted

    mend(change)
    received.clear()
    check, _ = run_gitlab_job(ci["haishin-check"], change, **env)
    assert check.returncode == 0 and check.stdout.startswith("OK: チャネル"), check.stdout
    plan, note = run_gitlab_job(ci["haishin-plan"], change, **env)
    assert plan.returncode == 0, plan.stderr
    assert urllib.parse.parse_qs(received[0][2])["body"][0].splitlines()[2:] == approval_lines()
    # without a token the job still leaves the plan as its artifact, and posts nothing
    received.clear()
    _, note = run_gitlab_job(ci["haishin-plan"], change, **{**env, "HAISHIN_NOTE_TOKEN": ""})
    assert note.returncode == 0 and received == []
