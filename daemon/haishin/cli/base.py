"""The `haishin` group, the options its commands share, and the edge where errors become
exit codes (style.md 5: inside, raise; the CLI maps).

The group loads a command's module only when that command runs (click's "Lazy Loading
of Subcommands"): each `cli/<topic>.py` imports what it needs at its top, and `haishin
check` still starts without SQLAlchemy, aiohttp or Pelican. `--help` loads them all, to
show each command's own help.
"""

from __future__ import annotations

import errno
import importlib
import sys
from pathlib import Path
from typing import NamedTuple

import click

from ..errors import HaishinError, RegistryInvalid

CONFIG_DEFAULT = "config"
DB_DEFAULT = "sqlite:///var/haishin.db"
SECRET_DEFAULT = Path("var/secret")
MAILDIR_DEFAULT = Path("var/maildir")


class Lazy(NamedTuple):
    where: str
    """`module:object` in this folder."""
    short_help: str
    """The command's short help as `haishin --help` shows it, so that listing the
    commands imports none of them (tests/cli/test_lazy_group.py keeps it equal)."""


COMMANDS: dict[str, Lazy] = {
    "check": Lazy(
        "registry:check",
        "Validate the registry: every problem as path:line:col, exit 1 on any error.",
    ),
    "approve": Lazy(
        "registry:approve", "Approve application NUMBER: write its Form 2 block (第6条2)."
    ),
    "reject": Lazy(
        "registry:reject", "Reject application NUMBER: write its decision block with the reason."
    ),
    "notice": Lazy(
        "review:notice", "Render the Form 2 notice (承認書) of application NUMBER as HTML."
    ),
    "plan": Lazy(
        "review:plan_cmd",
        "What a registry change does: channels started, stopped or paused, approvals, texts.",
    ),
    "schema": Lazy(
        "schema:schema",
        "Write the registry files' JSON Schemas (for the editor) and the field reference.",
    ),
    "site": Lazy("site:site", "The public website (第7条), built by Pelican from the registry."),
    "serve": Lazy(
        "daemon:serve", "Run the mail daemon (SMTP/LMTP in, HTTP, worker, sender) until SIGTERM."
    ),
    "demo": Lazy(
        "daemon:demo", "Run the daemon on loopback with the sample registry, SQLite and a maildir."
    ),
    "sync": Lazy(
        "operations:sync_cmd",
        "Pull the registry; move the checkout only to a revision that passes check.",
    ),
    "outage": Lazy(
        "operations:outage", "Stops of the service (第9条): notices and reports to the other party."
    ),
    "status": Lazy(
        "operations:status_cmd",
        "The service at a glance: queues, delivery rate, deferrals, subscribers.",
    ),
    "purge": Lazy(
        "operations:purge_cmd",
        "Remove personal data past its retention (第4条(3)); consent records are kept.",
    ),
    "backup": Lazy(
        "operations:backup_cmd",
        "Snapshot the store into PATH while the daemon runs (owner-only file).",
    ),
    "restore": Lazy(
        "operations:restore_cmd", "Bring the backup PATH into the empty store at --db."
    ),
    "backup-key": Lazy(
        "operations:backup_key",
        "Create a new 256-bit key file for encrypted backups (owner-only; never overwrites).",
    ),
    "audit": Lazy(
        "operations:audit_cmd",
        "The audit log of administrative actions (第4条(3)): when, who, what.",
    ),
    "subscribers": Lazy(
        "subscribers:subscribers", "List, count, export, remove and import a channel's subscribers."
    ),
    "bounces": Lazy(
        "bounces:bounces",
        "Bounce scores and disables: `haishin bounces CHANNEL` reports, `digest` mails.",
    ),
    "report": Lazy(
        "report:report", "Monthly figures per channel with 12-month trends (HTML or CSV)."
    ),
    "held": Lazy(
        "held:held", "List, show, approve, reject and withdraw posts that have not gone out."
    ),
}
"""Each command by name: where it is defined and its short help."""


class LazyGroup(click.Group):
    """A group whose commands are imported from `COMMANDS` when asked for by name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = COMMANDS.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        where = lazy.where
        module, name = where.split(":")
        command = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{where} is not the command {cmd_name!r}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `haishin --help` from the table, importing no command
        (click's own lists each command's help by importing it: a second of start-up)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            lazy = COMMANDS.get(name)
            if lazy is None:
                command = super().get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # click's own shortening, on a stand-in that carries the table's text
                stand_in = click.Command(name, help=lazy.short_help)
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
        click.echo(f"haishin: {os_reason(exc)}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(2)


OS_REASONS = {
    errno.ENOENT: "そのフォルダまたはファイルがありません",
    errno.EISDIR: "フォルダです（ファイル名まで指定してください）",
    errno.ENOTDIR: "途中にフォルダでないものがあります",
    errno.EACCES: "書き込み・読み込みの権限がありません",
    errno.EPERM: "書き込み・読み込みの権限がありません",
    errno.EROFS: "読み取り専用の場所です",
    errno.ENOSPC: "ディスクの空きがありません",
}
"""Why a file could not be read or written, in Japanese (the OS says it in English)."""


def os_reason(exc: OSError) -> str:
    return OS_REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def sa_errors() -> tuple[type[BaseException], ...]:
    """SQLAlchemy's errors, once a command has loaded it. Looked up, not imported: the
    clause is evaluated for every exit (click's `SystemExit` too), and importing the
    library there would cost `haishin check` the start-up it saves."""
    loaded = sys.modules.get("sqlalchemy.exc")
    error: type[BaseException] | None = getattr(loaded, "SQLAlchemyError", None)
    return (error,) if error is not None else ()
