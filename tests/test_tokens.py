"""Tokens: HMAC-bound to purpose, expiring, case-insensitive in addresses; the keyring from the environment or a file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from haishin.tokens import (
    TOKEN_LEN,
    KeyMissing,
    Keyring,
    Purpose,
    Verdict,
    find_tokens,
    load_keyring,
)

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


def test_tokens_round_trip_case_insensitive_and_bounded() -> None:
    t = KEY.make(Purpose.CONFIRM, 123456789, NOW + dt.timedelta(hours=72))
    assert len(t) == TOKEN_LEN <= 26 and t == t.lower()
    assert KEY.open(Purpose.CONFIRM, t.upper(), NOW).ident == 123456789
    assert KEY.open(Purpose.CONFIRM, t, NOW + dt.timedelta(hours=74)).verdict is Verdict.EXPIRED
    assert KEY.open(Purpose.UNSUBSCRIBE, t, NOW).verdict is Verdict.INVALID  # purpose in the MAC
    assert Keyring(b"j" * 32).open(Purpose.CONFIRM, t, NOW).verdict is Verdict.INVALID
    flipped = ("b" if t[5] != "b" else "c").join((t[:5], t[6:]))
    assert KEY.open(Purpose.CONFIRM, flipped, NOW).verdict is Verdict.INVALID
    assert KEY.open(Purpose.CONFIRM, "short", NOW).verdict is Verdict.INVALID
    # the last character's two unused bits: another spelling of the same 16 bytes is not
    # the token (b32decode ignores them)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for bits in (1, 2, 3):
        spelt = t[:-1] + alphabet[alphabet.index(t[-1]) ^ bits]
        assert KEY.open(Purpose.CONFIRM, spelt, NOW).verdict is Verdict.INVALID, spelt
    assert find_tokens(f"Re: 確認 [confirm {t.upper()}]") == [t]


def test_keyring_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAISHIN_SECRET", raising=False)
    monkeypatch.delenv("HAISHIN_SECRET_FILE", raising=False)
    with pytest.raises(KeyMissing, match="がありません"):
        load_keyring(tmp_path / "secret")  # an admin command never mints a second key
    assert not (tmp_path / "secret").exists()
    k1 = load_keyring(tmp_path / "secret", create=True)  # the daemon does, once
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert load_keyring(tmp_path / "secret") == k1
    monkeypatch.setenv("HAISHIN_SECRET", "x" * 20)
    assert load_keyring(None).key == b"x" * 20
    assert KEY.redact("A@b.jp") == KEY.redact("a@B.JP") and "a@b" not in KEY.redact("a@b.jp")


def test_a_batch_maker_makes_the_tokens_make_makes() -> None:
    """A fan-out keys the HMAC once per batch (`maker`); its tokens are `make`'s, each
    opens to its own ident, and another purpose's do not open."""
    expires = NOW + dt.timedelta(days=30)
    verp = KEY.maker(Purpose.VERP, expires)
    for ident in (0, 1, 4242, 2**40 - 1):
        token = verp(ident)
        assert token == KEY.make(Purpose.VERP, ident, expires)
        opened = KEY.open(Purpose.VERP, token, NOW)
        assert opened.verdict is Verdict.OK and opened.ident == ident
        assert KEY.open(Purpose.UNSUBSCRIBE, token, NOW).verdict is Verdict.INVALID


def test_the_table_encoding_spells_every_token_as_rfc_4648_base32() -> None:
    """The fan-out's own base32 (two letters per 10 bits) against the standard library's,
    on the edges and on random bytes: a token made either way is the same string."""
    import base64
    import random

    from haishin.tokens import _encode

    rng = random.Random(16)
    samples = [bytes(16), b"\xff" * 16, bytes(range(16))]
    samples += [rng.randbytes(16) for _ in range(20_000)]
    for raw in samples:
        assert _encode(raw) == base64.b32encode(raw).decode().rstrip("=").lower()
