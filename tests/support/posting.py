"""Helpers for the posting tests: subscribers in every state, posts, DKIM keys, the store."""

from __future__ import annotations

import datetime as dt
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from haishin.delivery.dkim import DkimKey
from haishin.store import posts
from haishin.store import subscribers as subs
from haishin.store.posts import Post, PostState
from support import helpers, smarthost
from support.helpers import DOMAIN

SLUG = "gomi-recycle"
SENDER = "genryo@city.kawasaki.example.jp"  # the channel's registered sender
ACTIVE = ("abc..def@docomo.ne.jp", "Taro@Example.JP", "hanako@ezweb.ne.jp")
PENDING = "pending@example.jp"
UNSUBSCRIBED = "gone@example.jp"
DISABLED = "disabled@example.jp"
EVERYONE = (*ACTIVE, PENDING, UNSUBSCRIBED, DISABLED)


@dataclass(frozen=True)
class Keys:
    rsa: DkimKey
    ed: DkimKey
    args: list[str]

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        selector = name.split(b".")[0]
        return (self.rsa if selector == self.rsa.selector else self.ed).public_txt()


def dkim_keys(tmp: Path) -> Keys:
    """An RSA-2048 and an Ed25519 key in PEM files, as `serve --dkim-key` reads them."""
    made = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }
    args: list[str] = []
    for selector, key in made.items():
        path = tmp / f"{selector}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        args += ["--dkim-key", str(path), "--dkim-selector", selector]
    domain = DOMAIN.encode()
    return Keys(DkimKey(domain, b"rsa", made["rsa"]), DkimKey(domain, b"ed", made["ed"]), args)


def populate(engine: sa.Engine, slug: str = SLUG) -> None:
    """Subscribers in every state: only ACTIVE may receive a post."""
    with engine.begin() as conn:
        for address in ACTIVE:
            subs.activate(conn, slug, address, method="test", evidence="test")
        subs.ensure_pending(conn, slug, PENDING)
        gone = subs.activate(conn, slug, UNSUBSCRIBED, method="test", evidence="test")
        subs.unsubscribe(conn, gone.id, method="test")
        subs.activate(conn, slug, DISABLED, method="test", evidence="test")
        subs.remove(conn, slug, DISABLED)


def post_message(
    subject: str,
    text: str,
    *,
    sender: str = SENDER,
    slug: str = SLUG,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = f"{slug}@{DOMAIN}"
    msg["Subject"] = subject
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(text)
    return msg


def send(d: helpers.Daemon, msg: EmailMessage | bytes, sender: str = SENDER) -> None:
    raw = msg if isinstance(msg, bytes) else msg.as_bytes(policy=policy.SMTP)
    rcpt = f"{SLUG}@{DOMAIN}"
    if isinstance(msg, EmailMessage):
        rcpt = str(msg["To"])
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail(sender, [rcpt], raw)


def send_to(d: helpers.Daemon, rcpt: str, raw: bytes, sender: str = SENDER) -> None:
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail(sender, [rcpt], raw)


def http(d: helpers.Daemon, url: str, data: bytes | None = None) -> tuple[int, str]:
    if not url.startswith("http"):
        url = f"http://{d.http[0]}:{d.http[1]}{url}"
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post_row(engine: sa.Engine, post_id: int | None = None) -> dict[str, object] | None:
    """The newest post (or post `post_id`) as a dict."""
    with engine.connect() as c:
        query = "SELECT * FROM posts " + (
            "WHERE id = :i" if post_id else "ORDER BY id DESC LIMIT 1"
        )
        row = c.execute(sa.text(query), {"i": post_id}).mappings().first()
    return dict(row) if row else None


def state(engine: sa.Engine, post_id: int) -> str | None:
    row = post_row(engine, post_id)
    return str(row["state"]) if row else None


def delivered(sink: smarthost.Sink, slug: str = SLUG) -> list[smarthost.Received]:
    """Messages of a post (VERP return path), as opposed to replies to staff."""
    with sink.cond:
        return [m for m in sink.messages if m.mail_from.startswith(f"{slug}-bounces+")]


def to(sink: smarthost.Sink, rcpt: str, fragment: str) -> list[smarthost.Received]:
    return [m for m in sink.to(rcpt) if fragment in str(m.msg["Subject"])]


def wait_mail(sink: smarthost.Sink, rcpt: str, fragment: str, count: int = 1) -> smarthost.Received:
    found = helpers.wait_until(
        lambda: len(to(sink, rcpt, fragment)) >= count and to(sink, rcpt, fragment),
        what=f"mail '{fragment}' to {rcpt}",
    )
    return found[count - 1]  # type: ignore[no-any-return]


def body(m: smarthost.Received) -> str:
    part = m.msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def approved_post(
    conn: sa.Connection, ttl: dt.timedelta, slug: str = SLUG, subject: str = "お知らせ"
) -> Post:
    """An approved post of `slug` from the department's registered sender, as the store
    holds it once its 情報管理者 said yes (for tests that start at the release)."""
    return posts.create(
        conn,
        channel=slug,
        spool_id=None,
        sender="genryo@city.kawasaki.example.jp",
        subject=subject,
        text="本文です。\n",
        html=None,
        message_id=None,
        state=PostState.APPROVED,
        approval="confirm",
        findings=[],
        send_at=None,
        ttl=ttl,
    )
