"""`haishin`: the command line. Errors inside are exceptions; here they become exit codes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

import click

from .errors import HaishinError, RegistryInvalid

CONFIG_DEFAULT = "config"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="haishin")
def cli() -> None:
    """川崎市電子メール配信サービス (haishin)."""


@cli.command()
@click.argument("config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
def check(config_dir: Path) -> None:
    """Validate the registry: every problem as path:line:col, exit 1 on any error."""
    from .registry import channel_states
    from .registry import check as run_check

    reg, problems = run_check(config_dir)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(p.is_error for p in problems)
    if errors:
        click.echo(f"エラー {errors} 件（警告 {len(problems) - errors} 件）", err=True)
        sys.exit(1)
    counts = Counter(s.state.value for s in channel_states(reg).values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(
        f"OK: チャネル {len(reg.channels)} 件（{summary}）、申請 {len(reg.applications)} 件、"
        f"停止記録 {len(reg.outages)} 件、警告 {len(problems)} 件"
    )


_config_option = click.option(
    "--config",
    "config_dir",
    default=CONFIG_DEFAULT,
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="the registry folder",
)
_date_option = click.option(
    "--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="decision date (default: today, JST)"
)


@cli.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@_date_option
@click.option("--notice-number", help="Form 2 number (default: the next in the office's series)")
@_config_option
def approve(
    number: str, by: str, on: dt.datetime | None, notice_number: str | None, config_dir: Path
) -> None:
    """Approve application NUMBER: write its Form 2 block (第6条2)."""
    from .registry.edit import decide

    path = decide(config_dir, number, "approved", by, on.date() if on else None, notice_number)
    click.echo(f"承認を記録しました: {path}")


@cli.command()
@click.argument("number")
@click.option("--by", required=True, help="the role that decides: general_manager (第6条2)")
@click.option("--reason", required=True, help="why the application is not approved")
@_date_option
@click.option("--notice-number", help="notice number (default: the next in the office's series)")
@_config_option
def reject(
    number: str,
    by: str,
    reason: str,
    on: dt.datetime | None,
    notice_number: str | None,
    config_dir: Path,
) -> None:
    """Reject application NUMBER: write its decision block with the reason."""
    from .registry.edit import decide

    path = decide(
        config_dir, number, "rejected", by, on.date() if on else None, notice_number, reason
    )
    click.echo(f"不承認を記録しました: {path}")


@cli.command()
@click.argument("number")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
@_config_option
def notice(number: str, output: Path | None, config_dir: Path) -> None:
    """Render the Form 2 notice (承認書) of application NUMBER as HTML."""
    from .registry import load_valid
    from .registry.notice import render_notice

    html = render_notice(load_valid(config_dir), number)
    if output is None:
        click.echo(html, nl=False)
    else:
        output.write_text(html, encoding="utf-8")
        click.echo(f"承認書を書き出しました: {output}", err=True)


@cli.group()
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
def site_build(config_dir: Path | None, output: Path, settings: Path, now: str | None) -> None:
    """Build the site; a registry that fails `haishin check` builds nothing."""
    from .site.build import build_site
    from .site.errors import SiteRegistryInvalid

    try:
        published = build_site(settings, output, config=config_dir, now=now)
    except SiteRegistryInvalid as exc:  # the problems were printed as `haishin check` does
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    click.echo(f"OK: {output} に公開サイトを作成しました（掲載チャネル {published} 件）")


# --- the daemon -------------------------------------------------------------------------

DB_DEFAULT = "sqlite:///var/haishin.db"
SECRET_DEFAULT = Path("var/secret")
MAILDIR_DEFAULT = Path("var/maildir")


def _prepare_db(url: str) -> str:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def _print_ready(bound: dict[str, tuple[str, int]]) -> None:
    parts = " ".join(f"{k}={h}:{p}" for k, (h, p) in bound.items())
    click.echo(f"haishin: listening {parts}", nl=True)
    sys.stdout.flush()


@cli.command()
@click.option(
    "--config",
    "config_dir",
    default=CONFIG_DEFAULT,
    type=click.Path(path_type=Path),
    show_default=True,
)
@click.option("--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL")
@click.option("--smtp", "smtp_addr", default="127.0.0.1:8025", show_default=True)
@click.option("--http", "http_addr", default="127.0.0.1:8080", show_default=True)
@click.option("--smarthost", default=None, help="HOST:PORT; without it mail goes to --maildir")
@click.option(
    "--maildir", default=MAILDIR_DEFAULT, type=click.Path(path_type=Path), show_default=True
)
@click.option("--lmtp", is_flag=True, help="speak LMTP (behind Postfix) instead of SMTP")
@click.option("--tls-cert", type=click.Path(exists=True, path_type=Path))
@click.option("--tls-key", type=click.Path(exists=True, path_type=Path))
@click.option("--public-url", default=None, help="base URL of the confirm pages")
@click.option(
    "--secret-file",
    default=SECRET_DEFAULT,
    type=click.Path(path_type=Path),
    show_default=True,
    help="token key file (or HAISHIN_SECRET / HAISHIN_SECRET_FILE)",
)
@click.option(
    "--static", type=click.Path(path_type=Path), default=None, help="a built site to serve"
)
@click.option(
    "--imap",
    "imap_url",
    default=None,
    help="also ingest imaps://user@host/INBOX (password: HAISHIN_IMAP_PASSWORD[_FILE])",
)
@click.option(
    "--imap-state",
    type=click.Path(path_type=Path),
    default=Path("var/imap-state.sqlite"),
    show_default=True,
    help="where the last UID and UIDVALIDITY are kept",
)
@click.option(
    "--imap-ca",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="trust this CA for the IMAP server (default: the system's)",
)
@click.option("--retry-base", type=float, default=60.0, hidden=True)
@click.option("--housekeeping-after", type=float, default=600.0, hidden=True)
@click.option("--outbound-poll", type=float, default=1.0, hidden=True)
@click.option("--send-batch", type=int, default=1000, hidden=True)
@click.option("--pace-scale", type=float, default=1.0, hidden=True)
@click.option("-v", "--verbose", is_flag=True)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def serve(
    config_dir: Path,
    db_url: str,
    smtp_addr: str,
    http_addr: str,
    smarthost: str | None,
    maildir: Path,
    lmtp: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    public_url: str | None,
    secret_file: Path,
    static: Path | None,
    imap_url: str | None,
    imap_state: Path,
    imap_ca: Path | None,
    retry_base: float,
    housekeeping_after: float,
    outbound_poll: float,
    send_batch: int,
    pace_scale: float,
    verbose: bool,
    log_format: str,
) -> None:
    """Run the mail daemon (SMTP/LMTP in, HTTP, worker, sender) until SIGTERM."""
    import asyncio
    import ssl

    from .inbound.imap import ImapSettings
    from .outbound.sender import SendSettings
    from .service import Daemon, Settings, configure_logging, parse_hostport
    from .tokens import load_keyring

    configure_logging(verbose, json=log_format == "json")
    if public_url and not public_url.endswith("/"):
        public_url += "/"
    settings = Settings(
        config=config_dir,
        db_url=_prepare_db(db_url),
        smtp=parse_hostport(smtp_addr),
        http=parse_hostport(http_addr),
        keyring=load_keyring(secret_file),
        send=SendSettings(
            smarthost=parse_hostport(smarthost) if smarthost else None,
            maildir=maildir,
            retry_base=retry_base,
            batch=send_batch,
            pace_scale=pace_scale,
        ),
        lmtp=lmtp,
        tls_cert=tls_cert,
        tls_key=tls_key,
        public_url=public_url,
        static=static,
        housekeeping_after=housekeeping_after,
        send_poll=outbound_poll,
        imap=None,
    )
    if imap_url:
        imap_state.parent.mkdir(parents=True, exist_ok=True)
        context = ssl.create_default_context(cafile=str(imap_ca)) if imap_ca else None
        settings = dataclasses.replace(
            settings,
            imap=ImapSettings.from_url(imap_url, state_path=imap_state, ssl_context=context),
        )
    asyncio.run(Daemon(settings, ready=_print_ready).run())


@cli.command()
@click.option(
    "--config",
    "config_dir",
    default=CONFIG_DEFAULT,
    type=click.Path(path_type=Path),
    show_default=True,
)
@click.option(
    "--var", "var_dir", default=Path("var"), type=click.Path(path_type=Path), show_default=True
)
@click.option("--smtp", "smtp_addr", default="127.0.0.1:8025", show_default=True)
@click.option("--http", "http_addr", default="127.0.0.1:8080", show_default=True)
@click.option(
    "--check", is_flag=True, help="self-test: one subscribe round trip over SMTP, then exit"
)
def demo(config_dir: Path, var_dir: Path, smtp_addr: str, http_addr: str, check: bool) -> None:
    """Run the daemon on loopback with the sample registry, SQLite and a maildir."""
    from .demo import run_demo

    sys.exit(run_demo(config_dir, var_dir, smtp_addr, http_addr, check=check))


# --- subscribers (第5条(2): the 情報管理者 manages the channel's recipients) -------------


@cli.group()
def subscribers() -> None:
    """List, count, export, remove and import a channel's subscribers."""


