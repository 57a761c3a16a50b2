"""`haishin`: the command line. Errors inside are exceptions; here they become exit codes."""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path

import click

from .errors import HaishinError, RegistryInvalid

CONFIG_DEFAULT = "config"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="haishin")
def cli() -> None:
    """川崎市電子メール配信サービス (haishin)."""


@cli.command()
@click.argument("config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
def check(config_dir: Path) -> None:
    """Validate the registry: every problem as path:line:col, exit 1 on any error."""
    from .registry import channel_states
    from .registry import check as run_check

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


_config_option = click.option(
    "--config",
    "config_dir",
    default=CONFIG_DEFAULT,
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="the registry folder",
)
_date_option = click.option(
    "--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="decision date (default: today, JST)"
)


@cli.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@_date_option
@click.option("--notice-number", help="Form 2 number (default: the next in the office's series)")
@_config_option
def approve(
    number: str, by: str, on: dt.datetime | None, notice_number: str | None, config_dir: Path
) -> None:
    """Approve application NUMBER: write its Form 2 block (第6条2)."""
    from .registry.edit import decide

    path = decide(config_dir, number, "approved", by, on.date() if on else None, notice_number)
    click.echo(f"承認を記録しました: {path}")


@cli.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@click.option("--reason", required=True, help="why the application is not approved")
@_date_option
@click.option("--notice-number", help="notice number (default: the next in the office's series)")
@_config_option
def reject(
    number: str,
    by: str,
    reason: str,
    on: dt.datetime | None,
    notice_number: str | None,
    config_dir: Path,
) -> None:
    """Reject application NUMBER: write its decision block with the reason."""
    from .registry.edit import decide

    path = decide(
        config_dir, number, "rejected", by, on.date() if on else None, notice_number, reason
    )
    click.echo(f"不承認を記録しました: {path}")


@cli.command()
@click.argument("number")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
@_config_option
def notice(number: str, output: Path | None, config_dir: Path) -> None:
    """Render the Form 2 notice (承認書) of application NUMBER as HTML."""
    from .registry import load_valid
    from .registry.notice import render_notice

    html = render_notice(load_valid(config_dir), number)
    if output is None:
        click.echo(html, nl=False)
    else:
        output.write_text(html, encoding="utf-8")
        click.echo(f"承認書を書き出しました: {output}", err=True)


@cli.group()
def site() -> None:
    """The public website (第7条), built by Pelican from the registry."""


@site.command("build")
@click.option(
    "--config",
    "config_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="registry folder (default: the one pelicanconf.py names, config/)",
)
@click.option(
    "--output", type=click.Path(path_type=Path), default=Path("output"), show_default=True
)
@click.option(
    "--settings",
    type=click.Path(path_type=Path, exists=True),
    default=Path("pelicanconf.py"),
    show_default=True,
)
@click.option("--now", default=None, help="describe the site as of this date (YYYY-MM-DD)")
def site_build(config_dir: Path | None, output: Path, settings: Path, now: str | None) -> None:
    """Build the site; a registry that fails `haishin check` builds nothing."""
    from .site.build import build_site
    from .site.errors import SiteRegistryInvalid

    try:
        published = build_site(settings, output, config=config_dir, now=now)
    except SiteRegistryInvalid as exc:  # the problems were printed as `haishin check` does
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    click.echo(f"OK: {output} に公開サイトを作成しました（掲載チャネル {published} 件）")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except RegistryInvalid as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"haishin: 登録情報にエラーが {len(exc.problems)} 件あります", err=True)
        sys.exit(exc.exit_code)
    except HaishinError as exc:
        click.echo(f"haishin: {exc}", err=True)
        sys.exit(exc.exit_code)
