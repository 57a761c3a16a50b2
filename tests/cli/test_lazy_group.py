"""The command line's lazy group (cli/base.py): every command listed with its help, each
module imported only when its command runs, so `haishin check` starts light."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from haishin.cli import cli
from haishin.cli.base import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
CLI_DIR = ROOT / "daemon" / "haishin" / "cli"

HEAVY = ("sqlalchemy", "aiohttp", "aiosmtpd", "pelican", "imapclient")
"""What `haishin check` must not load: the store, the daemon's servers, the site build."""


def test_help_lists_every_command_with_its_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    ctx = click.Context(cli)
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)
    for line in listed:
        name = line.split()[0]
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        short = command.get_short_help_str(limit=40).removesuffix("...")
        assert short and short.split()[0] in line, (name, line)
        # the list comes from the table, so the table must say what the command says
        assert COMMANDS[name].short_help == command.get_short_help_str(limit=1000), name


def test_help_imports_no_command() -> None:
    """`haishin --help` is read from the table: it loads none of the heavy libraries."""
    code, heavy, err = _loaded_by("--help")
    assert code == 0, err
    assert heavy == [], heavy


def test_every_command_a_module_defines_is_in_the_table() -> None:
    """A command written in a module and forgotten in `COMMANDS` would never run."""
    ctx = click.Context(cli)
    reachable: set[int] = set()
    todo = [c for name in COMMANDS if (c := cli.get_command(ctx, name)) is not None]
    while todo:
        command = todo.pop()
        reachable.add(id(command))
        if isinstance(command, click.Group):
            todo += command.commands.values()
    for path in sorted(CLI_DIR.glob("*.py")):
        module = importlib.import_module(f"haishin.cli.{path.stem}")
        for name, value in vars(module).items():
            if isinstance(value, click.Command) and value is not cli:
                assert id(value) in reachable, f"{path.name}: {name} is in no command table"


def _loaded_by(*args: str) -> tuple[int, list[str], str]:
    """Run `haishin ARGS` in a fresh interpreter; its exit code, the heavy libraries it
    loaded (read as it exits) and what it wrote to stderr."""
    script = (
        "import atexit, json, sys\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: sys.stderr.write('\\nLOADED ' + json.dumps("
        "[m for m in heavy if m in sys.modules]) + '\\n'))\n"
        f"sys.argv = ['haishin', *{list(args)!r}]\n"
        "from haishin.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    last = done.stderr.rstrip().splitlines()[-1]
    assert last.startswith("LOADED "), done.stderr
    return done.returncode, json.loads(last.removeprefix("LOADED ")), done.stderr


def test_check_starts_without_the_daemons_libraries() -> None:
    code, loaded, _ = _loaded_by("check", "config")
    assert code == 0
    assert loaded == []


def test_a_command_that_needs_the_store_loads_it() -> None:
    """The check above can fail: `status` imports SQLAlchemy, and a database that does
    not answer is still one line and exit 2 (base.main, `sa_errors`)."""
    code, loaded, stderr = _loaded_by("status", "--db", "postgresql://127.0.0.1:1/none")
    assert code == 2
    assert "sqlalchemy" in loaded
    assert "haishin: データベースに接続できません: OperationalError" in stderr
    assert "Traceback" not in stderr


def test_an_unknown_command_is_refused_as_before() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_an_unknown_channel_is_a_usage_error(tmp_path: Path) -> None:
    """cli/loading.py: the commands that act on one channel refuse one the registry lacks,
    before they open the store."""
    listing = tmp_path / "addresses.txt"
    listing.write_text("a@example.jp\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'none.db'}"
    config = str(ROOT / "config")
    for args in (
        ["bounces", "report", "no-such-channel", "--config", config, "--db", db],
        ["subscribers", "import", "no-such-channel", str(listing), "--config", config, "--db", db],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert "unknown channel no-such-channel" in result.output
    assert not (tmp_path / "none.db").exists()
