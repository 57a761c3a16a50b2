"""Registry commands: check, and the 統括管理者's decision on an application (第6条)."""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path

import click

from ..registry import channel_states
from ..registry import check as run_check
from ..registry.edit import decide
from . import formats
from .base import (
    CONFIG_DEFAULT,
    config_option,
    date_option,
)


@click.command()
@click.argument("config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(formats.CHECK_FORMATS),
    default="text",
    show_default=True,
    help="text: path:line:col lines; github: workflow annotations; json: one array",
)
def check(config_dir: Path, fmt: str) -> None:
    """Validate the registry: every problem as path:line:col, exit 1 on any error."""
    reg, problems = run_check(config_dir)
    errors = sum(p.is_error for p in problems)
    if fmt != "text":
        # for a machine: the findings only, the verdict in the exit code as for text
        if fmt == "json":
            click.echo(formats.as_json(problems))
        else:
            for line in formats.github(problems):
                click.echo(line)
        sys.exit(1 if errors else 0)
    for problem in problems:
        click.echo(str(problem))
    if errors:
        click.echo(f"エラー {errors} 件（警告 {len(problems) - errors} 件）", err=True)
        sys.exit(1)
    counts = Counter(s.state.value for s in channel_states(reg).values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(
        f"OK: チャネル {len(reg.channels)} 件（{summary}）、申請 {len(reg.applications)} 件、"
        f"停止記録 {len(reg.outages)} 件、警告 {len(problems)} 件"
    )


@click.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@date_option
@click.option("--notice-number", help="Form 2 number (default: the next in the office's series)")
@config_option
def approve(
    number: str, by: str, on: dt.datetime | None, notice_number: str | None, config_dir: Path
) -> None:
    """Approve application NUMBER: write its Form 2 block (第6条2)."""
    path = decide(config_dir, number, "approved", by, on.date() if on else None, notice_number)
    click.echo(f"承認を記録しました: {path}")


@click.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@click.option("--reason", required=True, help="why the application is not approved")
@date_option
@click.option("--notice-number", help="notice number (default: the next in the office's series)")
@config_option
def reject(
    number: str,
    by: str,
    reason: str,
    on: dt.datetime | None,
    notice_number: str | None,
    config_dir: Path,
) -> None:
    """Reject application NUMBER: write its decision block with the reason."""
    path = decide(
        config_dir, number, "rejected", by, on.date() if on else None, notice_number, reason
    )
    click.echo(f"不承認を記録しました: {path}")