_db_option = click.option("--db", "db_url", default=DB_DEFAULT, show_default=True)


@subscribers.command("list")
@click.argument("channel")
@_db_option
@click.option("--status", default=None, help="pending | active | unsubscribed | disabled")
def subscribers_list(channel: str, db_url: str, status: str | None) -> None:
    """Print each subscriber: address, status, confirmed-at."""
    from .store import open_store
    from .store import subscribers as subs
    from .store.audit import record_now
    from .store.engine import reading

    engine = open_store(_prepare_db(db_url))
    record_now(engine, "subscribers.list", channel, f"status={status or 'all'}")
    with reading(engine) as conn:
        for s in subs.iterate(conn, channel, subs.Status(status) if status else None):
            confirmed = s.confirmed_at.isoformat() if s.confirmed_at else "-"
            click.echo(f"{s.address}\t{s.status}\t{confirmed}")


@subscribers.command("count")
@click.argument("channel")
@_db_option
def subscribers_count(channel: str, db_url: str) -> None:
    """Count subscribers per status."""
    from .store import open_store
    from .store import subscribers as subs
    from .store.engine import reading

    engine = open_store(_prepare_db(db_url))
    with reading(engine) as conn:
        counts = subs.count(conn, channel)
    for status, n in counts.items():
        click.echo(f"{status}\t{n}")


