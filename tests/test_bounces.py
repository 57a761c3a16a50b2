"""Bounce classification on real-world formats, and the bounce score (issue 6, item 6)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from haishin.delivery.bounce_score import (
    DEFAULTS,
    BounceScore,
    BounceSettings,
    apply,
    current,
)
from haishin.delivery.bounces import (
    BounceKind,
    BounceReport,
    Evidence,
    VerpAddress,
    classify,
    mask,
    parse_verp,
)

SAMPLES = Path(__file__).parent / "data" / "bounces"
P, T, U = BounceKind.PERMANENT, BounceKind.TEMPORARY, BounceKind.UNKNOWN


def _sample(name: str) -> tuple[bytes, str]:
    """The raw sample and the envelope recipient's local part (its To:, as delivered)."""
    raw = (SAMPLES / name).read_bytes()
    to = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)["To"]
    return raw, to.addresses[0].username


def _classify(name: str) -> BounceReport:
    return classify(*_sample(name))


# name: (kind, evidence, [(masked recipient, kind, status)])
EXPECTED: dict[str, tuple[BounceKind, Evidence, list[tuple[str, BounceKind, str | None]]]] = {
    "postfix-5.1.1-user-unknown.eml": (P, Evidence.DSN, [("***@example.jp", P, "5.1.1")]),
    "postfix-4.4.1-delayed.eml": (T, Evidence.DSN, [("***@example.com", T, "4.4.1")]),
    "exim-non-dsn.eml": (P, Evidence.FLUFL, [("***@example.com", P, "5.1.1")]),
    "gmail-5.1.1.eml": (P, Evidence.DSN, [("***@example.com", P, "5.1.1")]),
    "exchange-5.1.10-recipient-not-found.eml": (
        P,
        Evidence.DSN,
        [("***@example.com", P, "5.1.10")],
    ),
    "qmail-non-dsn.eml": (P, Evidence.FLUFL, [("***@example.com", P, "5.1.1")]),
    # docomo's MX answers a bare "550 Unknown user"; Postfix reports it as 5.0.0
    "docomo-550-unknown-user.eml": (P, Evidence.DSN, [("***@docomo.ne.jp", P, "5.0.0")]),
    # au (EZweb): its own ISO-2022-JP notice, no DSN, no flufl.bounce detector
    "au-ezweb-iso-2022-jp.eml": (P, Evidence.TEXT, [("***@ezweb.ne.jp", P, "5.1.1")]),
    # RFC 3463 §3.3: X.2.2 is a persistent *transient* failure, whatever its class
    "mailbox-full-5.2.2.eml": (T, Evidence.DSN, [("***@example.jp", T, "5.2.2")]),
    "out-of-office-ja-iso-2022-jp.eml": (BounceKind.AUTO_REPLY, Evidence.AUTO_REPLY, []),
    # cut inside the delivery-status part: what was read is kept, but it weighs as unknown
    "malformed-truncated-mime.eml": (U, Evidence.DSN, [("***@example.jp", P, None)]),
}


def test_every_sample_has_an_expectation() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_classification(name: str) -> None:
    kind, evidence, recipients = EXPECTED[name]
    report = _classify(name)
    assert (report.kind, report.evidence) == (kind, evidence), report.reason
    assert [(r.masked, r.kind, r.status) for r in report.recipients] == recipients
    assert report.verp is not None and report.verp.slug == "kosodate-news"
    assert len(report.verp.token) == 26


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_full_address_in_reprs_reasons_or_diagnostics(name: str) -> None:
    raw, _ = _sample(name)
    report = _classify(name)
    subscribers = {r.address for r in report.recipients}
    assert subscribers or report.kind is BounceKind.AUTO_REPLY
    shown = repr(report) + report.reason + "".join(r.diagnostic for r in report.recipients)
    for address in subscribers:
        assert address.encode() in raw  # found in the sample, as written
        assert address not in shown


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crlf_line_ends_read_the_same(name: str) -> None:
    # SMTP and LMTP deliver CRLF; the spool may keep it
    raw, local = _sample(name)
    lf, crlf = classify(raw, local), classify(raw.replace(b"\n", b"\r\n"), local)
    assert (crlf.kind, crlf.evidence, crlf.recipients) == (lf.kind, lf.evidence, lf.recipients)


