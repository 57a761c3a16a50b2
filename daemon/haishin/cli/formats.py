"""How `check` and `plan` write for a reader other than a terminal: GitHub Actions'
workflow commands (the annotations of a pull request), JSON for other tools, and Markdown
for a pull-request comment or a job summary. One place, so that each format is written
once and tested apart from the commands."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence

from ..registry import Problem, Severity

CHECK_FORMATS = ("text", "github", "json")
PLAN_FORMATS = ("text", "markdown")


def relative(path: str) -> str:
    """PATH relative to the current directory: a workflow runs in the repository's root,
    and GitHub places an annotation by the path from there."""
    return os.path.relpath(os.path.abspath(path)).replace(os.sep, "/")


def _escape_data(text: str) -> str:
    # GitHub's toolkit (`escapeData`, @actions/core command.ts): a message ends at a line
    # break, so %, CR and LF are percent-encoded, % first
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # `escapeProperty`: a property also ends at `,` and its value at `:`
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(problems: Iterable[Problem]) -> list[str]:
    """One workflow command per finding: `::error file=…,line=…,col=…,title=KEY::message`."""
    lines = []
    for p in problems:
        command = "error" if p.severity is Severity.ERROR else "warning"
        props = ",".join(
            f"{name}={_escape_property(value)}"
            for name, value in (
                ("file", relative(p.pos.path)),
                ("line", str(p.pos.line)),
                ("col", str(p.pos.col)),
                ("title", p.key),
            )
        )
        lines.append(f"::{command} {props}::{_escape_data(p.message)}")
    return lines


def as_json(problems: Iterable[Problem]) -> str:
    """All findings as one JSON array, in the order `check` found them."""
    return json.dumps(
        [
            {
                "path": relative(p.pos.path),
                "line": p.pos.line,
                "col": p.pos.col,
                "severity": p.severity.value,
                "key": p.key,
                "message": p.message,
            }
            for p in problems
        ],
        ensure_ascii=False,
        indent=2,
    )


_MARKS = {"+": "追加", "-": "削除", "~": "変更"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _heading(old_rev: str, new_rev: str) -> str:
    new = "作業中のファイル" if new_rev == "." else new_rev
    return f"## 登録情報の変更（haishin plan: `{old_rev}` → `{new}`）"


def markdown_plan(lines: Sequence[str], old_rev: str, new_rev: str) -> str:
    """The plan as a heading and a bullet list, each line's mark (+ - ~) named in words."""
    out = [_heading(old_rev, new_rev), ""]
    if not lines:
        out.append("変更なし")
    for line in lines:
        mark, _, rest = line.partition(" ")
        label = _MARKS.get(mark)
        out.append(f"- **{label}** {_md(rest)}" if label else f"- {_md(line)}")
    return "\n".join(out) + "\n"


def markdown_refusal(reason: str, old_rev: str, new_rev: str) -> str:
    """Why there is no plan (a revision that does not pass check), for the same comment."""
    first, _, rest = reason.partition("\n")
    out = [_heading(old_rev, new_rev), "", f"**変更の内容を示せません。** {_md(first)}"]
    if rest:
        # a fence longer than any run of backticks in the findings, so none can close it
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", rest)), default=0))
        out += ["", f"{fence}text", rest, fence]
    return "\n".join(out) + "\n"