@subscribers.command("export")
@click.argument("channel")
@_db_option
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-")
def subscribers_export(channel: str, db_url: str, output: object) -> None:
    """CSV with the consent record of every subscriber (特定電子メール法)."""
    import csv

    from .store import open_store
    from .store import subscribers as subs
    from .store.audit import record_now
    from .store.engine import reading

    engine = open_store(_prepare_db(db_url))
    record_now(engine, "subscribers.export", channel)
    w = csv.writer(output)  # type: ignore[arg-type]
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


@subscribers.command("remove")
@click.argument("channel")
@click.argument("address")
@_db_option
@click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))
def subscribers_remove(channel: str, address: str, db_url: str, secret_file: Path) -> None:
    """Disable one subscriber (the record is kept)."""
    from .store import open_store
    from .store import subscribers as subs
    from .store.audit import record

    engine = open_store(_prepare_db(db_url))
    with engine.begin() as conn:
        removed = subs.remove(conn, channel, address)
        if removed:
            record(conn, "subscribers.remove", channel, _hashed(address, secret_file))
    if not removed:
        raise click.ClickException("no such subscriber")
    click.echo("removed")


@subscribers.command("import")
@click.argument("channel")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@_db_option
@click.option("--config", "config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
@click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))
@click.option("--public-url", default=None)
def subscribers_import(
    channel: str,
    file: object,
    db_url: str,
    config_dir: Path,
    secret_file: Path,
    public_url: str | None,
) -> None:
    """One address per line: each gets a confirmation request, none becomes active."""
    from .commands import membership
    from .commands.context import Context
    from .mailtext.mailbox import mailbox
    from .registry import load_valid
    from .router.addresses import Directory
    from .store import open_store
    from .store.audit import record_now
    from .tokens import load_keyring

    registry = load_valid(config_dir)
    if channel not in registry.channels:
        raise click.ClickException(f"unknown channel {channel}")
    assert registry.service is not None
    url = public_url or registry.service.value.site_url
    ctx = Context(
        Directory(registry), load_keyring(secret_file), url if url.endswith("/") else url + "/"
    )
    engine = open_store(_prepare_db(db_url))
    results: Counter[str] = Counter()
    for line in file:  # type: ignore[attr-defined]
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        address = mailbox(text.split(",")[0])
        if address is None:
            results["invalid"] += 1
            continue
        with engine.begin() as conn:
            outcome = membership.request_subscribe(
                conn, ctx, channel, address, origin="import by staff"
            )
        results[str(outcome)] += 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(results.items()))
    record_now(engine, "subscribers.import", channel, summary)
    click.echo(summary)


# --- registry sync (第8条: changes without downtime) ----------------------------------------


@cli.command("sync")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--config", "config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
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
    """Pull the registry; move the checkout only to a revision that passes check."""
    from .operations.sync import Result, pending, sync
    from .store.engine import open_store

    if only_check:
        sys.exit(0 if pending(repo, branch) else 1)
    engine = open_store(_prepare_db(db_url)) if db_url else None
    try:
        done = sync(repo, config_dir, branch=branch, engine=engine, reload_pid=reload_pid)
    finally:
        if engine is not None:
            engine.dispose()
    if done.result is Result.UP_TO_DATE:
        click.echo(f"変更なし（{done.old[:12]}）")
    elif done.result is Result.MOVED:
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


@cli.group()
def outage() -> None:
    """Stops of the service (第9条): notices and reports to the other party."""


