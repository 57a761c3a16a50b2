"""What the ingester needs of imapclient and of the protocol: connecting, reading untagged
responses that imapclient leaves aside, the content key of a message, log-safe text."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from typing import Any

from imapclient import IMAPClient  # type: ignore[import-untyped]

from ...errors import HaishinError
from .settings import ImapConfigError, ImapSettings, is_loopback


class SessionTrouble(HaishinError):
    """The server sent an untagged NO or BYE: start a new session rather than trust this one."""


def message_key(raw: bytes) -> str:
    """The dedupe key of a message: SHA-256 of its exact bytes.

    A content hash covers Message-ID and size and more: a copy that reappears after a
    UIDVALIDITY change has the same bytes (IMAP returns a message's octets unchanged, RFC 3501
    §2.3.1.1 and §6.4.5), while two different mails that happen to share a Message-ID (a
    forged one, or a careless mailer reusing one) are not merged.
    """
    return hashlib.sha256(raw).hexdigest()


def connect(s: ImapSettings) -> Any:
    """A logged-in client: TLS verified (implicit, or STARTTLS), never a password in clear
    off this machine."""
    ep = s.endpoint
    context = s.ssl_context or ssl.create_default_context()
    client = IMAPClient(
        ep.host, port=ep.port, ssl=ep.implicit_tls, ssl_context=context, timeout=s.timeout
    )
    try:
        if not ep.implicit_tls:
            if client.has_capability("STARTTLS"):
                client.starttls(context)  # RFC 3501 §6.2.1; verified like imaps
            elif not is_loopback(ep.host):
                raise ImapConfigError(
                    "the server offers no STARTTLS: refusing to send the password in "
                    "clear; use imaps://"
                )
        client.login(ep.user, s.password)
    except BaseException:
        close(client)
        raise
    return client


def check_untagged(responses: list[Any]) -> None:
    """Raise on an untagged NO or BYE (RFC 3501 §7.1.2, §7.1.5).

    A NO is formally a warning, but Dovecot uses it to say that the selected mailbox was
    deleted under us: a fresh session then sees the new mailbox and its new UIDVALIDITY.
    Reconnecting costs little; trusting a broken session could hide new mail indefinitely.
    """
    for r in responses:
        if isinstance(r, tuple) and r and r[0] in (b"NO", b"BYE"):
            text = r[1].decode(errors="replace") if len(r) > 1 and isinstance(r[1], bytes) else ""
            raise SessionTrouble(f"server said {r[0].decode()}: {text}")


def announced(client: Any) -> bool:
    """Whether the server sent EXISTS (new mail) or FETCH (flags another client changed:
    a \\Deleted taken back makes a message ours to take again) since the last call, and
    forget it.

    RFC 3501 §7.3.1 lets a server send EXISTS during any command. Dovecot announces a message
    that arrived while SEARCH ran at the end of that SEARCH, whose result did not include
    it, and it does not announce the message again in the IDLE that follows: without this
    check the message would wait for the next renewal of IDLE. imapclient leaves such
    responses in imaplib's `untagged_responses`, which is where we look.
    """
    untagged = client._imap.untagged_responses
    # RFC 3501 §7.4.2: a flag change by another session is reported as FETCH during any
    # later command (our own STOREs are .SILENT); if it came during the commands that
    # mark a message, the IDLE that follows does not report it again.
    news = [untagged.pop(kind, None) for kind in ("EXISTS", "FETCH")]
    return any(n is not None for n in news)


def buffered(client: Any, timeout: float) -> bool:
    """Whether imaplib's reader holds bytes that a poll() on the socket cannot see.

    A message that arrives just before IDLE is announced right after "+ idling", often in
    the same TCP segment; imaplib's buffered reader then takes both, and imapclient's
    idle_check(), which polls the socket, would not see the EXISTS until the server next
    sends something (Dovecot: minutes). Peeking at the buffer without blocking finds it.
    """
    sock = client.socket()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def close(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()
