"""router/loops.py: each reason not to answer (RFC 3834) is its own `NoAnswer` member, and
dispatch decides on members, never on the text it logs."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from haishin.mailtext.compose import LOOP_HEADER
from haishin.mailtext.incoming import read
from haishin.router import dispatch
from haishin.router.loops import NoAnswer, why_not_answer

DOMAIN = "mail.city.kawasaki.example.jp"
PERSON = "a@example.jp"


def _msg(head: str = "") -> EmailMessage:
    return read(f"From: {PERSON}\r\n{head}\r\nx\r\n".encode(), PERSON).msg


CASES = [
    (NoAnswer.NULL_SENDER, "", "", PERSON),
    (NoAnswer.NO_SENDER, "", PERSON, None),
    (NoAnswer.AUTO_SUBMITTED, "Auto-Submitted: auto-replied; owner-email=x\r\n", PERSON, PERSON),
    (NoAnswer.PRECEDENCE, "Precedence: Bulk\r\n", PERSON, PERSON),
    (NoAnswer.LIST, "List-Id: <x.example.jp>\r\n", PERSON, PERSON),
    (NoAnswer.OWN_MAIL, f"{LOOP_HEADER}: x\r\n", PERSON, PERSON),
    (NoAnswer.REPORT, "Content-Type: multipart/report; boundary=b\r\n", PERSON, PERSON),
    (NoAnswer.OWN_DOMAIN, "", f"x@{DOMAIN.upper()}", PERSON),
    (NoAnswer.ROBOT, "", "MAILER-DAEMON-2@example.jp", PERSON),
    (NoAnswer.ROBOT, "", PERSON, "no-reply@example.jp"),
]


@pytest.mark.parametrize(("expected", "head", "mail_from", "sender"), CASES)
def test_each_reason_is_a_member(
    expected: NoAnswer, head: str, mail_from: str, sender: str | None
) -> None:
    assert why_not_answer(_msg(head), mail_from, sender, DOMAIN) is expected


def test_every_member_is_reached_and_cites_its_rule() -> None:
    assert {c[0] for c in CASES} == set(NoAnswer)
    assert all(m.why and m.why != m.value for m in NoAnswer)
    assert NoAnswer("robot") is NoAnswer.ROBOT  # stored values read back as members


def test_a_person_is_answered() -> None:
    assert why_not_answer(_msg("Auto-Submitted: No\r\n"), PERSON, PERSON, DOMAIN) is None


def test_dispatch_takes_list_traffic_as_a_post_and_forwards_a_persons_auto_reply() -> None:
    # a staff post may carry List-* headers; an out-of-office reply still reaches a person
    taken_quietly = {NoAnswer.PRECEDENCE, NoAnswer.LIST}
    assert taken_quietly == dispatch.LIST_TRAFFIC
    assert taken_quietly | {NoAnswer.AUTO_SUBMITTED} == dispatch.FROM_A_PERSON


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
