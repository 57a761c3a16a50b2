"""`haishin sync`: follow the registry's git repository without ever serving an invalid one.

When a pull request is merged, the new revision is checked in a scratch worktree; only if
it passes `haishin check` does the checkout move (fast-forward only), after which the daemon
reloads (SIGHUP) and the site is rebuilt. A refused revision leaves everything as it was
and is mailed once to the 統括管理者 with the validator's findings (design.md: a daemon or
site build never runs on an invalid registry; a bad reload keeps the last good one).
"""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlalchemy as sa

from ..errors import HaishinError
from ..mailtext.compose import compose
from ..registry import check, load_valid
from ..registry.model import Role, Service
from ..store import queue
from ..store.states import MessageKind
from .repo import registry_in


class SyncError(HaishinError):
    exit_code = 2


class SyncResult(enum.StrEnum):
    UP_TO_DATE = "up-to-date"
    MOVED = "moved"
    REFUSED = "refused"


@dataclass(frozen=True)
class Synced:
    result: SyncResult
    old: str
    new: str
    problems: list[str] = field(default_factory=list)
    mailed: bool = False


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        raise SyncError(f"git {' '.join(args)}: 10 分たっても終わりません") from None
    except FileNotFoundError:
        raise SyncError("git がありません") from None
    if done.returncode != 0:
        raise SyncError(f"git {' '.join(args)}: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def pending(repo: Path, branch: str = "main") -> bool:
    """Has origin moved? (systemd's ExecCondition=: skip the unit when nothing is new)"""
    _git(repo, "fetch", "--quiet", "origin", branch)
    return _git(repo, "rev-parse", "FETCH_HEAD") != _git(repo, "rev-parse", "HEAD")


def sync(
    repo: Path,
    config: Path,
    *,
    branch: str = "main",
    engine: sa.Engine | None = None,
    reload_pid: int | None = None,
) -> Synced:
    """Fetch `branch`, validate it, fast-forward. `config` is the registry folder inside
    `repo` (relative to it). With `engine`, a refusal is mailed to the 統括管理者 through
    the queue."""
    sub = registry_in(repo, config)
    _git(repo, "fetch", "--quiet", "origin", branch)
    new = _git(repo, "rev-parse", "FETCH_HEAD")
    old = _git(repo, "rev-parse", "HEAD")
    if new == old:
        return Synced(SyncResult.UP_TO_DATE, old, new)
    try:
        _git(repo, "merge-base", "--is-ancestor", old, new)
    except SyncError:
        raise SyncError(
            f"origin/{branch} ({new[:12]}) は現在の {old[:12]} から続いていません。移動しません"
        ) from None

    with tempfile.TemporaryDirectory(prefix="haishin-sync-") as tmp:
        tree = Path(tmp) / "tree"
        _git(repo, "worktree", "add", "--quiet", "--detach", str(tree), new)
        try:
            _reg, problems = check(tree / sub)
            # as the file stands in the repository, never the temporary worktree
            errors = [
                str(replace(p, pos=replace(p.pos, path=_in_repo(p.pos.path, tree))))
                for p in problems
                if p.is_error
            ]
        finally:
            _git(repo, "worktree", "remove", "--force", str(tree))

    if errors:
        mailed = False
        marker = repo / ".git" / "haishin-refused"
        already = marker.read_text().strip() if marker.exists() else ""
        if engine is not None and already != new:
            _mail_refusal(repo / sub, engine, new, errors)
            marker.write_text(new + "\n")
            mailed = True
        return Synced(SyncResult.REFUSED, old, new, errors, mailed)

    _git(repo, "merge", "--quiet", "--ff-only", new)
    if reload_pid is not None:
        os.kill(reload_pid, signal.SIGHUP)
    return Synced(SyncResult.MOVED, old, new)


def _in_repo(shown: str, tree: Path) -> str:
    return os.path.relpath(Path(shown).absolute(), tree.absolute())


def _mail_refusal(config: Path, engine: sa.Engine, revision: str, errors: list[str]) -> None:
    # the current (valid) registry says who the 統括管理者 is and how to reach them
    service = load_valid(config).service
    assert service is not None
    notify_refusal(service.value, engine, f"版 {revision}", errors)


def notify_refusal(service: Service, engine: sa.Engine, which: str, errors: list[str]) -> None:
    """Queue the mail that tells the 統括管理者 a registry update was refused, and why."""
    to = service.roles[Role.GENERAL_MANAGER].address
    shown = "\n".join(errors[:50]) + ("\n…" if len(errors) > 50 else "")
    body = (
        "登録情報（config/）の新しい版を検査したところ誤りがあったため、反映しませんでした。\n"
        "配信サービスとホームページは、これまでの正しい版のまま動いています。\n\n"
        f"{which}\n誤り {len(errors)} 件:\n{shown}\n\n"
        "プルリクエストで直してから、もう一度マージしてください（haishin check で確認できます）。\n"
    )
    msg = compose(
        from_name=service.name,
        from_addr=service.inquiry_address,
        to=to,
        subject=f"【要対応】登録情報の更新を反映できませんでした（{which}）",
        body=body,
        domain=service.mail_domain,
        auto="auto-generated",
    )
    with engine.begin() as conn:
        queue.enqueue(conn, msg, service.inquiry_address, [to], kind=MessageKind.NOTICE)
