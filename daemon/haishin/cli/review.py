"""Reading a registry change: what it does (`plan`) and the Form 2 notice (承認書) an
approval gives (`notice`, 第6条2). Apart from `check` (registry.py), whose start-up stays
light: the notice is rendered with Jinja2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..clock import today
from ..operations.plan import PlanError, plan
from ..registry import load_valid
from ..registry.notice import render_notice
from . import formats
from .base import config_option


@click.command()
@click.argument("number")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
@config_option
def notice(number: str, output: Path | None, config_dir: Path) -> None:
    """Render the Form 2 notice (承認書) of application NUMBER as HTML."""
    html = render_notice(load_valid(config_dir), number)
    if output is None:
        click.echo(html, nl=False)
    else:
        output.write_text(html, encoding="utf-8")
        click.echo(f"承認書を書き出しました: {output}", err=True)


@click.command("plan")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@config_option
@click.option("--from", "old_rev", default="HEAD", show_default=True, help="git revision")
@click.option(
    "--to", "new_rev", default=".", show_default=True, help="git revision, or . for the files"
)
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="date of the states")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(formats.PLAN_FORMATS),
    default="text",
    show_default=True,
    help="markdown: a heading and a list, for a pull-request comment",
)
def plan_cmd(
    repo: Path, config_dir: Path, old_rev: str, new_rev: str, on: dt.datetime | None, fmt: str
) -> None:
    """What a registry change does: channels started, stopped or paused, approvals, texts.

    --config is the registry folder inside --repo (e.g. --config config)."""
    if fmt == "markdown":
        try:
            lines = plan(repo, config_dir, old_rev, new_rev, on.date() if on else today())
        except PlanError as exc:
            # the comment still says why there is no plan; the exit code stays an error
            click.echo(formats.markdown_refusal(str(exc), old_rev, new_rev), nl=False)
            raise SystemExit(exc.exit_code) from None
        click.echo(formats.markdown_plan(lines, old_rev, new_rev), nl=False)
        return
    lines = plan(repo, config_dir, old_rev, new_rev, on.date() if on else today())
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("変更なし")
