"""Sender eligibility, DMARC alignment, and 配信日時 requests (DKIM: test_dkim_verify)."""

from __future__ import annotations

import datetime as dt

import pytest

from haishin.posting.schedule import requested
from haishin.posting.senders import aligned, same_address
from haishin.registry.model import JST


def test_same_address_ignores_domain_case_only() -> None:
    assert same_address("Shogai@City.Kawasaki.Example.JP", "Shogai@city.kawasaki.example.jp")
    assert not same_address("shogai@city.kawasaki.example.jp", "Shogai@city.kawasaki.example.jp")


def test_relaxed_alignment() -> None:
    assert aligned("mail.city.kawasaki.example.jp", "city.kawasaki.example.jp")
    assert aligned("city.kawasaki.jp", "mail.city.kawasaki.jp")
    assert not aligned("docomo.ne.jp", "ezweb.ne.jp")  # ne.jp is a public suffix


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
