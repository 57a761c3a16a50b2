"""Operating the service: sync, outages, status, purge, backups, audit (第4条・第8条・第9条)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from ..clock import utcnow
from ..errors import HaishinError
from ..operations import announce, outage_status
from ..operations.daemons import daemons, describe_daemons
from ..operations.outages import Announcement, text
from ..operations.post_progress import describe_post, follow, of_post
from ..operations.status import describe, snapshot
from ..operations.sync import SyncResult, pending, sync
from ..registry import load, load_valid
from ..registry.model import JST
from ..store import outage_notices
from ..store.audit import entries, record_now
from ..store.backup import backup, restore
from ..store.engine import open_store
from ..store.outage_notices import Forced
from ..store.retention import purge
from ..store.sealed import new_key
from ..tokens import load_keyring
from .base import (
    SECRET_DEFAULT,
    config_option,
    db_option,
    prepare_db,
)

# --- registry sync (第8条: changes without downtime) ----------------------------------------


@click.command("sync")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@config_option
@click.option("--branch", default="main", show_default=True)
@click.option(
    "--db", "db_url", default=None, help="queue the refusal mail here (the daemon's store)"
)
@click.option("--pid", "reload_pid", type=int, default=None, help="send SIGHUP to this daemon")
@click.option("--check", "only_check", is_flag=True, help="exit 0 if origin has moved, else 1")
def sync_cmd(
    repo: Path,
    config_dir: Path,
    branch: str,
    db_url: str | None,
    reload_pid: int | None,
    only_check: bool,
) -> None:
    """Pull the registry; move the checkout only to a revision that passes check.

    --config is the registry folder inside --repo (e.g. --config config)."""
    if only_check:
        # systemd's ExecCondition= skips the unit on 1..254: an error must be 255, or a
        # broken deploy key would silently stop every sync
        try:
            sys.exit(0 if pending(repo, branch) else 1)
        except HaishinError as exc:
            click.echo(f"haishin: {exc}", err=True)
            sys.exit(255)
    engine = open_store(prepare_db(db_url)) if db_url else None
    try:
        done = sync(repo, config_dir, branch=branch, engine=engine, reload_pid=reload_pid)
    finally:
        if engine is not None:
            engine.dispose()
    if done.result is SyncResult.UP_TO_DATE:
        click.echo(f"変更なし（{done.old[:12]}）")
    elif done.result is SyncResult.MOVED:
        click.echo(f"登録情報を {done.old[:12]} から {done.new[:12]} に更新しました")
    else:
        for line in done.problems:
            click.echo(line, err=True)
        note = "、統括管理者に通知しました" if done.mailed else ""
        click.echo(
            f"haishin: {done.new[:12]} は検査に通らないため反映しません（{done.old[:12]} のまま{note}）",
            err=True,
        )
        sys.exit(1)


# --- outages (第9条) -----------------------------------------------------------------------


@click.group()
def outage() -> None:
    """Stops of the service (第9条): notices and reports to the other party."""


@outage.command("list")
@db_option
def outage_list(db_url: str) -> None:
    """The stops the daemon knows and their notices or reports (the store only)."""
    engine = open_store(prepare_db(db_url))
    try:
        now = utcnow()
        records = outage_status.current(engine, now, days=366)
    finally:
        engine.dispose()
    for line in outage_status.describe(records, now):
        click.echo(line)


@outage.command("notify")
@click.argument("outage_id")
@db_option
def outage_notify(outage_id: str, db_url: str) -> None:
    """Make OUTAGE_ID's notice or report due now (or again, after a failed send); the
    daemon sends it within a minute and records it. Needs only the daemon's store."""
    engine = open_store(prepare_db(db_url))
    try:
        with engine.begin() as conn:
            done, kind = outage_notices.force(conn, outage_id, utcnow())
        if done is Forced.DUE_NOW:
            record_now(engine, f"outage.{kind}.force", outage_id)
    finally:
        engine.dispose()
    what = outage_status.KIND_NAMES.get(kind or "", "通知・報告")
    answer = {
        Forced.DUE_NOW: f"{outage_id} の{what}を今すぐ送るよう記録しました。配信サーバーが 1 分以内に送ります",
        Forced.UNKNOWN: f"停止記録 {outage_id} は配信サーバーの登録情報にまだありません"
        "（マージして haishin sync で反映されると、配信サーバーが送ります）",
        Forced.SENT: f"{outage_id} の{what}は送信済みか送信待ちです（haishin outage list）",
        Forced.RECORDED: f"{outage_id} の{what}は登録情報のファイルに記録済みです（送りません）",
        Forced.STARTED: f"{outage_id} の停止はすでに始まっています。事前の通知はできません: "
        "kind: emergency にして停止後の報告をしてください（第9条ただし書）",
    }[done]
    if done is not Forced.DUE_NOW:
        raise click.ClickException(answer)
    click.echo(answer)


