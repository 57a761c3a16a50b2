"""The `haishin` group, the options its commands share, and the edge where errors become
exit codes (style.md 5: inside, raise; the CLI maps).

The group loads a command's module only when that command runs (click's "Lazy Loading
of Subcommands"): each `cli/<topic>.py` imports what it needs at its top, and `haishin
check` still starts without SQLAlchemy, aiohttp or Pelican. `--help` loads them all, to
show each command's own help.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from ..errors import HaishinError, RegistryInvalid

CONFIG_DEFAULT = "config"
DB_DEFAULT = "sqlite:///var/haishin.db"
SECRET_DEFAULT = Path("var/secret")
MAILDIR_DEFAULT = Path("var/maildir")

COMMANDS: dict[str, str] = {
    "check": "registry:check",
    "approve": "registry:approve",
    "reject": "registry:reject",
    "notice": "review:notice",
    "plan": "review:plan_cmd",
    "site": "site:site",
    "serve": "daemon:serve",
    "demo": "daemon:demo",
    "sync": "operations:sync_cmd",
    "outage": "operations:outage",
    "status": "operations:status_cmd",
    "purge": "operations:purge_cmd",
    "backup": "operations:backup_cmd",
    "restore": "operations:restore_cmd",
    "backup-key": "operations:backup_key",
    "audit": "operations:audit_cmd",
    "subscribers": "subscribers:subscribers",
    "bounces": "bounces:bounces",
    "held": "held:held",
}
"""Each command's name → `module:object` in this folder."""


class LazyGroup(click.Group):
    """A group whose commands are imported from `COMMANDS` when asked for by name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module, name = where.split(":")
        command = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{where} is not the command {cmd_name!r}")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="haishin")
def cli() -> None:
    """川崎市電子メール配信サービス (haishin)."""


config_option = click.option(
    "--config",
    "config_dir",
    default=CONFIG_DEFAULT,
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="the registry folder",
)
db_option = click.option(
    "--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL of the store"
)
date_option = click.option(
    "--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="decision date (default: today, JST)"
)


def prepare_db(url: str, *, create: bool = False) -> str:
    """The store's URL, checked: only the daemon (and a restore) may make a new SQLite
    file; an administrator's command pointed at a wrong path must say so, not quietly
    create an empty store there."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise HaishinError(
                f"データベース {path} がありません（--db で、デーモンが使っているものを指定してください）"
            )
    return url


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
    except sa_errors() as exc:
        # the database is down, the URL is wrong: a clear line, not a traceback
        click.echo(
            f"haishin: データベースに接続できません: {type(exc).__name__}: {exc}".splitlines()[0],
            err=True,
        )
        sys.exit(2)
    except OSError as exc:
        click.echo(f"haishin: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(2)


def sa_errors() -> tuple[type[BaseException], ...]:
    """SQLAlchemy's errors, once a command has loaded it. Looked up, not imported: the
    clause is evaluated for every exit (click's `SystemExit` too), and importing the
    library there would cost `haishin check` the start-up it saves."""
    loaded = sys.modules.get("sqlalchemy.exc")
    error: type[BaseException] | None = getattr(loaded, "SQLAlchemyError", None)
    return (error,) if error is not None else ()
