"""redact.py: the one scheme for logs (a keyed mark) and the staff reports' mask."""

from __future__ import annotations

import io
import logging
import time

import pytest
from pythonjsonlogger.json import JsonFormatter

from haishin.redact import LogFilter, mark, mask, mask_addresses, scrub
from haishin.tokens import Keyring

KEY = b"k" * 32
CARRIER = "abc..def@docomo.ne.jp"  # breaks RFC 5322, still a resident's address
OBRIEN = "o'brien@x.jp"  # an apostrophe is atext (RFC 5322 §3.2.3)


def test_a_mark_is_keyed_stable_and_the_keyrings() -> None:
    assert mark(KEY, "A@b.JP") == mark(KEY, "a@b.jp") == Keyring(KEY).redact("a@b.jp")
    assert mark(KEY, "a@b.jp") != mark(b"j" * 32, "a@b.jp")  # no key, no guessing
    assert mark(KEY, "a@b.jp").startswith("addr:") and "b.jp" not in mark(KEY, "a@b.jp")


def test_scrub_marks_every_address_however_it_is_quoted() -> None:
    m = mark(KEY, CARRIER)
    cases = {
        f"550 5.1.1 <{CARRIER}>: User unknown": f"550 5.1.1 <{m}>: User unknown",
        f"{{'{CARRIER}': (550, b'no')}}": f"{{'{m}': (550, b'no')}}",
        f"mail {CARRIER}.": f"mail {m}.",
        f'"Taro" <{CARRIER}>, ' + OBRIEN: f'"Taro" <{m}>, ' + mark(KEY, OBRIEN),
        "山田@例え.jp に送れません": f"{mark(KEY, '山田@例え.jp')} に送れません",  # SMTPUTF8
        "no address @ here, user@ or @host": "no address @ here, user@ or @host",
    }
    for text, scrubbed in cases.items():
        assert scrub(KEY, text) == scrubbed, text
        assert scrub(KEY, scrubbed) == scrubbed  # a mark holds no address


@pytest.mark.parametrize("formatter", ["text", "json"])  # `haishin serve --log-format`
def test_the_filter_marks_the_message_its_arguments_and_the_traceback(formatter: str) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    if formatter == "json":
        handler.setFormatter(JsonFormatter("%(levelname)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(LogFilter(KEY))
    log = logging.getLogger("test_redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("refused %s: %s", CARRIER, f"550 <{CARRIER}>")
        try:
            raise ValueError(f"bad rcpt {CARRIER}")
        except ValueError:
            log.exception("failed for %s", "someone")
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "docomo" not in text and "abc..def" not in text
    assert text.count(mark(KEY, CARRIER)) == 3
    assert "Traceback" in text and "ValueError: bad rcpt addr:" in text


def test_the_staff_mask_keeps_the_carrier_only() -> None:
    assert mask("taro@docomo.ne.jp") == "***@docomo.ne.jp"
    assert (
        mask_addresses(f"550 <{CARRIER}>: no; o'brien@x.jp")
        == "550 <***@docomo.ne.jp>: no; ***@x.jp"
    )


def test_a_long_run_without_an_address_is_read_once() -> None:
    """The address pattern runs on every log line, header and staff report: a megabyte
    with no "@" (or one "@" at its very end) costs one pass, not one per character (it
    was quadratic: half an hour). Measured in this thread's CPU time, not the clock."""
    for text in ("a" * 1_000_000, "a" * 1_000_000 + "@", "x@" + "a." * 500_000):
        started = time.thread_time()
        mask_addresses(text)
        assert time.thread_time() - started < 1.0, len(text)
