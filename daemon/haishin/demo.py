"""`haishin demo`: the daemon on loopback with the sample registry, SQLite and a maildir.

With `--check` it runs a self-test instead of waiting for Ctrl-C: an empty mail to a
channel's subscribe address over real SMTP, the confirmation read from the maildir, a
reply to it, the welcome read back; exit 0 when all of that happened.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import tempfile
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import click

from .outbound.sender import SendSettings
from .posting.release import ReleaseSettings
from .registry import channel_states, load_valid
from .service import Daemon, Settings, configure_logging, parse_hostport, run
from .tokens import load_keyring

CHECK_TIMEOUT = 30.0


def _free(addr: tuple[str, int]) -> tuple[str, int]:
    """The wanted port if it is free, else one from the OS (a second demo still starts)."""
    with socket.socket() as s:
        try:
            s.bind(addr)
        except OSError:
            return addr[0], 0
    return addr


def _maildir_messages(root: Path) -> list[EmailMessage]:
    new = root / "new"
    if not new.is_dir():
        return []
    out = []
    for path in sorted(new.iterdir()):
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def _wait_for(root: Path, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + CHECK_TIMEOUT
    while time.monotonic() < deadline:
        found = _maildir_messages(root)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise TimeoutError(
        f"expected {count} message(s) in {root}, found {len(_maildir_messages(root))}"
    )


def _round_trip(smtp: tuple[str, int], subscribe: str, maildir: Path) -> str:
    citizen = f"demo-{uuid.uuid4().hex[:8]}@example.jp"
    with smtplib.SMTP(*smtp) as client:
        client.sendmail(citizen, [subscribe], b"Subject: \r\n\r\n")
    confirmation = _wait_for(maildir, 1)[-1]
    reply_to = str(confirmation["Reply-To"])
    reply = EmailMessage()
    reply["From"] = citizen
    reply["To"] = reply_to
    reply["Subject"] = "Re: " + str(confirmation["Subject"])
    reply.set_content("")
    with smtplib.SMTP(*smtp) as client:
        client.send_message(reply, from_addr=citizen, to_addrs=[reply_to])
    welcome = _wait_for(maildir, 2)[-1]
    return str(welcome["Subject"])


def _build_site(config: Path, output: Path) -> Path | None:
    """The public site (第7条) from the same registry, served on the demo's HTTP port."""
    settings = Path("pelicanconf.py")
    if not settings.is_file():
        click.echo("（pelicanconf.py がないため、公開サイトは作りません）", err=True)
        return None
    import logging

    from .site.build import build_site

    logging.getLogger("pelican").setLevel(logging.WARNING)  # one line, not one per page
    published = build_site(settings, output, config=config)
    click.echo(f"公開サイトを作成しました: {output}（掲載チャネル {published} 件）")
    return output


def run_demo(config: Path, var: Path, smtp_addr: str, http_addr: str, *, check: bool) -> int:
    registry = load_valid(config)
    assert registry.service is not None
    service = registry.service.value
    active = [slug for slug, st in channel_states(registry).items() if st.state == "active"]
    slug = active[0]
    scratch = Path(tempfile.mkdtemp(prefix="haishin-demo-")) if check else var
    scratch.mkdir(parents=True, exist_ok=True)
    keyring = load_keyring(scratch / "secret", create=True)
    configure_logging(keyring)
    maildir = scratch / "maildir"
    output = _build_site(config, scratch / "site")
    settings = Settings(
        config=config,
        db_url=f"sqlite:///{scratch / 'haishin.db'}",
        smtp=(parse_hostport(smtp_addr)[0], 0) if check else _free(parse_hostport(smtp_addr)),
        http=(parse_hostport(http_addr)[0], 0) if check else _free(parse_hostport(http_addr)),
        keyring=keyring,
        send=SendSettings(smarthost=None, maildir=maildir),
        static=output,
        # a demo's back numbers stay in its own store (scratch), as any daemon's do
        release=ReleaseSettings(),
    )
    subscribe = f"{slug}-subscribe@{service.mail_domain}"
    result: dict[str, str] = {}

    async def main() -> None:
        bound: dict[str, tuple[str, int]] = {}
        daemon = Daemon(settings, ready=bound.update)
        task = asyncio.create_task(daemon.run())
        while not bound and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            await task
        smtp = bound["smtp"]
        http = bound["http"]
        if not check:
            click.echo(
                f"\nhaishin demo: {service.name}（見本の登録簿 {config}/）\n"
                f"  SMTP  {smtp[0]}:{smtp[1]}  宛先の例: {subscribe}（空メールで登録）\n"
                f"  試す:  python3 -c \"import smtplib; smtplib.SMTP('{smtp[0]}', {smtp[1]})"
                f".sendmail('you@example.jp', ['{subscribe}'], 'Subject: hi\\r\\n\\r\\n')\"\n"
                f"  マイページ: mypage@{service.mail_domain} へ空メール（チャネルをまとめて登録・変更）\n"
                f"  返事:  {maildir}/new/ に届きます（Maildir）\n"
                f"  Web:   http://{http[0]}:{http[1]}/healthz"
                f"{f'  サイト: http://{http[0]}:{http[1]}/' if settings.static else ''}\n"
                "  止める: Ctrl-C\n"
            )
            await task
            return
        try:
            result["welcome"] = await asyncio.to_thread(_round_trip, smtp, subscribe, maildir)
        finally:
            daemon.stop()
            await task

    run(main())
    if check:
        click.echo(f"haishin demo --check: OK ({result.get('welcome', '')})")
    return 0