@outage.command("preview")
@click.argument("outage_id")
@config_option
def outage_preview(outage_id: str, config_dir: Path) -> None:
    """Show when the daemon will send OUTAGE_ID's notice or report, and its text (the
    registry folder only: for review before the merge)."""
    reg, _problems = load(config_dir)
    located = reg.outages.get(outage_id)
    owed = [o for o in announce.owed(reg) if o.outage_id == outage_id]
    if located is None or reg.service is None or not owed:
        raise click.ClickException(
            f"停止記録 {outage_id} が見つからないか、読めません（haishin check {config_dir}）"
        )
    kind = Announcement(owed[0].kind)
    what = outage_status.KIND_NAMES[kind.value]
    if owed[0].recorded_at is not None:
        click.echo(f"{what}はファイルに記録済みです（配信サーバーは送りません）")
    else:
        when = owed[0].due_at.astimezone(JST)
        click.echo(f"{what}: マージ後、{when:%Y-%m-%d %H:%M} 以降に配信サーバーが送ります")
    subject, body = text(reg.service.value, located.value, kind)
    click.echo(f"件名: {subject}\n\n{body}")


@click.command("status")
@db_option
@click.option(
    "--message",
    "message_id",
    type=int,
    default=None,
    metavar="ID",
    help="one post (the id of `haishin held`, post#ID in the logs): sent, deferred, failed, "
    "rate, eta",
)
@click.option(
    "--follow",
    is_flag=True,
    help="with --message: a live progress line (sent / total, rate, eta) until it is done",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="seconds between the lines of --follow",
)
def status_cmd(db_url: str, message_id: int | None, follow: bool, interval: float) -> None:
    """The service at a glance: queues, delivery rate, deferrals, subscribers."""
    if follow and message_id is None:
        raise click.UsageError("--follow needs --message ID")
    engine = open_store(prepare_db(db_url))
    try:
        if message_id is not None:
            _post_status(engine, message_id, follow, interval)
        else:
            click.echo(describe(snapshot(engine)))
            click.echo(describe_daemons(daemons(engine)))
    finally:
        engine.dispose()


def _post_status(engine: sa.Engine, post_id: int, live: bool, interval: float) -> None:
    if not live:
        found = of_post(engine, post_id)
        if found is None:
            raise click.ClickException(f"post#{post_id} はありません")
        click.echo(describe_post(found))
        return
    # On a terminal the line is redrawn in place; into a pipe or a file, one line each time.
    tty = sys.stdout.isatty()

    def show(line: str) -> None:
        click.echo(f"\r\x1b[K{line}" if tty else line, nl=not tty)

    if follow(engine, post_id, show, interval=interval) is None:
        raise click.ClickException(f"post#{post_id} はありません")
    if tty:
        click.echo()


@click.command("purge")
@config_option
@db_option
@click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))
def purge_cmd(config_dir: Path, db_url: str, secret_file: Path) -> None:
    """Remove personal data past its retention (第4条(3)); consent records are kept."""
    reg = load_valid(config_dir)
    assert reg.service is not None
    engine = open_store(prepare_db(db_url))
    try:
        done = purge(engine, load_keyring(secret_file).key, reg.service.value.limits)
        record_now(engine, "purge", "store", str(done))
    finally:
        engine.dispose()
    click.echo(
        f"消去: 解除済みアドレス {done.subscribers} 件、確認依頼 {done.confirmations} 件、"
        f"受信メール {done.inbound} 通、送信記録 {done.outbound} 件"
    )


# --- backups (第4条(2)) -------------------------------------------------------------------


@click.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@db_option
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="encrypt with this key (see backup-key)",
)
@click.option("--force", is_flag=True, help="replace an existing backup file at PATH")
def backup_cmd(path: Path, db_url: str, key_file: Path | None, force: bool) -> None:
    """Snapshot the store into PATH while the daemon runs (owner-only file)."""
    header = backup(db_url, path, key_file, force=force)
    engine = open_store(prepare_db(db_url))
    record_now(engine, "backup", str(path), f"{header.engine} {header.protection}")
    engine.dispose()
    click.echo(f"バックアップを作成しました: {path}（{header.engine}, {header.protection}）")


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--db", "db_url", required=True, help="an empty store (SQLAlchemy URL)")
@click.option("--key-file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def restore_cmd(path: Path, db_url: str, key_file: Path | None) -> None:
    """Bring the backup PATH into the empty store at --db."""
    restore(path, prepare_db(db_url, create=True), key_file)
    engine = open_store(db_url)
    record_now(engine, "restore", str(path))
    engine.dispose()
    click.echo(f"復元しました: {db_url}")


@click.command("backup-key")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def backup_key(path: Path) -> None:
    """Create a new 256-bit key file for encrypted backups (owner-only; never overwrites)."""
    try:
        new_key(path)
    except FileExistsError:
        raise click.ClickException(f"{path} はすでにあります（鍵は上書きしません）") from None
    click.echo(f"鍵を作成しました: {path}（なくすとバックアップを復元できません）")


@click.command("audit")
@db_option
@click.option("--days", type=int, default=30, show_default=True)
def audit_cmd(db_url: str, days: int) -> None:
    """The audit log of administrative actions (第4条(3)): when, who, what."""
    engine = open_store(prepare_db(db_url))
    try:
        for e in entries(engine, utcnow() - dt.timedelta(days=days)):
            click.echo(
                f"{e.at:%Y-%m-%d %H:%M:%S}\t{e.actor}\t{e.action}\t{e.target}\t{e.detail or ''}"
            )
    finally:
        engine.dispose()
