"""Sender eligibility, the `authenticated` approval mode, and 配信日時 requests."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from haishin.posting.schedule import requested
from haishin.posting.senders import Proof, aligned, authenticate, same_address
from haishin.registry.model import JST

TRUSTED = ["mx.city.kawasaki.example.jp"]
SENDER = "shogai@city.kawasaki.example.jp"


def _msg(*results: str) -> EmailMessage:
    head = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    raw = (head + f"From: {SENDER}\r\nSubject: x\r\n\r\nbody\r\n").encode()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def test_same_address_ignores_domain_case_only() -> None:
    assert same_address("Shogai@City.Kawasaki.Example.JP", "Shogai@city.kawasaki.example.jp")
    assert not same_address("shogai@city.kawasaki.example.jp", "Shogai@city.kawasaki.example.jp")


def test_relaxed_alignment() -> None:
    assert aligned("mail.city.kawasaki.example.jp", "city.kawasaki.example.jp")
    assert aligned("city.kawasaki.jp", "mail.city.kawasaki.jp")
    assert not aligned("docomo.ne.jp", "ezweb.ne.jp")  # ne.jp is a public suffix


@pytest.mark.parametrize(
    ("results", "proof"),
    [
        (["mx.city.kawasaki.example.jp; dkim=pass header.d=city.kawasaki.example.jp"], Proof.DKIM),
        (
            ["mx.city.kawasaki.example.jp; spf=pass smtp.mailfrom=shogai@city.kawasaki.example.jp"],
            Proof.SPF,
        ),
        (["mx.city.kawasaki.example.jp; dkim=fail header.d=city.kawasaki.example.jp"], Proof.NONE),
        (["mx.city.kawasaki.example.jp; dkim=pass header.d=attacker.example.com"], Proof.NONE),
        (["evil.example.com; dkim=pass header.d=city.kawasaki.example.jp"], Proof.NONE),
        # a forged header below ours does not count: only the topmost is our server's
        (
            [
                "mx.city.kawasaki.example.jp; dkim=none",
                "mx.city.kawasaki.example.jp; dkim=pass header.d=city.kawasaki.example.jp",
            ],
            Proof.NONE,
        ),
        ([], Proof.NONE),
        (["this is ; not = parseable ((("], Proof.NONE),
    ],
)
def test_authenticated_mode(results: list[str], proof: Proof) -> None:
    assert authenticate(_msg(*results), SENDER, TRUSTED).proof is proof


NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=JST)


def test_schedule_line_is_read_and_removed() -> None:
    s = requested(None, "配信日時：２０２６－１２－０１ ０９：００\n\n本文です。\n", NOW)
    assert s.at == dt.datetime(2026, 12, 1, 9, 0, tzinfo=JST)
    assert s.text == "本文です。\n"
    assert s.error is None


def test_schedule_header_wins_and_accepts_offsets() -> None:
    s = requested("2026-12-01T00:00Z", "本文\n", NOW)
    assert s.at == dt.datetime(2026, 12, 1, 9, 0, tzinfo=JST)


def test_schedule_deep_in_the_text_is_ignored() -> None:
    text = "一\n二\n三\n四\n五\n配信日時: 2026-12-01 09:00\n"
    assert requested(None, text, NOW).at is None


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            "配信日時: 来週の月曜",
            "配信日時「来週の月曜」を読み取れません。「配信日時: 2026-12-01 09:00」の形で書いてください。",
        ),
        (
            "配信日時: 2026-02-30 09:00",
            "配信日時「2026-02-30 09:00」を読み取れません。「配信日時: 2026-12-01 09:00」の形で書いてください。",
        ),
        ("配信日時: 2026-11-01 09:00", "配信日時 2026-11-01 09:00 はすでに過ぎています。"),
    ],
)
def test_schedule_errors(line: str, error: str) -> None:
    s = requested(None, line + "\n本文\n", NOW)
    assert (s.at, s.error) == (None, error)
