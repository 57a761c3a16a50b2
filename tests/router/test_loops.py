"""When not to answer (RFC 3834): the loop rules."""

from __future__ import annotations

import datetime as dt

from haishin.mailtext.incoming import read
from haishin.router.loops import why_not_answer
from haishin.tokens import (
    Keyring,
)
from support.helpers import DOMAIN

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
KEY = Keyring(b"k" * 32)


def test_loops() -> None:
    def msg(head: str) -> object:
        return read((head + "\r\n\r\nx\r\n").encode(), "a@example.jp").msg

    ok = msg("From: a@example.jp")
    assert why_not_answer(ok, "a@example.jp", "a@example.jp", DOMAIN) is None  # type: ignore[arg-type]
    assert why_not_answer(ok, "", "a@example.jp", DOMAIN)  # type: ignore[arg-type]
    assert why_not_answer(
        msg("Auto-Submitted: auto-replied; owner-email=x"), "a@example.jp", "a@example.jp", DOMAIN
    )  # type: ignore[arg-type]
    assert why_not_answer(msg("Auto-Submitted: No"), "a@example.jp", "a@example.jp", DOMAIN) is None  # type: ignore[arg-type]
    assert why_not_answer(ok, "x@" + DOMAIN, "a@example.jp", DOMAIN)  # type: ignore[arg-type]