def test_dsn_recipient_details() -> None:
    report = _classify("postfix-5.1.1-user-unknown.eml")
    (failed,) = report.recipients
    assert failed.address == "ichiro.suzuki@example.jp"  # Original-Recipient, RFC 3464 §2.3.1
    assert failed.action == "failed"
    # the folded Diagnostic-Code is unfolded and its "smtp;" type dropped (§2.3.6)
    assert failed.diagnostic == (
        "550 5.1.1 <***@example.jp>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert not report.ignore


def test_malformed_sample_says_why() -> None:
    report = _classify("malformed-truncated-mime.eml")
    assert "CloseBoundaryNotFoundDefect" in report.reason
    assert "CloseBoundaryNotFoundDefect" in report.defects


def test_returned_copy_cut_by_the_mta_is_not_malformed() -> None:
    # Postfix cuts the returned original at bounce_size_limit, leaving a multipart post
    # without its closing boundary; the report around it is whole and still counts
    raw, local = _sample("gmail-5.1.1.eml")
    head, sep, rest = raw.partition(b"Content-Type: message/rfc822\n\n")
    cut_copy = (
        b"From: kosodate-news@mail.city.kawasaki.example.jp\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/alternative; boundary=inner\n\n"
        b"--inner\nContent-Type: text/plain\n\nthe first 50000 bytes of the post\n"
    )
    raw = head + sep + cut_copy + rest[rest.index(b"\n--000000000000d1b4c20627a1f3c8--") :]
    report = classify(raw, local)
    assert report.kind is P
    assert report.defects == ()


def test_non_dsn_over_quota_is_temporary() -> None:
    # flufl.bounce's qmail detector knows only permanent failures; the status code next
    # to the address (vpopmail's over-quota text) makes it temporary (RFC 3463 §3.3)
    raw, local = _sample("qmail-non-dsn.eml")
    raw = raw.replace(
        b"Sorry, no mailbox here by that name. (#5.1.1)",
        b"The users mailfolder is over the allowed quota (size). (#5.2.2)",
    )
    report = classify(raw, local)
    assert (report.kind, report.evidence) == (T, Evidence.FLUFL)
    assert report.recipients[0].status == "5.2.2"


# --- the envelope recipient ---------------------------------------------------------------

TOKEN = "n5vhq3ldmvzgk4tfpbwgszlv2a"  # 26 characters, lower-case base32


@pytest.mark.parametrize(
    ("local_part", "expected"),
    [
        (f"kosodate-news-bounces+{TOKEN}", VerpAddress("kosodate-news", TOKEN)),
        # a mail server that uppercases local parts: the contract survives it
        (f"KOSODATE-NEWS-BOUNCES+{TOKEN.upper()}", VerpAddress("kosodate-news", TOKEN)),
        ("a-bounces+b", VerpAddress("a", "b")),
        ("kosodate-news-bounces", None),  # no token
        ("kosodate-news-bounces+", None),
        (f"kosodate-news-bounces+{TOKEN}a", None),  # 27 characters: longer than any token
        ("kosodate-news-bounces+abc018", None),  # 0, 1, 8 are not base32
        (f"kosodate-news-unsubscribe+{TOKEN}", None),
        (f"-bounces+{TOKEN}", None),  # no slug
        (f"kosodate--news-bounces+{TOKEN}", None),  # not a slug
        (f"kosodate-news+{TOKEN}", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verp(local_part: str | None, expected: VerpAddress | None) -> None:
    assert parse_verp(local_part) == expected


def test_classify_passes_the_verp_token_through_even_when_unreadable() -> None:
    report = classify(b"", f"kosodate-news-bounces+{TOKEN}")
    assert report.kind is U
    assert report.reason == "empty message"
    assert report.verp == VerpAddress("kosodate-news", TOKEN)


def test_mask() -> None:
    assert mask("taro@example.jp") == "***@example.jp"
    assert mask("no-at-sign") == "***"


# --- auto-replies ---------------------------------------------------------------------------


def _plain(subject: str, *headers: str, sender: str = "hanako@example.jp") -> bytes:
    lines = [
        f"From: {sender}",
        "To: kosodate-news-bounces+abc@mail.city.kawasaki.example.jp",
        f"Subject: {subject}",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "本文",
    ]
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    "subject",
    [
        "不在のお知らせ",
        "Re: 【子育て情報】児童手当のお知らせ（不在通知）",
        "自動返信: 【子育て情報】児童手当のお知らせ",
        "【自動応答】山田は不在です",
        "Out of Office: 【子育て情報】",
        "Automatic reply: 【子育て情報】",
        "RE: 不在",
    ],
)
def test_auto_reply_subjects(subject: str) -> None:
    report = classify(_plain(subject), None)
    assert report.kind is BounceKind.AUTO_REPLY
    assert report.ignore


@pytest.mark.parametrize(
    "header", ["Auto-Submitted: auto-replied", "X-Autoreply: yes", "Precedence: auto_reply"]
)
def test_auto_reply_headers(header: str) -> None:
    assert classify(_plain("Re: お知らせ", header), None).kind is BounceKind.AUTO_REPLY


def test_absentee_voting_is_not_away() -> None:
    # 不在者投票 (absentee voting) is a post the city sends, not 不在 (away)
    report = classify(_plain("Re: 【選挙管理委員会】不在者投票のお知らせ"), None)
    assert report.kind is U


def test_a_mail_system_saying_auto_replied_is_still_a_bounce() -> None:
    # Exim, Postfix and Gmail mark their bounces Auto-Submitted: auto-replied (RFC 3834 §5)
    raw, local = _sample("exim-non-dsn.eml")
    assert b"Auto-Submitted: auto-replied" in raw
    assert classify(raw, local).kind is P


# --- DSN details ----------------------------------------------------------------------------


def _dsn(*recipient_blocks: str, dsn_type: str = "message/delivery-status") -> bytes:
    blocks = "\n\n".join(recipient_blocks)
    return (
        "From: MAILER-DAEMON@mx.example.jp\n"
        "To: kosodate-news-bounces+abc@mail.city.kawasaki.example.jp\n"
        "Subject: Delivery Status Notification\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nSee the report.\n\n"
        f"--B\nContent-Type: {dsn_type}\n\n"
        f"Reporting-MTA: dns; mx.example.jp\n\n{blocks}\n\n--B--\n"
    ).encode()


def test_success_only_dsn_is_no_failure() -> None:
    report = classify(
        _dsn("Final-Recipient: rfc822; a@example.jp\nAction: relayed\nStatus: 2.0.0"), None
    )
    assert report.kind is BounceKind.NO_FAILURE
    assert report.ignore and report.recipients == ()


def test_dsn_without_readable_recipients_is_not_read_as_no_failure() -> None:
    report = classify(_dsn("Action: failed\nStatus: 5.1.1"), None)  # no recipient field
    assert (report.kind, report.evidence) == (U, Evidence.NONE)
    assert not report.ignore


def test_failed_after_retries_with_class_4_is_temporary() -> None:
    # Postfix gives up after maximal_queue_lifetime with Action: failed, Status: 4.4.7;
    # the host was unreachable, the address may be fine
    block = "Final-Recipient: rfc822; a@example.jp\nAction: failed\nStatus: 4.4.7"
    assert classify(_dsn(block), None).kind is T


def test_worst_recipient_wins() -> None:
    report = classify(
        _dsn(
            "Final-Recipient: rfc822; a@example.jp\nAction: delayed\nStatus: 4.4.1",
            "Final-Recipient: rfc822; <b@example.jp>\nAction: failed (bad)\nStatus: 5.1.1",
        ),
        None,
    )
    assert report.kind is P
    assert [(r.address, r.kind, r.action) for r in report.recipients] == [
        ("a@example.jp", T, "delayed"),
        ("b@example.jp", P, "failed"),
    ]


def test_mailbox_full_by_text_when_the_status_is_generic() -> None:
    block = (
        "Final-Recipient: rfc822; a@example.jp\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 Mailbox is full"
    )
    assert classify(_dsn(block), None).kind is T


def test_global_dsn_with_utf8_address() -> None:
    # RFC 6533 §6.2: message/global-delivery-status, addresses of type utf-8
    block = "Final-Recipient: utf-8; 太郎@example.jp\nAction: failed\nStatus: 5.1.1"
    raw = _dsn(block, dsn_type="message/global-delivery-status")
    report = classify(raw, None)
    assert report.kind is P
    assert [r.address for r in report.recipients] == ["太郎@example.jp"]


# --- never raises ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"\x00\xff\xfe garbage without headers",
        b"Subject: =?x-unknown?B?////?=\nContent-Type: text/plain; charset=x-unknown\n\n\xff",
        b"Content-Type: multipart/report; boundary=\n\n--\n",
        b"Content-Type: message/delivery-status\n\nAction: failed\n\nFinal-Recipient: ;\n",
        b"From: <<<@@@>>>\nTo: ,,,\nAuto-Submitted: \n\n",
        b"Content-Transfer-Encoding: base64\nContent-Type: text/plain\n\n!!!!",
    ],
)
def test_garbage_is_unknown_not_an_exception(raw: bytes) -> None:
    report = classify(raw, "kosodate-news-bounces+abc")
    assert report.kind in (U, BounceKind.NO_FAILURE)
    assert report.reason and not report.reason.startswith("unreadable")
    assert report.verp == VerpAddress("kosodate-news", "abc")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_truncation_of_every_sample_classifies(name: str) -> None:
    raw, local = _sample(name)
    for end in range(0, len(raw), 41):
        report = classify(raw[:end], local)
        # read, not rescued by classify's last-resort except
        assert not report.reason.startswith("unreadable"), (end, report.reason)


# --- the score ------------------------------------------------------------------------------

DAY = dt.date(2026, 12, 1)


def _report(kind: BounceKind) -> BounceReport:
    return BounceReport(kind, "test")


def _days(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


def test_score_rises_per_day_not_per_message() -> None:
    state = BounceScore()
    for _ in range(3):  # three posts bounced on the same day
        state, disable = apply(state, _report(P), DAY)
    assert state == BounceScore(1.0, DAY, 1.0)
    assert not disable
    state, _ = apply(state, _report(P), _days(1))
    assert state.score == 2.0


def test_same_day_counts_the_heaviest_bounce_once() -> None:
    state, _ = apply(BounceScore(), _report(T), DAY)
    state, _ = apply(state, _report(T), DAY)
    assert state.score == 0.5
    state, _ = apply(state, _report(P), DAY)  # a permanent one later that day
    assert state.score == 1.0
    state, _ = apply(state, _report(P), DAY)
    assert state.score == 1.0


def test_disable_at_threshold() -> None:
    state = BounceScore()
    seen = []
    for day in range(5):
        state, disable = apply(state, _report(P), _days(day))
        seen.append((state.score, disable))
    assert seen == [(1.0, False), (2.0, False), (3.0, False), (4.0, False), (5.0, True)]


def test_reset_after_staleness() -> None:
    state, _ = apply(BounceScore(), _report(P), DAY)
    state, _ = apply(state, _report(P), _days(1))
    # seven days later is not yet stale (bounce_info_stale_after = 7 days) ...
    kept, _ = apply(state, _report(P), _days(1 + 7))
    assert kept.score == 3.0
    # ... eight days later is: the score starts again
    fresh, _ = apply(state, _report(P), _days(1 + 8))
    assert fresh == BounceScore(1.0, _days(9), 1.0)
    assert current(state, _days(9), DEFAULTS) == BounceScore()
    assert current(state, _days(8), DEFAULTS) == state


def test_full_mailbox_disables_only_if_it_stays_full() -> None:
    full = _classify("mailbox-full-5.2.2.eml")
    state, disable = BounceScore(), False
    for day in range(10):  # full every day: ten days at 0.5
        assert not disable
        state, disable = apply(state, full, _days(day))
    assert (state.score, disable) == (5.0, True)
    state = BounceScore()
    for week in range(20):  # full once every eight days: always stale, never disabled
        state, disable = apply(state, full, _days(8 * week))
        assert (state.score, disable) == (0.5, False)


def test_ignored_reports_change_nothing() -> None:
    state = BounceScore(4.0, DAY, 1.0)
    for kind in (BounceKind.AUTO_REPLY, BounceKind.NO_FAILURE):
        assert apply(state, _report(kind), _days(1)) == (state, False)


def test_settings_are_cloned_not_patched() -> None:
    strict = dataclasses.replace(DEFAULTS, threshold=2.0, unknown_weight=1.0)
    state, disable = apply(BounceScore(), _report(U), DAY, strict)
    state, disable = apply(state, _report(U), _days(1), strict)
    assert (state.score, disable) == (2.0, True)
    assert BounceSettings() == DEFAULTS
    assert DEFAULTS.weight(U) == 0.5


def test_real_bounces_for_one_subscriber_disable_on_the_fifth_day() -> None:
    """The issue's bounce test, without the store: real-world samples and a VERP bounce
    for one subscription, in the order they might arrive."""
    arrivals = [
        (0, "postfix-4.4.1-delayed.eml"),  # 0.5
        (0, "postfix-5.1.1-user-unknown.eml"),  # same day: raised to 1.0
        (1, "out-of-office-ja-iso-2022-jp.eml"),  # not a bounce
        (1, "exim-non-dsn.eml"),  # 2.0
        (2, "gmail-5.1.1.eml"),  # 3.0
        (2, "gmail-5.1.1.eml"),  # same day, same kind: 3.0
        (3, "au-ezweb-iso-2022-jp.eml"),  # 4.0
        (4, "docomo-550-unknown-user.eml"),  # 5.0: disable
    ]
    state, trail = BounceScore(), []
    for day, name in arrivals:
        report = _classify(name)
        assert report.verp is not None and re.fullmatch(r"[a-z2-7]{26}", report.verp.token)
        state, disable = apply(state, report, _days(day))
        trail.append((state.score, disable))
    assert trail == [
        (0.5, False),
        (1.0, False),
        (1.0, False),
        (2.0, False),
        (3.0, False),
        (3.0, False),
        (4.0, False),
        (5.0, True),
    ]
