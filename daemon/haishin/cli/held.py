"""`haishin held`: held posts from the server's shell (第5条: the 情報管理者 decides).

The same decisions as a reply or the web button (posting/decisions.py), recorded with
method `cli`; the sender is told by mail, which the running daemon sends.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import click
import sqlalchemy as sa

from ..clock import utcnow
from ..context import Context
from ..operations.post_progress import counts, of_post, pending_of, shown_state
from ..posting import decisions
from ..posting.decisions import Decided
from ..posting.holds import HoldKind, current
from ..posting.schedule import parse_when
from ..registry import load_valid
from ..registry.model import JST
from ..store import audit, open_store, posts
from ..store.engine import reading
from ..store.posts import Post
from .base import SECRET_DEFAULT, config_option, db_option, prepare_db
from .loading import context_of


@click.group()
def held() -> None:
    """List, show, approve, reject and withdraw posts that have not gone out."""


def _options(f: click.decorators.FC) -> click.decorators.FC:
    f = db_option(f)
    f = config_option(f)
    f = click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))(f)
    return click.option("--public-url", default=None)(f)


def _engine(db_url: str) -> sa.Engine:
    return open_store(prepare_db(db_url))


def _context(config_dir: Path, secret_file: Path, public_url: str | None) -> Context:
    return context_of(load_valid(config_dir), secret_file, public_url)


def _when(value: str) -> dt.datetime:
    if value == "now":
        return utcnow()
    at = parse_when(value)
    if at is None:
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"読み取れない日時です: {value}") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=JST)
    return at


@held.command("list")
@click.option("--all", "show_all", is_flag=True, help="also sent and ended posts")
@db_option
def held_list(show_all: bool, db_url: str) -> None:
    """One line per post: id, channel, state, send time, what holds it, subject."""
    engine = _engine(db_url)
    with reading(engine) as conn:
        found = posts.listing(conn, None if show_all else (*posts.PENDING, posts.PostState.SENDING))
        waiting = pending_of(conn, found)
    engine.dispose()  # its connections closed now, not whenever the collector runs
    for p in found:
        at = p.send_at.isoformat() if p.send_at else "-"
        hold = current(p)
        state = shown_state(p, waiting.get(p.id, 0))
        click.echo(f"{p.id}\t{p.channel}\t{state}\t{at}\t{hold.kind if hold else '-'}\t{p.subject}")


@held.command("show")
@click.argument("post_id", type=int)
@db_option
def held_show(post_id: int, db_url: str) -> None:
    """Everything recorded about one post: the post path's findings (sender, 第3条(2)
    requirements, send time, approval), the holds and the one in force, its delivery
    (queued, sent, deferred, failed), and its text."""
    engine = _engine(db_url)
    delivery = of_post(engine, post_id)
    engine.dispose()
    if delivery is None:
        raise click.ClickException(f"no post {post_id}")
    p = delivery.post
    click.echo(f"id: {p.id}")
    click.echo(f"channel: {p.channel}")
    click.echo(f"state: {delivery.state}")  # never `sent` while rows wait
    click.echo(counts(delivery))
    for name in [
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
        "release_owner",  # the daemon fanning it out, when several share the store
        "release_until",
    ]:
        value = getattr(p, name)
        click.echo(f"{name}: {value.isoformat() if isinstance(value, dt.datetime) else value}")
    click.echo("findings: " + json.dumps(p.findings, ensure_ascii=False))
    for line in _walk_and_holds(p):
        click.echo(line)
    click.echo("\n" + p.text)


def _walk_and_holds(p: Post) -> list[str]:
    """The post path's findings in the order they were made, each hold recorded since,
    and the hold in force (posting/path/, posting/holds/)."""
    lines = []
    for f in p.findings:
        if f["verdict"] == "hold" and f["rule"] in set(HoldKind):
            lines.append(f"hold recorded: {f.get('at', '-')} {f['rule']}: {f['message']}")
        else:
            message = f" {f['message']}" if f["message"] else ""
            lines.append(f"path: {f['rule']}: {f['verdict']}{message}")
    hold = current(p)
    lines.append(f"hold: {hold.kind}: {hold.note}" if hold else "hold: -")
    return lines


def _decide(
    db_url: str,
    ctx: Context,
    action: str,
    post_id: int,
    decide: Callable[[sa.Connection], Decided],
    detail: Callable[[Decided], str] = str,
) -> None:
    """One decision from the shell: made and audited in one transaction (第4条(3)), then
    answered as the reply and the web button answer it."""
    engine = _engine(db_url)
    with engine.begin() as conn:
        result = decide(conn)
        audit.record(conn, f"held.{action}", f"post#{post_id}", detail(result))
    engine.dispose()
    _decided(result)


def _decided(result: object) -> None:
    if result is Decided.UNKNOWN:
        raise click.ClickException("no such post")
    if result is Decided.TOO_LATE:
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
    ctx = _context(config_dir, secret_file, public_url)
    at = _when(send_at) if send_at else None
    _decide(
        db_url,
        ctx,
        "approve",
        post_id,
        lambda conn: decisions.approve(
            conn, ctx, post_id, approver=by, method="cli", send_at=at, reschedule=at is not None
        ),
        lambda result: f"{result} send_at={at}",
    )


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
    ctx = _context(config_dir, secret_file, public_url)
    _decide(
        db_url,
        ctx,
        "reject",
        post_id,
        lambda conn: decisions.reject(conn, ctx, post_id, by=by, reason=reason),
        lambda result: f"{result} {reason}",
    )


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
    ctx = _context(config_dir, secret_file, public_url)
    _decide(
        db_url,
        ctx,
        "withdraw",
        post_id,
        lambda conn: decisions.withdraw(conn, ctx, post_id, by=by, method="cli"),
    )
