"""`haishin held`: held posts from the server's shell (第5条: the 情報管理者 decides).

The same decisions as a reply or the web button (posting/decisions.py), recorded with
method `cli`; the sender is told by mail, which the running daemon sends.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..context import Context

from ..clock import utcnow
from .base import SECRET_DEFAULT, cli, config_option, db_option


@cli.group()
def held() -> None:
    """List, show, approve, reject and withdraw posts that have not gone out."""


def _options(f: click.decorators.FC) -> click.decorators.FC:
    f = db_option(f)
    f = config_option(f)
    f = click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))(f)
    return click.option("--public-url", default=None)(f)


def _engine(db_url: str) -> sa.Engine:
    from ..store import open_store
    from .base import prepare_db

    return open_store(prepare_db(db_url))


def _context(config_dir: Path, secret_file: Path, public_url: str | None) -> Context:
    from ..context import Context
    from ..directory import Directory
    from ..registry import load_valid
    from ..tokens import load_keyring

    registry = load_valid(config_dir)
    assert registry.service is not None
    url = public_url or registry.service.value.site_url
    keyring = load_keyring(secret_file)
    return Context(Directory(registry, keyring), keyring, url if url.endswith("/") else url + "/")


def _when(value: str) -> dt.datetime:
    from ..posting.schedule import parse_when

    if value == "now":
        return utcnow()
    at = parse_when(value)
    if at is None:
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"読み取れない日時です: {value}") from None
        if at.tzinfo is None:
            from ..registry.model import JST

            at = at.replace(tzinfo=JST)
    return at


@held.command("list")
@click.option("--all", "show_all", is_flag=True, help="also sent and ended posts")
@db_option
def held_list(show_all: bool, db_url: str) -> None:
    """One line per post: id, channel, state, send time, subject."""
    from ..store import posts
    from ..store.engine import reading

    with reading(_engine(db_url)) as conn:
        found = posts.listing(conn, None if show_all else (*posts.PENDING, posts.PostState.SENDING))
    for p in found:
        at = p.send_at.isoformat() if p.send_at else "-"
        click.echo(f"{p.id}\t{p.channel}\t{p.state}\t{at}\t{p.subject}")


@held.command("show")
@click.argument("post_id", type=int)
@db_option
def held_show(post_id: int, db_url: str) -> None:
    """Everything recorded about one post, its 第3条(2) findings and its text."""
    from ..store import posts
    from ..store.engine import reading

    with reading(_engine(db_url)) as conn:
        p = posts.get(conn, post_id)
    if p is None:
        raise click.ClickException(f"no post {post_id}")
    for name in [
        "id",
        "channel",
        "state",
        "sender",
        "subject",
        "approval",
        "approver",
        "approval_method",
        "send_at",
        "created_at",
        "expires_at",
        "approved_at",
        "sent_at",
        "ended_at",
        "note",
        "correction_of",
        "out_message_id",
        "recipients",
        "archive_slug",
    ]:
        value = getattr(p, name)
        click.echo(f"{name}: {value.isoformat() if isinstance(value, dt.datetime) else value}")
    click.echo("findings: " + json.dumps(p.findings, ensure_ascii=False))
    click.echo("\n" + p.text)


def _decided(result: object) -> None:
    from ..posting.decisions import Decision

    if result is Decision.UNKNOWN:
        raise click.ClickException("no such post")
    if result is Decision.TOO_LATE:
        raise click.ClickException("the post is no longer held (sent, sending or ended)")
    click.echo("OK")


@held.command("approve")
@click.argument("post_id", type=int)
@click.option("--send-at", default=None, help="配信日時, e.g. '2026-12-01 09:00' (JST) or now")
@click.option("--by", default="cli", help="who approves, for the record")
@_options
def held_approve(
    post_id: int,
    send_at: str | None,
    by: str,
    db_url: str,
    config_dir: Path,
    secret_file: Path,
    public_url: str | None,
) -> None:
    """Approve a held post; with --send-at, set or change when it goes out."""
    from ..posting import decisions
    from ..store import audit

    ctx = _context(config_dir, secret_file, public_url)
    at = _when(send_at) if send_at else None
    with _engine(db_url).begin() as conn:
        result = decisions.approve(
            conn, ctx, post_id, approver=by, method="cli", send_at=at, reschedule=at is not None
        )
        audit.record(conn, "held.approve", f"post#{post_id}", f"{result} send_at={at}")
    _decided(result)


@held.command("reject")
@click.argument("post_id", type=int)
@click.option("--reason", required=True, help="told to the sender")
@click.option("--by", default="cli", help="who rejects, for the record")
@_options
def held_reject(
    post_id: int,
    reason: str,
    by: str,
    db_url: str,
    config_dir: Path,
    secret_file: Path,
    public_url: str | None,
) -> None:
    """Reject a post that has not gone out; the sender is told why."""
    from ..posting import decisions
    from ..store import audit

    ctx = _context(config_dir, secret_file, public_url)
    with _engine(db_url).begin() as conn:
        result = decisions.reject(conn, ctx, post_id, by=by, reason=reason)
        audit.record(conn, "held.reject", f"post#{post_id}", f"{result} {reason}")
    _decided(result)


@held.command("withdraw")
@click.argument("post_id", type=int)
@click.option("--by", default="cli", help="who withdraws, for the record")
@_options
def held_withdraw(
    post_id: int,
    by: str,
    db_url: str,
    config_dir: Path,
    secret_file: Path,
    public_url: str | None,
) -> None:
    """Withdraw a post that has not gone out (第5条(1))."""
    from ..posting import decisions
    from ..store import audit

    ctx = _context(config_dir, secret_file, public_url)
    with _engine(db_url).begin() as conn:
        result = decisions.withdraw(conn, ctx, post_id, by=by, method="cli")
        audit.record(conn, "held.withdraw", f"post#{post_id}", str(result))
    _decided(result)
