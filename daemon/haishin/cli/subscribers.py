"""Subscriber management for the 情報管理者 (第5条(2))."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import BinaryIO

import click

from ..commands import membership
from ..context import Outcome
from ..store import open_store
from ..store import subscribers as subs
from ..store.audit import record, record_now
from ..store.engine import reading
from ..tokens import load_keyring
from .base import (
    SECRET_DEFAULT,
    config_option,
    db_option,
    prepare_db,
)
from .importing import Report, import_lines, read_listing
from .loading import context_of, registry_with


@click.group()
def subscribers() -> None:
    """List, count, export, remove and import a channel's subscribers."""


@subscribers.command("list")
@click.argument("channel")
@db_option
@click.option("--status", default=None, help="pending | active | unsubscribed | disabled")
def subscribers_list(channel: str, db_url: str, status: str | None) -> None:
    """Print each subscriber: address, status, confirmed-at."""
    engine = open_store(prepare_db(db_url))
    record_now(engine, "subscribers.list", channel, f"status={status or 'all'}")
    with reading(engine) as conn:
        for s in subs.iterate(conn, channel, subs.Status(status) if status else None):
            confirmed = s.confirmed_at.isoformat() if s.confirmed_at else "-"
            click.echo(f"{s.address}\t{s.status}\t{confirmed}")


@subscribers.command("count")
@click.argument("channel")
@db_option
def subscribers_count(channel: str, db_url: str) -> None:
    """Count subscribers per status."""
    engine = open_store(prepare_db(db_url))
    with reading(engine) as conn:
        counts = subs.count(conn, channel)
    for status, n in counts.items():
        click.echo(f"{status}\t{n}")


@subscribers.command("export")
@click.argument("channel")
@db_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def subscribers_export(channel: str, db_url: str, output: Path | None) -> None:
    """CSV with the consent record of every subscriber (特定電子メール法)."""
    engine = open_store(prepare_db(db_url))
    record_now(engine, "subscribers.export", channel)
    if output is None:
        sink = sys.stdout
    else:
        # addresses and consent records: owner only (第4条(3)), whatever the umask
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        sink = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    w = csv.writer(sink)
    w.writerow(
        [
            "address",
            "status",
            "created_at",
            "confirmed_at",
            "consent_method",
            "consent_evidence",
            "unsubscribed_at",
            "unsubscribe_method",
        ]
    )
    with reading(engine) as conn:
        for s in subs.iterate(conn, channel):
            w.writerow(
                [
                    s.address,
                    s.status,
                    s.created_at.isoformat(),
                    s.confirmed_at.isoformat() if s.confirmed_at else "",
                    s.consent_method or "",
                    s.consent_evidence or "",
                    s.unsubscribed_at.isoformat() if s.unsubscribed_at else "",
                    s.unsubscribe_method or "",
                ]
            )
    if sink is not sys.stdout:
        sink.close()


@subscribers.command("remove")
@click.argument("channel")
@click.argument("address")
@db_option
@click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))
def subscribers_remove(channel: str, address: str, db_url: str, secret_file: Path) -> None:
    """Disable one subscriber (the record is kept)."""
    engine = open_store(prepare_db(db_url))
    with engine.begin() as conn:
        removed = subs.remove(conn, channel, address)
        if removed:
            record(conn, "subscribers.remove", channel, _hashed(address, secret_file))
    if not removed:
        raise click.ClickException("no such subscriber")
    click.echo("removed")


@subscribers.command("import")
@click.argument("channel")
@click.argument("file", type=click.File("rb"))
@db_option
@config_option
@click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))
@click.option("--public-url", default=None)
def subscribers_import(
    channel: str,
    file: BinaryIO,
    db_url: str,
    config_dir: Path,
    secret_file: Path,
    public_url: str | None,
) -> None:
    """One address per line: each mailbox gets one confirmation request, none becomes
    active. Each refused line is printed with its number and reason; exit 1 when a line
    must be corrected or imported again (cli/importing.py)."""
    ctx = context_of(registry_with(config_dir, channel), secret_file, public_url)
    lines = read_listing(file.read())
    # moving subscribers over from a former system may come before the daemon's first run
    engine = open_store(prepare_db(db_url, create=True))

    def request(address: str) -> Outcome:
        # one transaction per line: a line that fails leaves the others done
        with engine.begin() as conn:
            return membership.request_import(conn, ctx, channel, address)

    report = Report()
    try:
        import_lines(lines, request, report)
    finally:
        # also for an import cut short (^C, the database gone): what it queued is recorded
        try:
            record_now(engine, "subscribers.import", channel, report.audit())
        finally:
            engine.dispose()
    for refused in report.refused:
        click.echo(refused.line(file.name), err=True)
    click.echo(report.summary())
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


def _hashed(address: str, secret_file: Path) -> str:
    return load_keyring(secret_file).redact(address)
