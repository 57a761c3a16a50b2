"""Issue 11, item 5: a token address exists only while its token verifies (signature,
purpose, expiry); the directory's verdicts, the VERP lifetime, and the router's own
check for mail that had no RCPT (IMAP)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.context import Context
from haishin.delivery.fanout import VERP_TOKEN_TTL
from haishin.directory import PURPOSES, Directory, Kind, Refusal, Target, TokenFault
from haishin.outbound.sender import SendSettings
from haishin.registry import load_valid
from haishin.router.dispatch import dispatch
from haishin.store import open_store, spool
from haishin.store.states import SpoolState
from haishin.tokens import Keyring, Purpose
from support.helpers import CONFIG, DOMAIN
from support.statuscodes import Code

KEY = Keyring(b"k" * 32)
NOW = dt.datetime.now(dt.UTC)
SUFFIX = {Kind.CONFIRM: "-confirm", Kind.UNSUBSCRIBE: "-unsubscribe", Kind.BOUNCES: "-bounces"}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory(load_valid(CONFIG), KEY)


def rcpt(kind: Kind, token: str) -> str:
    return f"gomi-recycle{SUFFIX[kind]}+{token}@{DOMAIN}"


def make(purpose: Purpose, hours: float = 24) -> str:
    return KEY.make(purpose, 5, NOW + dt.timedelta(hours=hours))


@pytest.mark.parametrize("kind", list(SUFFIX))
def test_each_token_address_takes_its_own_purposes_only(directory: Directory, kind: Kind) -> None:
    for purpose in Purpose:
        token = make(purpose)
        verdict = directory.classify(rcpt(kind, token))
        if purpose in PURPOSES[kind]:
            assert verdict == Target(kind, "gomi-recycle", token), purpose
        else:
            assert isinstance(verdict, Refusal) and verdict.code == Code.MAILBOX_UNAVAILABLE, (
                purpose
            )
            assert "another kind of address" in verdict.text
            assert directory.token_fault(Target(kind, "gomi-recycle", token)) == (
                TokenFault.WRONG_PURPOSE,
                None,
            )


@pytest.mark.parametrize("kind", list(SUFFIX))
def test_forged_and_expired_tokens_are_refused_saying_which(
    directory: Directory, kind: Kind
) -> None:
    forged = directory.classify(rcpt(kind, "a" * 26))
    assert (
        isinstance(forged, Refusal)
        and forged.code == Code.MAILBOX_UNAVAILABLE
        and "not valid" in forged.text
    )
    other_key = Keyring(b"j" * 32).make(PURPOSES[kind][0], 5, NOW + dt.timedelta(days=1))
    assert isinstance(directory.classify(rcpt(kind, other_key)), Refusal)
    expired = directory.classify(rcpt(kind, make(PURPOSES[kind][0], hours=-1)))
    assert isinstance(expired, Refusal) and expired.code == Code.MAILBOX_UNAVAILABLE
    assert "has expired" in expired.text and "UTC" in expired.text
    assert expired.text.isascii()  # an SMTP reply without SMTPUTF8 (RFC 5321 §4.2)


def test_an_expired_confirmation_says_where_to_ask_again(directory: Directory) -> None:
    refusal = directory.classify(rcpt(Kind.CONFIRM, make(Purpose.CONFIRM, hours=-1)))
    assert isinstance(refusal, Refusal)
    assert f"gomi-recycle-request@{DOMAIN}" in refusal.text


def test_verp_tokens_outlive_every_late_bounce() -> None:
    """A post's VERP token must still verify when the last bounce for it can arrive: our
    sender's retries (SendSettings), then an MTA's queue lifetime at the smarthost and at
    the recipient's side, 5 days each at most (RFC 5321 §4.5.4.1: "at least 4-5 days")."""
    s = SendSettings(smarthost=None, maildir=Path("unused"))
    retrying = sum(min(s.retry_base * 2**i, s.retry_cap) for i in range(s.max_attempts))
    latest = dt.timedelta(seconds=retrying) + 2 * dt.timedelta(days=5)
    assert latest < VERP_TOKEN_TTL, (latest, VERP_TOKEN_TTL)


def test_mail_without_rcpt_to_a_forged_token_is_never_answered(sqlite_url: str) -> None:
    """IMAP mail has no RCPT: the router checks the token itself and answers nothing."""
    engine = open_store(sqlite_url)
    ctx = Context(Directory(load_valid(CONFIG), KEY), KEY, "http://t/")
    rcpts = [
        rcpt(Kind.CONFIRM, "a" * 26),
        rcpt(Kind.CONFIRM, make(Purpose.UNSUBSCRIBE)),
        rcpt(Kind.UNSUBSCRIBE, "b" * 26),
    ]
    raw = b"From: victim@example.org\r\nSubject: confirm\r\n\r\nyes\r\n"
    spool_id = spool.put(engine, raw, "victim@example.org", rcpts)
    (row,) = spool.fetch_new(engine, 10)
    with engine.begin() as conn:
        state, outcome = dispatch(conn, ctx, row)
    assert row.id == spool_id and state == SpoolState.DONE
    assert outcome.count("refused-forged") == 2 and "refused-wrong-purpose" in outcome
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM outbound")).scalar() == 0
        assert json.loads(c.execute(sa.text("SELECT rcpts FROM inbound")).scalar_one()) == rcpts
    engine.dispose()
