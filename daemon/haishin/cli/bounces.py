"""Bounces (issue 6, item 6): `haishin bounces CHANNEL` reports, `haishin bounces digest`
shows or queues the weekly digest to each channel's 情報管理者."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..bounces.classify import BounceClass, Classified, classify
from ..bounces.digest import digests
from ..bounces.record import service_day
from ..bounces.score import settings_of
from ..bounces.summary import summarize
from ..clock import utcnow
from ..redact import mask, mask_addresses
from ..registry import load_valid
from ..store import open_store
from ..store.audit import record_now
from ..store.engine import reading
from .base import config_option, db_option, prepare_db
from .loading import registry_with

F = TypeVar("F", bound=Callable[..., Any])


class _BouncesGroup(click.Group):
    """`haishin bounces CHANNEL` is short for `haishin bounces report CHANNEL`."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["report", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_BouncesGroup)
def bounces() -> None:
    """Bounce scores and disables: `haishin bounces CHANNEL` reports, `digest` mails."""


def _day_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--date", "on", type=click.DateTime(["%Y-%m-%d"]), default=None, help=help_text
    )


@bounces.command("report")
@click.argument("channel")
@config_option
@db_option
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True)
@click.option(
    "--show-addresses",
    is_flag=True,
    help="print addresses in full (for the 情報管理者, 第5条(2)); masked otherwise",
)
@_day_option("the last day of the report (default: today, JST)")
def bounces_report(
    channel: str,
    config_dir: Path,
    db_url: str,
    days: int,
    show_addresses: bool,
    on: dt.datetime | None,
) -> None:
    """Scores above zero, disables and bounces by kind over the last DAYS days."""
    registry = registry_with(config_dir, channel)
    assert registry.service is not None
    rules = settings_of(registry.service.value)
    last = on.date() if on else service_day(utcnow())
    until = last + dt.timedelta(days=1)
    engine = open_store(prepare_db(db_url))
    with reading(engine) as conn:
        summary = summarize(conn, channel, until - dt.timedelta(days=days), until, last, rules)
    if show_addresses:  # personal data read out (第4条(3)): who and when
        record_now(engine, "bounces.report", channel, f"addresses shown, {days} days")

    def shown(sub_id: int, address: str) -> str:
        return f"#{sub_id} {address if show_addresses else mask(address)}"

    title = registry.channels[channel].value.title
    click.echo(f"{channel}（{title}）: {summary.since} 〜 {summary.last_day}（{days} 日間）")
    click.echo("bounces by kind: " + ", ".join(f"{k} {n}" for k, n in summary.counts.items()))
    click.echo(
        f"scores above zero ({len(summary.scoring)}; disabled at {rules.threshold:g}, "
        f"back to zero after {rules.stale_days} days without a bounce):"
    )
    for s in summary.scoring:
        click.echo(
            f"  {shown(s.subscriber_id, s.address)}\t{s.status}\t{s.score:g}\t{s.last_bounce}"
        )
    click.echo(f"disabled by bounces ({len(summary.disabled)}):")
    for d in summary.disabled:
        why = "受信拒否設定 (filtered)" if d.reason == "filtered" else (d.reason or "-")
        click.echo(f"  {shown(d.subscriber_id, d.address)}\t{d.day}\t{d.status or '-'}\t{why}")
    engine.dispose()


@bounces.command("digest")
@config_option
@db_option
@click.option("--send", is_flag=True, help="queue the mails (default: only show them)")
@click.option("--show-addresses", is_flag=True, help="show addresses in full when not sending")
@_day_option("the day it runs on: the digest covers the 7 days before (default: today)")
def bounces_digest(
    config_dir: Path, db_url: str, send: bool, show_addresses: bool, on: dt.datetime | None
) -> None:
    """The weekly digest to each channel's 情報管理者 (once per channel per week)."""
    registry = load_valid(config_dir)
    today = on.date() if on else service_day(utcnow())
    engine = open_store(prepare_db(db_url))
    found = digests(engine, registry, today, send=send)
    queued = [d.channel for d in found if d.queued]
    if queued or (found and show_addresses):
        what = f"queued for the week of {today}" if queued else "addresses shown"
        record_now(engine, "bounces.digest", ",".join(queued or [d.channel for d in found]), what)
    engine.dispose()
    for d in found:
        state = "queued" if d.queued else ("already sent this week" if send else "not sent")
        click.echo(f"{d.channel}: {state}")
        if not send:
            body = d.body if show_addresses else mask_addresses(d.body)
            click.echo(f"Subject: {d.subject}\n\n{body}")
    if not found:
        click.echo("no bounces in the 7 days before " + today.isoformat())


@bounces.command("classify")
@click.option("--json", "as_json", is_flag=True, help="one JSON line per file")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
def bounces_classify(as_json: bool, files: tuple[Path, ...]) -> None:
    """What the daemon would record for each report FILE (issue 12, item 4): per failed
    recipient its class, reason and status. Never fails on a file's content; exit 0."""
    for path in files:
        try:
            result = classify(path.read_bytes())
        except OSError as exc:  # unreadable file: an empty answer that says why
            result = Classified(parser=f"unreadable file: {exc.strerror or type(exc).__name__}")
        failed = [r for r in result.recipients if r.klass is not BounceClass.NONE]
        if as_json:
            rows = [
                {
                    "address": r.address,
                    "class": r.klass.value,
                    "reason": r.reason,
                    "status": r.status,
                }
                for r in failed
            ]
            click.echo(json.dumps({"file": str(path), "recipients": rows}, ensure_ascii=False))
            continue
        click.echo(f"{path}: {result.parser or '-'}, {len(failed)} failed recipient(s)")
        for r in result.recipients:
            click.echo(f"  {r.klass.value:<10} {r.reason:<15} {r.status or '-':<8} {r.address}")
            click.echo(f"    {r.decided_by}: {r.evidence[:200]}")
