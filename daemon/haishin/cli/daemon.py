"""The mail daemon: serve and demo."""

from __future__ import annotations

import dataclasses
import ssl
import sys
from pathlib import Path

import click

from ..delivery import signing
from ..delivery.dkim import DkimKey
from ..demo import run_demo
from ..inbound.imap.settings import ImapSettings
from ..inbound.sessions import LOOPBACK, SessionLimits
from ..outbound.sender import SendSettings
from ..posting.dnskeys import DnsSettings
from ..posting.release import ReleaseSettings
from ..registry import load_valid
from ..service import Daemon, Settings, configure_logging, parse_hostport, run
from ..tokens import load_keyring
from .base import (
    MAILDIR_DEFAULT,
    SECRET_DEFAULT,
    config_option,
    db_option,
    prepare_db,
)


def _print_ready(bound: dict[str, tuple[str, int]]) -> None:
    parts = " ".join(f"{k}={h}:{p}" for k, (h, p) in bound.items())
    click.echo(f"haishin: listening {parts}", nl=True)
    sys.stdout.flush()


@click.command()
@config_option
@db_option
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
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("var/imap-state.sqlite"),
    show_default=True,
    help="deprecated: the IMAP state now lives in the database (--db); a state file of an "
    "earlier version found here is imported once at start and renamed *.migrated",
)
@click.option(
    "--imap-ca",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="trust this CA for the IMAP server (default: the system's)",
)
@click.option(
    "--dkim-key",
    "dkim_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key (RSA-2048 or Ed25519) to sign posts with; repeatable",
)
@click.option(
    "--dkim-selector",
    "dkim_selectors",
    multiple=True,
    help="the selector of each --dkim-key, in the same order",
)
@click.option(
    "--archive",
    "archive_dir",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    hidden=True,
    help="no longer used: back numbers are kept in the store (`haishin site build --db`)",
)
@click.option(
    "--dns",
    "dns_servers",
    multiple=True,
    metavar="HOST:PORT",
    help="nameserver for DKIM key lookups (repeatable); default: the system resolver",
)
@click.option(
    "--dns-timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="seconds a DKIM key lookup may take in all; longer is a temporary failure",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="SMTP/LMTP sessions at once; more are answered 421 4.3.2 (kept below the file limit)",
)
@click.option(
    "--max-sessions-per-address",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="sessions at once from one client address; more are answered 421 4.7.0",
)
@click.option(
    "--frontend",
    "frontends",
    multiple=True,
    metavar="ADDRESS",
    help="a front-end MTA's address, held only to --max-sessions (repeatable; "
    "default 127.0.0.1 and ::1)",
)
@click.option("--retry-base", type=float, default=60.0, hidden=True)
@click.option("--housekeeping-after", type=float, default=600.0, hidden=True)
@click.option("--release-poll", type=float, default=1.0, hidden=True)
@click.option("--outbound-poll", type=float, default=1.0, hidden=True)
@click.option("--outage-poll", type=float, default=60.0, hidden=True)
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
    dkim_keys: tuple[Path, ...],
    dkim_selectors: tuple[str, ...],
    archive_dir: Path | None,
    dns_servers: tuple[str, ...],
    dns_timeout: float,
    max_sessions: int,
    max_sessions_per_address: int,
    frontends: tuple[str, ...],
    retry_base: float,
    housekeeping_after: float,
    release_poll: float,
    outbound_poll: float,
    outage_poll: float,
    send_batch: int,
    pace_scale: float,
    verbose: bool,
    log_format: str,
) -> None:
    """Run the mail daemon (SMTP/LMTP in, HTTP, worker, sender) until SIGTERM."""
    keyring = load_keyring(secret_file, create=True)
    configure_logging(keyring, verbose, json=log_format == "json")
    if archive_dir is not None:  # accepted so that an older unit still starts
        click.echo(
            "haishin: --archive は使われません。バックナンバーはデータベースにあり、"
            "`haishin site build --db` が読みます",
            err=True,
        )
    if public_url and not public_url.endswith("/"):
        public_url += "/"
    if len(dkim_keys) != len(dkim_selectors):
        raise click.UsageError("give one --dkim-selector for each --dkim-key")
    keys: tuple[DkimKey, ...] = ()
    if dkim_keys:
        service = load_valid(config_dir).service
        assert service is not None
        domain = service.value.mail_domain
        try:
            keys = tuple(
                DkimKey.from_file(domain, sel, path)
                for sel, path in zip(dkim_selectors, dkim_keys, strict=True)
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        # the signing workers start now, not at the first approval (delivery/signing.py)
        signing.signers(keys).warm()
    settings = Settings(
        config=config_dir,
        db_url=prepare_db(db_url, create=True),
        smtp=parse_hostport(smtp_addr),
        http=parse_hostport(http_addr),
        keyring=keyring,
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
        release=ReleaseSettings(dkim_keys=keys, poll=release_poll),
        housekeeping_after=housekeeping_after,
        send_poll=outbound_poll,
        outage_poll=outage_poll,
        imap=None,
        dns=DnsSettings(
            nameservers=tuple(parse_hostport(d) for d in dns_servers),
            timeout=min(2.0, dns_timeout),
            lifetime=dns_timeout,
        ),
        sessions=SessionLimits(
            per_address=max_sessions_per_address,
            overall=max_sessions,
            # a client on this machine is the front end (Postfix on loopback behind --lmtp)
            exempt=frozenset(frontends) if frontends else LOOPBACK,
        ),
    )
    if imap_url:
        context = ssl.create_default_context(cafile=str(imap_ca)) if imap_ca else None
        settings = dataclasses.replace(
            settings,
            imap=ImapSettings.from_url(imap_url, state_file=imap_state, ssl_context=context),
        )
    run(Daemon(settings, ready=_print_ready).run())


@click.command()
@config_option
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
    sys.exit(run_demo(config_dir, var_dir, smtp_addr, http_addr, check=check))


# --- subscribers (第5条(2): the 情報管理者 manages the channel's recipients) -------------
