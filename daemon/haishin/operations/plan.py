"""`haishin plan`: what a change of the registry would change in the service.

Pull-request review sees YAML; what matters is its effect: which channels start, stop or
pause, which approvals were recorded, what the public site will say differently. Two
revisions of the registry are loaded (from git, or the files on disk) and compared on
the derived state that the site and the daemon use (第6条・第7条).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from ..errors import HaishinError
from ..registry import Registry, channel_states, check
from ..registry.model import KIND_NAMES
from ..registry.state import STATE_NAMES
from .repo import registry_in

WORKING_TREE = "."

_FIELDS = {
    "title": "名称",
    "summary": "概要",
    "description": "説明",
    "category": "分類",
    "frequency": "配信頻度",
    "department": "担当課",
    "approval": "承認の方法",
    "archive": "バックナンバー",
    "senders": "送信者",
}


class PlanError(HaishinError):
    exit_code = 1


def _registry_at(repo: Path, sub: Path, rev: str, tmp: Path) -> Registry:
    extracted: Path | None = None
    if rev == WORKING_TREE:
        root = repo / sub
    else:
        root = extracted = tmp / rev.replace("/", "_").replace("~", "-").replace("^", "-")
        root.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", rev, "--", str(sub)],
            capture_output=True,
            timeout=120,
        )
        if archive.returncode != 0:
            raise PlanError(
                f"git の版 {rev} を読めません: {archive.stderr.decode(errors='replace').strip()}"
            )
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
        root = root / sub
    reg, problems = check(root)
    if extracted is not None:
        # as the file stands in the repository, never the temporary copy read here
        problems = [
            replace(p, pos=replace(p.pos, path=os.path.relpath(p.pos.path, extracted)))
            for p in problems
        ]
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        raise PlanError(f"版 {rev} の登録情報に誤りがあります:\n" + "\n".join(errors))
    return reg


def _show(value: object) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    text = str(value).strip().replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"


def changes(old: Registry, new: Registry, on: dt.date) -> list[str]:
    lines: list[str] = []
    before, after = channel_states(old, on), channel_states(new, on)
    for slug in sorted(set(before) | set(after)):
        b, a = before.get(slug), after.get(slug)
        if b is None and a is not None:
            lines.append(f"+ {slug}: 新しいチャネル（{STATE_NAMES[a.state]}: {a.reason}）")
            continue
        if a is None and b is not None:
            lines.append(
                f"- {slug}: チャネルのファイルが削除されました（{STATE_NAMES[b.state]}だった）"
            )
            continue
        assert a is not None and b is not None
        if a.state != b.state:
            lines.append(f"~ {slug}: {STATE_NAMES[b.state]} → {STATE_NAMES[a.state]}（{a.reason}）")
        oc, nc = old.channels[slug].value, new.channels[slug].value
        for name, label in _FIELDS.items():
            ov, nv = getattr(oc, name), getattr(nc, name)
            if ov != nv:
                lines.append(f"~ {slug}: {label} 「{_show(ov)}」 → 「{_show(nv)}」")
    for number in sorted(set(new.applications) - set(old.applications)):
        app = new.applications[number].value
        lines.append(
            f"+ 申請 {number}: {app.channel} の{KIND_NAMES[app.kind]}（{app.applied} 申請）"
        )
    for number in sorted(new.applications):
        app = new.applications[number].value
        was = old.applications.get(number)
        if app.decision and (was is None or was.value.decision is None):
            verb = "承認" if app.approved else "不承認"
            lines.append(
                f"~ 申請 {number}: {verb}（{app.decision.date}、{app.decision.notice_number}）"
            )
    for outage_id in sorted(set(new.outages) - set(old.outages)):
        o = new.outages[outage_id].value
        kind = "計画停止" if o.kind == "planned" else "緊急停止"
        lines.append(f"+ 停止記録 {outage_id}: {kind} {o.start:%Y-%m-%d %H:%M} から")
    return lines


def plan(repo: Path, config: Path, old_rev: str, new_rev: str, on: dt.date) -> list[str]:
    sub = registry_in(repo, config)
    with tempfile.TemporaryDirectory(prefix="haishin-plan-") as tmp:
        old = _registry_at(repo, sub, old_rev, Path(tmp) / "old")
        new = _registry_at(repo, sub, new_rev, Path(tmp) / "new")
        return changes(old, new, on)
