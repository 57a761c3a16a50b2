"""Issue 14 item 4: the help answer threads under the question on phones, as every other
answer does (RFC 5322 §3.6.4: In-Reply-To and References name the question)."""

from __future__ import annotations

import pytest

from support.helpers import DOMAIN
from support.inprocess import inprocess

QUESTION = "<question-1@phone.example.jp>"


@pytest.mark.parametrize(
    ("rcpt", "subject"),
    [
        (f"gomi-recycle-request@{DOMAIN}", "help"),  # the command
        (f"gomi-recycle-request@{DOMAIN}", "使い方を教えて"),  # no command: help too
        (f"gomi-recycle-confirm@{DOMAIN}", "よろしく"),  # a confirm address without a token
    ],
)
def test_the_help_answer_threads(db_url: str, rcpt: str, subject: str) -> None:
    citizen = "asker@example.jp"
    raw = (
        (
            f"From: {citizen}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: {QUESTION}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + subject.encode()
        + b"\r\n"
    )
    with inprocess(db_url) as ip:
        ip.deliver(raw, citizen, [rcpt])
        [answer] = ip.mail(citizen, "使い方")
    assert answer.msg["In-Reply-To"] == QUESTION
    assert answer.msg["References"] == QUESTION
