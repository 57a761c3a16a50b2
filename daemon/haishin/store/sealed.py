"""Encryption of backups with a key file: AES-256-GCM in the STREAM construction.

The image is cut into 64 KiB segments, each sealed with a nonce made of a random 7-byte
prefix, the segment counter and a last-segment flag (Hoang, Reyhanitabar, Rogaway,
Vizár, "Online Authenticated-Encryption", the scheme of age and Tink). A reordered,
dropped or truncated segment fails to open, so a damaged backup is refused rather than
restored halfway. Streaming keeps memory flat for a store of millions of subscribers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import HaishinError

SEGMENT = 64 * 1024
_TAG = 16
_PREFIX = 7


class SealError(HaishinError):
    exit_code = 1


def new_key(path: Path) -> None:
    """Write a fresh 256-bit key, owner-only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise SealError(f"鍵ファイル {path} を読めません: {exc}") from None
    if len(key) != 32:
        raise SealError(f"鍵ファイル {path} は 256 ビットの鍵（16 進 64 文字）ではありません")
    return key


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def seal(src: BinaryIO, out: BinaryIO, key: bytes) -> None:
    aead = AESGCM(key)
    prefix = secrets.token_bytes(_PREFIX)
    out.write(prefix)
    counter = 0
    chunk = src.read(SEGMENT)
    while True:
        following = src.read(SEGMENT)
        last = not following
        out.write(aead.encrypt(_nonce(prefix, counter, last), chunk, None))
        if last:
            return
        chunk, counter = following, counter + 1


def open_sealed(src: BinaryIO, out: BinaryIO, key: bytes) -> None:
    aead = AESGCM(key)
    prefix = src.read(_PREFIX)
    if len(prefix) != _PREFIX:
        raise SealError("暗号化されたバックアップが短すぎます")
    counter = 0
    chunk = src.read(SEGMENT + _TAG)
    while True:
        following = src.read(SEGMENT + _TAG)
        last = not following
        try:
            out.write(aead.decrypt(_nonce(prefix, counter, last), chunk, None))
        except InvalidTag:
            raise SealError(
                "バックアップを復号できません（鍵が違うか、ファイルが壊れているか途中で切れています）"
            ) from None
        if last:
            return
        chunk, counter = following, counter + 1
