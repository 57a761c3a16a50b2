"""HMAC tokens for confirm, unsubscribe and VERP addresses (design.md, address contract).

A token is 16 bytes in lower-case base32 (26 characters, `addresses.TOKEN_MAX_LEN`):

    3 bytes  expiry, in hours since 2020-01-01 UTC  (good until the 2900s)
    5 bytes  the id it stands for (a confirmation, a subscriber, an outbound row)
    8 bytes  HMAC-SHA256 over purpose, expiry and id, truncated

Base32 survives a mail server that lowercases the local part; the purpose is inside the
MAC, so an unsubscribe token cannot be used as a confirmation. The key comes from the
environment (HAISHIN_SECRET) or a file, never from config/ (design.md, CLI contract).
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import redact
from .addresses import TOKEN_MAX_LEN
from .errors import HaishinError

EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
TOKEN_LEN = 26
assert TOKEN_LEN <= TOKEN_MAX_LEN
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z2-7]{26})(?![A-Za-z0-9])")
"""A token standing alone in a subject, a body or an address."""

ENV_SECRET = "HAISHIN_SECRET"
ENV_SECRET_FILE = "HAISHIN_SECRET_FILE"


_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 §6, lower case
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)
"""Every 10 bits as two base32 letters: a token is 13 look-ups, not the standard
library's loop over 5-byte groups (base64.b32encode is pure Python on 3.11), since a
fan-out makes two tokens per recipient."""


def _encode(raw: bytes) -> str:
    """The 16 bytes of a token in lower-case base32 without padding: the same letters as
    `base64.b32encode(raw).decode().rstrip("=").lower()` (tests/test_tokens.py)."""
    n = int.from_bytes(raw, "big") << 2  # 128 bits as 26 letters of 5 bits: 2 zero bits
    p = _B32_PAIRS
    return "".join(
        (
            p[n >> 120],
            p[(n >> 110) & 1023],
            p[(n >> 100) & 1023],
            p[(n >> 90) & 1023],
            p[(n >> 80) & 1023],
            p[(n >> 70) & 1023],
            p[(n >> 60) & 1023],
            p[(n >> 50) & 1023],
            p[(n >> 40) & 1023],
            p[(n >> 30) & 1023],
            p[(n >> 20) & 1023],
            p[(n >> 10) & 1023],
            p[n & 1023],
        )
    )


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    POST_APPROVE = "post-approve"  # approves (or withdraws) a held post: to who approves
    POST_WITHDRAW = "post-withdraw"  # only withdraws: to the sender in `manager` mode
    VERP = "verp"  # a post's return path, per subscriber: `<slug>-bounces+<token>@`
    MYPAGE = "mypage"  # the citizen's own page `/me/<token>`: a link row, bound to an address
    MOVE = "move"  # confirms an address change: a move row (old and new address), to the new


class Verdict(enum.StrEnum):
    OK = "ok"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class Opened:
    verdict: Verdict
    ident: int = 0
    expires: dt.datetime | None = None


@dataclass(frozen=True)
class Keyring:
    """The secret key; frozen and passed in, never a global."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("the token key must be at least 16 bytes")

    def _mac(self, purpose: Purpose, body: bytes) -> bytes:
        return hmac.new(self.key, purpose.encode() + b"\0" + body, hashlib.sha256).digest()[:8]

    def make(self, purpose: Purpose, ident: int, expires: dt.datetime) -> str:
        return self.maker(purpose, expires)(ident)

    def maker(self, purpose: Purpose, expires: dt.datetime) -> Callable[[int], str]:
        """`make` for many idents of one purpose and expiry (a fan-out batch): the HMAC's
        keyed state and the expiry's bytes are worked out once, each token copies them."""
        hours = max(0, int((expires - EPOCH).total_seconds() // 3600) + 1)
        head = hours.to_bytes(3, "big")
        keyed = hmac.new(self.key, purpose.encode() + b"\0" + head, hashlib.sha256)

        def token(ident: int) -> str:
            body = ident.to_bytes(5, "big")
            mac = keyed.copy()
            mac.update(body)
            return _encode(head + body + mac.digest()[:8])

        return token

    def open(self, purpose: Purpose, token: str, now: dt.datetime) -> Opened:
        """Check a token (case-insensitive); expired and forged are results, not errors."""
        if len(token) != TOKEN_LEN:
            return Opened(Verdict.INVALID)
        try:
            raw = base64.b32decode(token.upper() + "======")
        except ValueError:  # binascii.Error is a ValueError
            return Opened(Verdict.INVALID)
        if base64.b32encode(raw).decode().rstrip("=") != token.upper():
            # the last character carries 2 bits the 16 bytes do not use, which b32decode
            # ignores: one spelling per token, so a used or refused token has no others
            return Opened(Verdict.INVALID)
        body, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return Opened(Verdict.INVALID)
        expires = EPOCH + dt.timedelta(hours=int.from_bytes(body[:3], "big"))
        ident = int.from_bytes(body[3:], "big")
        if now >= expires:
            return Opened(Verdict.EXPIRED, ident, expires)
        return Opened(Verdict.OK, ident, expires)

    def redact(self, address: str) -> str:
        """An address as logs show it: its keyed mark (redact.py, 第4条)."""
        return redact.mark(self.key, address)


def find_tokens(text: str) -> list[str]:
    return [m.group(1).lower() for m in TOKEN_RE.finditer(text)]


class KeyMissing(HaishinError):
    exit_code = 2


def load_keyring(secret_file: Path | None = None, *, create: bool = False) -> Keyring:
    """HAISHIN_SECRET, else HAISHIN_SECRET_FILE or `secret_file`.

    Only the daemon (`create=True`) makes a key when none exists: an administrator's
    command run from the wrong folder must not mint a second key, whose tokens the daemon
    would refuse and whose address hashes would match nothing."""
    if value := os.environ.get(ENV_SECRET):
        return Keyring(value.encode())
    path_text = os.environ.get(ENV_SECRET_FILE)
    path = Path(path_text) if path_text else secret_file
    if path is None:
        raise KeyMissing(f"no token key: set {ENV_SECRET} or {ENV_SECRET_FILE}")
    if not path.exists() and not create:
        raise KeyMissing(
            f"トークンの鍵 {path} がありません。デーモンと同じ鍵を {ENV_SECRET_FILE} か "
            "--secret-file で指定してください"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return Keyring(path.read_text().strip().encode())
