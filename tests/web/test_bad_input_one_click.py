"""Issue 11 items 6 and 9: the RFC 8058 one-click POST acts only with its body.

The daemon's web application, served in process as the daemon serves it (support/
inprocess.py, on SQLite and PostgreSQL), takes every case; each case has its own active
subscriber and token, and asserts the HTTP status and whether that subscriber is still
subscribed. At the end no handler has logged an exception (the daemon log's "no
traceback"). A real browser (Debian's Chromium) presses the page's own button on a running
`haishin serve`, whose log holds no traceback.
"""

from __future__ import annotations

import datetime as dt
import http.client
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.store import subscribers as subs
from haishin.tokens import Purpose
from support import helpers
from support.inprocess import KEYRING, inprocess

KEY = KEYRING  # helpers.start's HAISHIN_SECRET
SLUG = "gomi-recycle"
BODY = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "----haishin" + "x" * 10

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# HTTP statuses (RFC 9110 §15)
OK = 200
BAD_REQUEST = 400
NOT_FOUND = 404
GONE = 410
TOO_LARGE = 413


def multipart(fields: list[tuple[str, str]], boundary: str = BOUNDARY) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes | None
    content_type: str | None = FORM
    status: int = BAD_REQUEST
    unsubscribed: bool = False
    path: str = "/u/"


CASES = [
    Case("urlencoded", BODY, status=OK, unsubscribed=True),
    Case("urlencoded-old-path", BODY, status=OK, unsubscribed=True, path="/unsubscribe/"),
    Case(
        "multipart",
        multipart([("List-Unsubscribe", "One-Click")]),
        MULTIPART,
        status=OK,
        unsubscribed=True,
    ),
    Case("urlencoded-with-charset", BODY, FORM + "; charset=utf-8", OK, True),
    Case("empty-body", b""),
    Case("no-body-no-type", None, None),
    Case("empty-body-old-path", b"", path="/unsubscribe/"),
    Case("wrong-value", b"List-Unsubscribe=Yes"),
    Case("value-lowercase", b"List-Unsubscribe=one-click"),
    Case("value-twice", b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click"),
    Case("other-field", b"unsubscribe=1"),
    Case("body-as-text-plain", BODY, "text/plain"),
    Case("body-as-json", b'{"List-Unsubscribe": "One-Click"}', "application/json"),
    Case("body-without-type", BODY, None),
    Case("multipart-wrong-value", multipart([("List-Unsubscribe", "No")]), MULTIPART),
    Case(
        "multipart-no-boundary",
        multipart([("List-Unsubscribe", "One-Click")]),
        "multipart/form-data",
    ),
    Case(
        "multipart-truncated",
        multipart([("List-Unsubscribe", "One-Click")])[:-20],
        MULTIPART,
    ),
    Case("multipart-garbage", b"\xff\xfe\x00garbage\r\n--", MULTIPART),
    Case("bad-percent-encoding", b"List-Unsubscribe=One-Click%zz%", FORM),
    Case("nul-in-body", b"List-Unsubscribe=One-Click\x00", FORM),
    Case("invalid-utf8", b"List-Unsubscribe=\xff\xfe", FORM),
    Case("bad-charset", BODY, FORM + "; charset=no-such-charset"),
    Case("oversized", BODY + b"&pad=" + b"a" * (256 * 1024), FORM, TOO_LARGE),
    Case(
        "multipart-as-file-upload",
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="List-Unsubscribe"; '
            f'filename="x.txt"\r\nContent-Type: text/plain\r\n\r\nOne-Click\r\n--{BOUNDARY}--\r\n'
        ).encode(),
        MULTIPART,
    ),
]


Address = tuple[str, int]