@outage.command("notify")
@click.argument("outage_id")
@click.option("--config", "config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
@click.option("--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL")
def outage_notify(outage_id: str, config_dir: Path, db_url: str) -> None:
    """Mail the advance notice (planned) or the report (emergency) of OUTAGE_ID to the
    other party through the daemon's queue, and record it in the outage's file."""
    from .operations.outages import notify
    from .registry.model import ROLE_NAMES
    from .store.audit import record_now
    from .store.engine import open_store

    engine = open_store(_prepare_db(db_url))
    try:
        sent = notify(config_dir, outage_id, engine)
        record_now(engine, f"outage.{sent.kind}", outage_id, f"to={sent.to.value}")
    finally:
        engine.dispose()
    what = "事前通知" if sent.kind == "notice" else "停止報告"
    click.echo(
        f"{what}を {ROLE_NAMES[sent.to]} 宛てに送信待ちにし、{sent.at:%Y-%m-%d %H:%M} と記録しました"
    )


@cli.command("status")
@click.option("--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL")
@click.option(
    "--message",
    "message_id",
    type=int,
    default=None,
    help="one outbound message (a post): sent, deferred, failed, rate, eta",
)
def status_cmd(db_url: str, message_id: int | None) -> None:
    """The service at a glance: queues, delivery rate, deferrals, subscribers."""
    from .operations.status import describe, describe_progress, progress, snapshot
    from .store.engine import open_store

    engine = open_store(_prepare_db(db_url))
    try:
        if message_id is not None:
            click.echo(describe_progress(progress(engine, message_id)))
        else:
            click.echo(describe(snapshot(engine)))
    finally:
        engine.dispose()


@cli.command("purge")
@click.option("--config", "config_dir", default=CONFIG_DEFAULT, type=click.Path(path_type=Path))
@click.option("--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL")
@click.option("--secret-file", default=SECRET_DEFAULT, type=click.Path(path_type=Path))
def purge_cmd(config_dir: Path, db_url: str, secret_file: Path) -> None:
    """Remove personal data past its retention (第4条(3)); consent records are kept."""
    from .registry import load_valid
    from .store.audit import record_now
    from .store.engine import open_store
    from .store.retention import purge
    from .tokens import load_keyring

    reg = load_valid(config_dir)
    assert reg.service is not None
    engine = open_store(_prepare_db(db_url))
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


@cli.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL")
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="encrypt with this key (see backup-key)",
)
def backup_cmd(path: Path, db_url: str, key_file: Path | None) -> None:
    """Snapshot the store into PATH while the daemon runs (owner-only file)."""
    from .store.audit import record_now
    from .store.backup import backup

    header = backup(db_url, path, key_file)
    from .store.engine import open_store

    engine = open_store(_prepare_db(db_url))
    record_now(engine, "backup", str(path), f"{header.engine} {header.protection}")
    engine.dispose()
    click.echo(f"バックアップを作成しました: {path}（{header.engine}, {header.protection}）")


@cli.command("restore")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--db", "db_url", required=True, help="an empty store (SQLAlchemy URL)")
@click.option("--key-file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def restore_cmd(path: Path, db_url: str, key_file: Path | None) -> None:
    """Bring the backup PATH into the empty store at --db."""
    from .store.audit import record_now
    from .store.backup import restore

    restore(path, _prepare_db(db_url), key_file)
    from .store.engine import open_store

    engine = open_store(db_url)
    record_now(engine, "restore", str(path))
    engine.dispose()
    click.echo(f"復元しました: {db_url}")


@cli.command("backup-key")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def backup_key(path: Path) -> None:
    """Create a new 256-bit key file for encrypted backups (owner-only; never overwrites)."""
    from .store.sealed import new_key

    try:
        new_key(path)
    except FileExistsError:
        raise click.ClickException(f"{path} はすでにあります（鍵は上書きしません）") from None
    click.echo(f"鍵を作成しました: {path}（なくすとバックアップを復元できません）")


@cli.command("audit")
@click.option("--db", "db_url", default=DB_DEFAULT, show_default=True, help="SQLAlchemy URL")
@click.option("--days", type=int, default=30, show_default=True)
def audit_cmd(db_url: str, days: int) -> None:
    """The audit log of administrative actions (第4条(3)): when, who, what."""
    from .store.audit import entries
    from .store.clock import utcnow
    from .store.engine import open_store

    engine = open_store(_prepare_db(db_url))
    try:
        for e in entries(engine, utcnow() - dt.timedelta(days=days)):
            click.echo(
                f"{e.at:%Y-%m-%d %H:%M:%S}\t{e.actor}\t{e.action}\t{e.target}\t{e.detail or ''}"
            )
    finally:
        engine.dispose()


def _hashed(address: str, secret_file: Path) -> str:
    from .tokens import load_keyring

    return load_keyring(secret_file).redact(address)


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
