"""`haishin site build`: the public site (第7条)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..site.build import build_site
from ..site.errors import SiteRegistryInvalid


@click.group()
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
@click.option(
    "--archive",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="back numbers folder (default: the one pelicanconf.py names, content/archive/)",
)
def site_build(
    config_dir: Path | None, output: Path, settings: Path, now: str | None, archive: Path | None
) -> None:
    """Build the site; a registry that fails `haishin check` builds nothing."""
    try:
        published = build_site(settings, output, config=config_dir, now=now, archive=archive)
    except SiteRegistryInvalid as exc:  # the problems were printed as `haishin check` does
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    click.echo(f"OK: {output} に公開サイトを作成しました（掲載チャネル {published} 件）")