def post(at: Address, path: str, body: bytes | None, content_type: str | None) -> tuple[int, str]:
    """A POST with exactly this body and Content-Type (None: no such header)."""
    conn = http.client.HTTPConnection(*at, timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def status_of(engine: sa.Engine, sub_id: int) -> str:
    with engine.connect() as c:
        return str(
            c.execute(
                sa.text("SELECT status FROM subscribers WHERE id = :i"), {"i": sub_id}
            ).scalar_one()
        )


def make_subscriber(engine: sa.Engine, name: str) -> tuple[int, str]:
    with engine.begin() as conn:
        sub = subs.activate(
            conn, SLUG, f"{name}-{uuid.uuid4().hex[:6]}@example.jp", method="test", evidence="t"
        )
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    return sub.id, KEY.make(Purpose.UNSUBSCRIBE, sub.id, expires)


@pytest.fixture
def served(db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[Address, sa.Engine]]:
    """The web application in process on a store; no exception logged while it served."""
    with inprocess(db_url) as ip, caplog.at_level("DEBUG"), ip.web() as at:
        yield at, ip.engine
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


@pytest.fixture
def daemon(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[helpers.Daemon, sa.Engine]]:
    with helpers.running(tmp_path, sqlite_url) as de:
        yield de
    log = "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))
    assert "Traceback" not in log, log


def test_one_click_only_with_its_body(served: tuple[Address, sa.Engine]) -> None:
    at, engine = served
    outcomes = {}
    for case in CASES:
        sub_id, tok = make_subscriber(engine, case.name)
        code, page = post(at, case.path + tok, case.body, case.content_type)
        outcomes[case.name] = (code, status_of(engine, sub_id))
        if code == BAD_REQUEST:
            assert "何も変わっていません" in page, (case.name, page)
    expected = {c.name: (c.status, "unsubscribed" if c.unsubscribed else "active") for c in CASES}
    assert outcomes == expected
    with engine.connect() as c:  # one-click answers on the page, never by mail
        assert c.execute(sa.text("SELECT count(*) FROM outbound")).scalar_one() == 0


def test_an_oversized_chunked_body_is_refused_unread(served: tuple[Address, sa.Engine]) -> None:
    """No Content-Length to refuse it by: aiohttp counts while reading (client_max_size)."""
    at, engine = served
    sub_id, tok = make_subscriber(engine, "chunked")
    conn = http.client.HTTPConnection(*at, timeout=10)
    try:
        chunks = [BODY + b"&pad="] + [
            b"a" * 8192
        ] * 16  # 128 KiB: over the limit, within socket buffers
        conn.request(
            "POST", f"/u/{tok}", body=iter(chunks), headers={"Content-Type": FORM},
            encode_chunked=True,
        )  # fmt: skip
        assert conn.getresponse().status == TOO_LARGE
    finally:
        conn.close()
    assert status_of(engine, sub_id) == "active"


def test_tokens_get_a_clear_status(served: tuple[Address, sa.Engine]) -> None:
    at, engine = served
    sub_id, tok = make_subscriber(engine, "token")
    forged = tok[:-4] + ("aaaa" if not tok.endswith("aaaa") else "bbbb")
    code, page = post(at, f"/u/{forged}", BODY, FORM)
    assert code == NOT_FOUND and "このリンクは無効です" in page
    assert post(at, "/u/short", BODY, FORM)[0] == NOT_FOUND
    # a token made for another purpose is not an unsubscribe token
    wrong = KEY.make(Purpose.CONFIRM, sub_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert post(at, f"/u/{wrong}", BODY, FORM)[0] == NOT_FOUND
    expired = KEY.make(Purpose.UNSUBSCRIBE, sub_id, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    code, page = post(at, f"/u/{expired}", BODY, FORM)
    assert code == GONE and "有効期限" in page
    # a GET of a forged link says so, and shows no button
    url = f"http://{at[0]}:{at[1]}/u/{forged}"
    try:
        urllib.request.urlopen(url, timeout=10)
        raise AssertionError("a forged link's page answered 200")
    except urllib.error.HTTPError as e:
        assert e.code == NOT_FOUND and b"<form" not in e.read()
    assert status_of(engine, sub_id) == "active"
    # the right one, twice: done, then already done (not an error)
    assert post(at, f"/u/{tok}", BODY, FORM)[0] == OK
    assert status_of(engine, sub_id) == "unsubscribed"
    code, page = post(at, f"/u/{tok}", BODY, FORM)
    assert code == OK and "登録されていません" in page


@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian's chromium and chromium-driver are not installed",
)
def test_the_pages_button_in_a_browser_unsubscribes(
    daemon: tuple[helpers.Daemon, sa.Engine], tmp_path: Path
) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    """The whole system once: the page and its button, from a running daemon."""
    d, engine = daemon
    sub_id, tok = make_subscriber(engine, "browser")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--lang=ja",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        driver.get(f"http://{d.http[0]}:{d.http[1]}/u/{tok}")
        assert status_of(engine, sub_id) == "active"  # opening the page changed nothing
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        helpers.wait_until(
            lambda: "配信を停止しました" in driver.page_source, what="the result page"
        )
    finally:
        driver.quit()
    assert status_of(engine, sub_id) == "unsubscribed"
