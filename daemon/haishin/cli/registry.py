"""Registry commands: check, approve, reject, notice (第6条)."""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path

import click

from .base import (
    CONFIG_DEFAULT,
    cli,
    config_option,
    date_option,
)


@cli.command()
@click.argument("config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
def check(config_dir: Path) -> None:
    """Validate the registry: every problem as path:line:col, exit 1 on any error."""
    from ..registry import channel_states
    from ..registry import check as run_check

    reg, problems = run_check(config_dir)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(p.is_error for p in problems)
    if errors:
        click.echo(f"エラー {errors} 件（警告 {len(problems) - errors} 件）", err=True)
        sys.exit(1)
    counts = Counter(s.state.value for s in channel_states(reg).values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(
        f"OK: チャネル {len(reg.channels)} 件（{summary}）、申請 {len(reg.applications)} 件、"
        f"停止記録 {len(reg.outages)} 件、警告 {len(problems)} 件"
    )


@cli.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@date_option
@click.option("--notice-number", help="Form 2 number (default: the next in the office's series)")
@config_option
def approve(
    number: str, by: str, on: dt.datetime | None, notice_number: str | None, config_dir: Path
) -> None:
    """Approve application NUMBER: write its Form 2 block (第6条2)."""
    from ..registry.edit import decide

    path = decide(config_dir, number, "approved", by, on.date() if on else None, notice_number)
    click.echo(f"承認を記録しました: {path}")


@cli.command()
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
    from ..registry.edit import decide

    path = decide(
        config_dir, number, "rejected", by, on.date() if on else None, notice_number, reason
    )
    click.echo(f"不承認を記録しました: {path}")


@cli.command()
@click.argument("number")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
@config_option
def notice(number: str, output: Path | None, config_dir: Path) -> None:
    """Render the Form 2 notice (承認書) of application NUMBER as HTML."""
    from ..registry import load_valid
    from ..registry.notice import render_notice

    html = render_notice(load_valid(config_dir), number)
    if output is None:
        click.echo(html, nl=False)
    else:
        output.write_text(html, encoding="utf-8")
        click.echo(f"承認書を書き出しました: {output}", err=True)


@cli.command("plan")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@config_option
@click.option("--from", "old_rev", default="HEAD", show_default=True, help="git revision")
@click.option(
    "--to", "new_rev", default=".", show_default=True, help="git revision, or . for the files"
)
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="date of the states")
def plan_cmd(
    repo: Path, config_dir: Path, old_rev: str, new_rev: str, on: dt.datetime | None
) -> None:
    """What a registry change does: channels started, stopped or paused, approvals, texts."""
    from ..clock import today
    from ..operations.plan import plan

    lines = plan(repo, config_dir, old_rev, new_rev, on.date() if on else today())
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("変更なし")
