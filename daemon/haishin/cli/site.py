"""`haishin site build`: the public site (第7条)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from ..posting.archive import export_store
from ..site.build import build_site
from ..site.errors import SiteRegistryInvalid
from ..store import open_store
from .base import prepare_db


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
    help="back numbers kept in git (default: the one pelicanconf.py names, content/archive/)",
)
@click.option(
    "--db",
    "db_url",
    default=None,
    help="the daemons' store: its back numbers are published too (every host builds the same)",
)
def site_build(
    config_dir: Path | None,
    output: Path,
    settings: Path,
    now: str | None,
    archive: Path | None,
    db_url: str | None,
) -> None:
    """Build the site; a registry that fails `haishin check` builds nothing."""
    with tempfile.TemporaryDirectory(prefix="haishin-backnumbers-") as scratch:
        stored = None
        if db_url is not None:
            # the store is where sent posts are kept (issue 16 item 2): written out in
            # the archive folder's shape for this build only
            engine = open_store(prepare_db(db_url))
            try:
                export_store(engine, Path(scratch))
            finally:
                engine.dispose()
            stored = Path(scratch)
        try:
            published = build_site(
                settings, output, config=config_dir, now=now, archive=archive, stored=stored
            )
        except SiteRegistryInvalid as exc:  # the problems were printed as `haishin check` does
            click.echo(str(exc), err=True)
            sys.exit(exc.exit_code)
    click.echo(f"OK: {output} に公開サイトを作成しました（掲載チャネル {published} 件）")
