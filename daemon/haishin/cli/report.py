"""`haishin report`: the monthly report (issue 15 item 6) of one month, for one
department's channels or for all, as HTML or CSV. The daemon mails the same report on the
first day of each month; this command shows it on demand."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..clock import today
from ..operations.report.collect import collect
from ..operations.report.render import csv_bytes, html
from ..registry import load_valid
from ..store import open_store
from ..store.monthly import Month
from .base import config_option, db_option, os_reason, prepare_db


def _month(ctx: click.Context, param: click.Parameter, value: str | None) -> Month:
    if value is None:
        return Month.of(today()).previous()
    try:
        return Month.parse(value)
    except ValueError:
        raise click.BadParameter(
            f"月は YYYY-MM の形で指定してください（例: 2026-11）: {value!r}"
        ) from None


@click.command("report")
@click.option(
    "--month",
    callback=_month,
    metavar="YYYY-MM",
    help="the month, in Japan's time (default: the month just ended)",
)
@click.option("--department", default=None, metavar="ID", help="only this department's channels")
@click.option("--format", "fmt", type=click.Choice(["html", "csv"]), default="html")
@click.option(
    "--output",
    # not dir_okay=False: click would answer a folder in English; write_bytes says it below
    type=click.Path(path_type=Path),
    default=None,
    help="write to this file (default: standard output)",
)
@config_option
@db_option
def report(
    month: Month,
    department: str | None,
    fmt: str,
    output: Path | None,
    config_dir: Path,
    db_url: str,
) -> None:
    """Monthly figures per channel with 12-month trends (HTML or CSV)."""
    registry = load_valid(config_dir)
    if department is not None and department not in registry.departments:
        known = "、".join(sorted(registry.departments)) or "なし"
        raise click.ClickException(f"所属 {department!r} はありません（あるもの: {known}）")
    engine = open_store(prepare_db(db_url))
    try:
        data = collect(engine, registry, month, department, today=today())
    finally:
        engine.dispose()
    body = csv_bytes(data) if fmt == "csv" else html(data).encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        try:
            output.write_bytes(body)
        except OSError as exc:
            raise click.ClickException(f"{output} に書き込めません: {os_reason(exc)}") from None
