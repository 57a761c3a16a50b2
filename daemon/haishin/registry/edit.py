"""Administrators' edits to the registry that keep every other byte of the file.

`haishin approve` and `haishin reject` write the Form 2 block (承認書, 第6条2) into an
application file. The file is a clerk's document with comments and layout of its own,
so the block is appended as text rendered by ruamel.yaml in the file's own indentation:
`git diff` shows only the added block. The result is checked in memory before it replaces
the file, and the write is atomic, so a refused edit never touches the registry.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML

from ..clock import today
from ..errors import RegistryEditError
from .load import APPLICATIONS_DIR, load
from .model import ROLE_NAMES, Role
from .rules_common import APPROVER
from .validate import check

FORM2_HEADER = "# 第2号様式 電子メール配信サービス利用等承認書"

_NOTICE_RE = re.compile(r"^(?P<prefix>.*?)(?P<n>\d+)(?P<suffix>号)$")


def next_notice_number(existing: list[str]) -> str:
    """The next number in the office's series, e.g. 川シ第5014号 → 川シ第5015号."""
    parsed = [m for m in map(_NOTICE_RE.match, existing) if m]
    if not parsed:
        return "第1号"
    prefix, _ = Counter(m["prefix"] for m in parsed).most_common(1)[0]
    top = max(int(m["n"]) for m in parsed if m["prefix"] == prefix)
    return f"{prefix}{top + 1}号"


def _indent_of(text: str) -> int:
    """The indentation the clerk used for nested mappings (2 when the file has none)."""
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if line and line[0] == " " and stripped and not stripped.startswith(("#", "-")):
            return len(line) - len(stripped)
    return 2


def decide(
    config: Path,
    number: str,
    result: Literal["approved", "rejected"],
    by: str,
    date: dt.date | None = None,
    notice_number: str | None = None,
    reason: str = "",
) -> Path:
    """Write the decision on application `number`; returns the file written."""
    if by != APPROVER.value:
        holder = ROLE_NAMES.get(Role(by), by) if by in Role._value2member_map_ else by
        raise RegistryEditError(
            f"承認・不承認は {ROLE_NAMES[APPROVER]}（{APPROVER.value}）が行います（第6条2）。"
            f"'{holder}' にはできません"
        )
    if result == "rejected" and not reason.strip():
        raise RegistryEditError("不承認には理由（--reason）が必要です")

    reg, before = load(config)
    path = config / APPLICATIONS_DIR / f"{number}.yaml"
    located = reg.applications.get(number)
    if located is None:
        bad = [str(p) for p in before if p.pos.path.endswith(f"{number}.yaml")]
        detail = ("\n" + "\n".join(bad)) if bad else ""
        raise RegistryEditError(f"申請 {number} が見つからないか、読めません（{path}）{detail}")
    app = located.value
    if app.decision is not None:
        raise RegistryEditError(
            f"申請 {number} はすでに {app.decision.date} に"
            f"{'承認' if app.decision.result == 'approved' else '不承認と'}されています"
        )
    date = date or today()
    if date < app.applied:
        raise RegistryEditError(f"決定日 {date} が申請日 {app.applied} より前です")
    if notice_number is None:
        existing = [
            a.value.decision.notice_number for a in reg.applications.values() if a.value.decision
        ]
        notice_number = next_notice_number(existing)

    block: dict[str, object] = {
        "result": result,
        "date": date,
        "by": by,
        "notice_number": notice_number,
    }
    if reason:
        block["reason"] = reason
    append_block(config, path, "decision", block, FORM2_HEADER, "この決定")
    return path


def append_block(
    config: Path, path: Path, key: str, block: dict[str, object], comment: str, what: str
) -> None:
    """Add `key:` with `block` at the end of a registry file, in the file's indentation,
    preceded by `comment` unless the file has it already. Refused, with the file untouched,
    if the registry would gain an error by it."""
    original = path.read_bytes()
    text = original.decode("utf-8")
    yaml = YAML()
    yaml.indent(mapping=_indent_of(text))
    yaml.width = 4096  # never fold a clerk's sentence over lines
    out = io.StringIO()
    yaml.dump({key: block}, out)
    separator = "" if text.endswith("\n") else "\n"
    header = "" if comment in text else comment + "\n"
    new_text = text + separator + header + out.getvalue()

    data = new_text.encode("utf-8")
    _, errors_before = check(config)
    # checked as it would read, before the file is touched: nobody (a sync, the daemon's
    # reload) ever sees an invalid registry on disk
    _, errors_after = check(config, {path.absolute(): data})
    introduced = {str(p) for p in errors_after if p.is_error} - {
        str(p) for p in errors_before if p.is_error
    }
    if not introduced:
        _atomic_write(path, data)
    else:
        raise RegistryEditError(
            f"{what}を書くと登録情報が不正になるため、書き込みませんでした:\n"
            + "\n".join(sorted(introduced))
        )


def _atomic_write(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
