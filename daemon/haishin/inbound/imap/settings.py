"""The IMAP ingester's settings (`--imap URL`): where to read, the password, the knobs.

Read once at the edge (cli/daemon.py) into one frozen `ImapSettings` (style.md 7); a URL,
password or TLS setting that cannot work is an `ImapConfigError`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ...errors import HaishinError

PASSWORD_ENV = "HAISHIN_IMAP_PASSWORD"
PASSWORD_FILE_ENV = "HAISHIN_IMAP_PASSWORD_FILE"


class ImapConfigError(HaishinError):
    """The --imap URL, its password or its TLS setting cannot work."""

    exit_code = 2


@dataclass(frozen=True)
class ImapEndpoint:
    """Where to read: parsed from `imaps://user@host[:port]/MAILBOX` or `imap://...`."""

    host: str
    port: int
    user: str
    mailbox: str
    implicit_tls: bool

    @classmethod
    def parse(cls, url: str) -> ImapEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps"):
            raise ImapConfigError(f"--imap wants imap:// or imaps://, not {parts.scheme!r}")
        if parts.password is not None:
            # A password in the URL ends up in `ps`, shell history and unit files.
            raise ImapConfigError(f"put the IMAP password in ${PASSWORD_ENV}, not in the URL")
        if not parts.hostname or not parts.username:
            raise ImapConfigError("--imap URL needs user@host, e.g. imaps://user@host/INBOX")
        try:
            port = parts.port
        except ValueError as exc:
            raise ImapConfigError(f"--imap URL: {exc}") from None
        # RFC 5092 URLs may carry ";AUTH=..." after the user; only the user name matters here.
        user = unquote(parts.username.split(";", 1)[0])
        mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
        tls = parts.scheme == "imaps"
        return cls(parts.hostname, port or (993 if tls else 143), user, mailbox, tls)

    def __str__(self) -> str:
        """The endpoint for logs: the user name is often a mail address, so it is left out."""
        scheme = "imaps" if self.implicit_tls else "imap"
        return f"{scheme}://{self.host}:{self.port}/{self.mailbox}"

    @property
    def state_id(self) -> str:
        """Names this mailbox in the store (a hash: the store need not hold the user). The
        same as in the former state file, whose rows are imported under it."""
        ident = f"{self.host}:{self.port}\0{self.user}\0{self.mailbox}".encode()
        return hashlib.sha256(ident).hexdigest()[:32]


def read_password(environ: Mapping[str, str] = os.environ) -> str:
    """The IMAP password from $HAISHIN_IMAP_PASSWORD or the file named by ..._FILE."""
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    path = environ.get(PASSWORD_FILE_ENV)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ImapConfigError(f"cannot read ${PASSWORD_FILE_ENV}: {exc.strerror}") from None
    raise ImapConfigError(f"--imap needs a password in ${PASSWORD_ENV} or ${PASSWORD_FILE_ENV}")


@dataclass(frozen=True)
class ImapSettings:
    """Everything the ingester needs, fixed at start; tests build their own."""

    endpoint: ImapEndpoint
    password: str = field(repr=False)
    ssl_context: ssl.SSLContext | None = None
    """None: the system's trust store with hostname checks, i.e. verification on."""
    use_idle: bool = True
    """IDLE (RFC 2177) when the server offers it; False forces polling."""
    poll_interval: float = 30.0
    idle_renew: float = 300.0
    """Leave and re-enter IDLE this often: RFC 2177 §3 asks for less than 29 minutes, and the
    round trip finds a dead connection that a silent network would hide."""
    processed_folder: str | None = None
    timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    dedupe_days: float = 30.0
    """How long the key of a stored message is remembered for deduplication."""
    standby_interval: float = 10.0
    """How often an ingester that another one keeps out of the mailbox looks again: at most
    this long after the reader stops or dies, a standby reads in its place."""
    state_file: Path | None = None
    """A former state file (`--imap-state`, before the state moved into the store): imported
    once before the first session, then renamed `*.migrated`."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        environ: Mapping[str, str] = os.environ,
        **options: Any,
    ) -> ImapSettings:
        return cls(ImapEndpoint.parse(url), read_password(environ), **options)


def is_loopback(host: str) -> bool:
    """A server on this machine: the only one a password may reach in clear (no network
    between us and it), so `imap://` without STARTTLS is refused anywhere else."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
