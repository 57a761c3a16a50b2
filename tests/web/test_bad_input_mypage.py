"""Issue 14 item 6: the citizen's own page as an attacker meets it.

Real store (SQLite and PostgreSQL), real registry and router, the daemon's web
application served in process (support/inprocess.py). Each case asserts the HTTP status
and that nothing changed that should not have.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.store import mypage as store
from haishin.store import subscribers as subs
from haishin.tokens import Purpose
from support.helpers import CONFIG, DOMAIN
from support.inprocess import KEYRING, InProcess, inprocess

A = "taro@example.jp"
B = "jiro@example.jp"
SLUG = "gomi-recycle"
PAUSED = "sports-event"  # paused in the sample registry (第3条5)
NOT_SERVED = "kigyou-shien"  # stopped or pending: not served


@contextmanager
def page(db_url: str) -> Iterator[tuple[InProcess, str, str]]:
    with inprocess(db_url) as ip, ip.web() as (host, port):
        yield ip, host, f"http://{host}:{port}"


def mail(ip: InProcess, sender: str, rcpt: str, subject: str = "") -> None:
    raw = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\n\r\n".encode()
    ip.deliver(raw, sender, [rcpt])


def link_of(ip: InProcess, address: str) -> str:
    (got,) = ip.mail(address, "マイページ")[-1:]
    (url,) = set(re.findall(r"http://\S+/me/[a-z2-7]{26}", got.body))
    return urllib.parse.urlsplit(url).path


def request(
    base: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    req = urllib.request.Request(
        base + path, data=data, method="POST" if data is not None else "GET", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def form(**values: str | list[str]) -> bytes:
    return urllib.parse.urlencode(values, doseq=True).encode()


def statuses(ip: InProcess, address: str) -> dict[str, str]:
    with ip.engine.connect() as conn:
        return {s: str(sub.status) for s, sub in subs.of_address(conn, address).items()}


def test_tokens_forged_truncated_of_another_purpose_or_expired(db_url: str) -> None:
    with page(db_url) as (ip, _, base):
        mail(ip, A, f"mypage@{DOMAIN}")
        good = link_of(ip, A)
        token = good.rsplit("/", 1)[1]
        flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        spelt = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]  # same bytes, unused bit
        with ip.engine.begin() as conn:
            sub = subs.activate(conn, SLUG, A, method="test", evidence="test")
            old = store.create_link(conn, A, dt.timedelta(hours=1))
        unsubscribe = KEYRING.make(Purpose.UNSUBSCRIBE, sub.id, old.expires_at)
        expired = KEYRING.make(Purpose.MYPAGE, old.id, dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
        for path, code in [
            ("/me/" + flipped, 404),  # forged: one character changed
            ("/me/" + spelt, 404),  # another spelling of the same 16 bytes
            ("/me/" + token[:20], 404),  # truncated
            ("/me/" + token + "aa", 404),  # too long
            ("/me/" + unsubscribe, 404),  # ours, but not a page's
            ("/me/" + expired, 410),  # ours, expired
            ("/me/%00%ff", 404),
        ]:
            assert request(base, path)[0] == code, path
            assert request(base, path, form(action="leave"))[0] == code, path
        assert statuses(ip, A) == {SLUG: "active"}  # nothing left by any of them
        status, text = request(base, "/me/" + token.upper())  # upper-cased: still works
        assert status == 200 and A in text


def test_a_page_shows_and_changes_only_its_own_address(db_url: str) -> None:
    with page(db_url) as (ip, _, base):
        with ip.engine.begin() as conn:
            subs.activate(conn, SLUG, B, method="test", evidence="test")
        mail(ip, A, f"mypage@{DOMAIN}")
        path = link_of(ip, A)
        status, text = request(base, path)
        assert status == 200 and A in text and B not in text
        assert 'value="gomi-recycle" checked' not in text  # B's subscription is not A's
        # extra fields naming another address change nothing of it
        data = form(action="leave", address=B, channel=SLUG)
        assert request(base, path, data)[0] == 200
        assert statuses(ip, B) == {SLUG: "active"}


def test_forms_that_change_nothing(db_url: str) -> None:
    with page(db_url) as (ip, host, base):
        mail(ip, A, f"mypage@{DOMAIN}")
        path = link_of(ip, A)
        huge = form(action="save", channel=[SLUG] * 10_000)  # ~190 KB
        cases = [
            (huge, {}, 413),
            (form(action="save", channel=[SLUG, "nope"]), {}, 400),  # a slug that is not ours
            (form(action="save", channel=[SLUG, NOT_SERVED]), {}, 400),  # not served
            (form(action="delete-everything"), {}, 400),
            (b"action=save&channel=%ZZ", {}, 400),
            (
                b"--x\r\nContent-Disposition: form-data; name=action\r\n\r\nsave\r\n--x--\r\n",
                {"Content-Type": "multipart/form-data; boundary=x"},
                400,
            ),
            # CSRF: another site's form, even with a stolen-looking body
            (form(action="save", channel=SLUG), {"Origin": "https://evil.example"}, 403),
            (form(action="save", channel=SLUG), {"Origin": "null"}, 403),
            (form(action="save", channel=SLUG), {"Sec-Fetch-Site": "cross-site"}, 403),
        ]
        for data, headers, code in cases:
            got, _ = request(base, path, data, headers)
            assert got == code, (data[:60], headers)
            assert statuses(ip, A) == {}, (data[:60], headers)
        # the same form from the page itself is taken; a paused channel can be chosen
        same = {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        assert request(base, path, form(action="save", channel=[SLUG, PAUSED]), same)[0] == 200
        assert statuses(ip, A) == {SLUG: "active", PAUSED: "active"}
        assert "一時停止" in request(base, path)[1]  # its state in words


def test_a_change_of_address_never_subscribes_a_stranger(db_url: str) -> None:
    with page(db_url) as (ip, _, base):
        with ip.engine.begin() as conn:
            subs.activate(conn, SLUG, A, method="test", evidence="test")
        mail(ip, A, f"mypage@{DOMAIN}")
        path = link_of(ip, A)
        for written, code in [
            ("not an address", 400),
            (A.upper(), 400),  # the same address
            (f"toiawase@{DOMAIN}", 400),  # the service itself
            ("x@example.jp\r\nBcc: y@example.jp", 400),  # header injection
            ("x\n@example.jp", 400),  # a line break inside: answered, not a 500
            ("x@example\n.jp", 400),
        ]:
            assert request(base, path, form(action="move", address=written))[0] == code, written
        for n in range(3):
            assert request(base, path, form(action="move", address=f"s{n}@example.jp"))[0] == 200
        # a fourth from the same link: refused, so one link cannot mail a list of strangers
        assert request(base, path, form(action="move", address="s9@example.jp"))[0] == 429
        assert not ip.mail("s9@example.jp", "配信先")
        # a stranger who never confirms is never subscribed; A keeps everything
        for n in range(3):
            assert statuses(ip, f"s{n}@example.jp") == {}
            assert len(ip.mail(f"s{n}@example.jp", "配信先の変更の確認")) == 1
        assert statuses(ip, A) == {SLUG: "active"}
        # a reply to the confirmation (mypage+<token>@) confirms it: the token, not From
        confirm = ip.mail("s1@example.jp", "配信先の変更の確認")[0]
        reply_to = str(confirm.msg["Reply-To"])
        assert re.fullmatch(rf"mypage\+[a-z2-7]{{26}}@{DOMAIN}", reply_to)
        mail(ip, "anyone@example.net", reply_to, "Re: 確認")
        assert statuses(ip, "s1@example.jp") == {SLUG: "active"}
        assert statuses(ip, A) == {SLUG: "unsubscribed"}
        assert ip.mail(A, "配信先を変更しました")  # the old address is told
        assert ip.mail("s1@example.jp", "変更が完了")
        # the old link, and the other pending changes of A, no longer work
        assert request(base, path)[0] == 410
        other = ip.mail("s2@example.jp", "配信先の変更の確認")[0]
        (move_url,) = set(re.findall(r"http://\S+/me/move/[a-z2-7]{26}", other.body))
        assert request(base, urllib.parse.urlsplit(move_url).path, b"")[0] == 410
        assert statuses(ip, "s2@example.jp") == {}
        # the consent record keeps both addresses
        with ip.engine.connect() as conn:
            evidence = conn.execute(
                sa.text(
                    "SELECT consent_method, consent_evidence FROM subscribers WHERE address = :a"
                ),
                {"a": "s1@example.jp"},
            ).one()
        assert evidence[0] == "mypage-move" and A in evidence[1]


def test_a_flood_to_mypage_is_answered_within_the_limits(db_url: str) -> None:
    with inprocess(db_url) as ip:
        for _ in range(30):
            mail(ip, A, f"mypage@{DOMAIN}")
        per_address = ip.ctx.service.limits.auto_replies.per_address.count
        assert len(ip.mail(A, "マイページ")) == per_address
        with ip.engine.connect() as conn:
            links = conn.execute(sa.text("SELECT count(*) FROM mypage_links")).scalar()
        assert links == per_address  # a refused answer leaves no row behind
        # a bounce (null sender) or an auto-reply to mypage@ is never answered (RFC 3834)
        ip.deliver(b"From: x@example.jp\r\nSubject: bounce\r\n\r\n", "", [f"mypage@{DOMAIN}"])
        raw = b"From: y@example.jp\r\nAuto-Submitted: auto-replied\r\nSubject: ooo\r\n\r\n"
        ip.deliver(raw, "y@example.jp", [f"mypage@{DOMAIN}"])
        assert not ip.mail("x@example.jp", "マイページ") and not ip.mail(
            "y@example.jp", "マイページ"
        )


@pytest.mark.parametrize("word", ["一覧", "マイページ", "mypage", "ＭＹＰＡＧＥ"])
def test_the_request_command(sqlite_url: str, word: str) -> None:
    with inprocess(sqlite_url) as ip:
        mail(ip, A, f"{SLUG}-request@{DOMAIN}", word)
        (got,) = ip.mail(A, "マイページ")
        assert got.msg["From"].addresses[0].addr_spec == f"{SLUG}-request@{DOMAIN}"
        assert re.search(r"/me/[a-z2-7]{26}", got.body)


def test_an_unreadable_mail_to_mypage_is_still_answered(sqlite_url: str) -> None:
    """Any mail is enough: one whose header is too large to read (mailtext/limits.py) still
    brings the link to its sender, within the same limits."""
    with inprocess(sqlite_url) as ip:
        fields = "".join(f"X-Filler-{n}: x\r\n" for n in range(1_500))
        raw = f"From: {A}\r\nTo: mypage@{DOMAIN}\r\n{fields}\r\nbody\r\n".encode()
        spool_id = ip.deliver(raw, A, [f"mypage@{DOMAIN}"])
        with ip.engine.connect() as conn:
            outcome = conn.execute(
                sa.text("SELECT outcome FROM inbound WHERE id = :i"), {"i": spool_id}
            ).scalar_one()
        assert outcome.startswith("unreadable") and "mypage:=answered" in outcome
        (got,) = ip.mail(A, "マイページ")
        assert re.search(r"/me/[a-z2-7]{26}", got.body)


def test_changes_of_address_count_against_the_client_network(
    sqlite_url: str, tmp_path: Path
) -> None:
    """One client with many links (each from a mailbox it holds) cannot use up everyone's
    share of answers: its POSTs count against its network like mail does (ratelimit.py)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    service = config / "service.yaml"
    text = service.read_text()
    low = "per_network: {count: 2, window_hours: 1}"
    service.write_text(text.replace("per_network: {count: 300, window_hours: 1}", low, 1))
    with inprocess(sqlite_url, config) as ip, ip.web() as (_, port):
        base = f"http://127.0.0.1:{port}"
        with ip.engine.begin() as conn:
            made = [
                store.create_link(conn, f"h{n}@example.jp", dt.timedelta(hours=1)) for n in range(3)
            ]
        codes = []
        for n, link in enumerate(made):
            token = KEYRING.make(Purpose.MYPAGE, link.id, link.expires_at)
            data = form(action="move", address=f"stranger{n}@example.jp")
            codes.append(request(base, f"/me/{token}", data)[0])
        assert codes == [200, 200, 429]
        assert not ip.mail("stranger2@example.jp", "配信先")


def test_what_aiohttp_refuses_by_itself_is_answered_in_japanese(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large a form, a page that does not exist, a wrong method and a fault of ours:
    a page in Japanese with the right status (not aiohttp's English text), and a log line
    without the address or the token."""
    with page(sqlite_url) as (ip, _, base):
        mail(ip, A, f"mypage@{DOMAIN}")
        path = link_of(ip, A)
        huge = form(action="save", channel=[SLUG] * 10_000)
        for got, code, words in [
            (request(base, path, huge), 413, "大きすぎます"),
            (request(base, "/no-such-page"), 404, "ページが見つかりません"),
            (request(base, path + "/x"), 404, "ページが見つかりません"),
        ]:
            assert got[0] == code and words in got[1] and 'lang="ja"' in got[1], got
        req = urllib.request.Request(base + path, method="PUT", data=b"")
        with pytest.raises(urllib.error.HTTPError) as put:
            urllib.request.urlopen(req, timeout=10)
        assert put.value.code == 405 and "受け付けていません" in put.value.read().decode()
        assert "POST" in put.value.headers["Allow"]

        def broken(*args: object, **kwargs: object) -> object:
            raise ValueError(f"cannot mail {A}")

        monkeypatch.setattr("haishin.commands.mypage.page", broken)
        status, text = request(base, path)
        assert status == 500 and "処理できませんでした" in text and A not in text
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "ValueError" in logged and A not in logged and path not in logged


def test_a_reply_to_a_change_already_made_is_answered(sqlite_url: str) -> None:
    """The new address pressed the button, then also replied to the mail (or replied
    twice): the reply is answered that the change was made or is gone, not dropped."""
    with page(sqlite_url) as (ip, _, base):
        with ip.engine.begin() as conn:
            subs.activate(conn, SLUG, A, method="test", evidence="test")
        mail(ip, A, f"mypage@{DOMAIN}")
        assert request(base, link_of(ip, A), form(action="move", address=B))[0] == 200
        (confirm,) = ip.mail(B, "配信先の変更の確認")
        (move_url,) = set(re.findall(r"http://\S+/me/move/[a-z2-7]{26}", confirm.body))
        assert request(base, urllib.parse.urlsplit(move_url).path, b"")[0] == 200
        assert statuses(ip, B) == {SLUG: "active"}
        mail(ip, B, str(confirm.msg["Reply-To"]), "Re: 確認")
        (answer,) = ip.mail(B, "配信先の変更")[-1:]
        assert "手続きが済んで" in answer.body
        assert statuses(ip, B) == {SLUG: "active"} and statuses(ip, A) == {SLUG: "unsubscribed"}


def test_changes_asked_at_the_same_moment_keep_the_cap_of_a_link(db_url: str) -> None:
    """Twenty POSTs of one link at once, each to another stranger: still three mails, not
    one for every request that read the count before the others wrote (PostgreSQL)."""
    with page(db_url) as (ip, _, base):
        mail(ip, A, f"mypage@{DOMAIN}")
        path = link_of(ip, A)

        def ask(n: int) -> int:
            return request(base, path, form(action="move", address=f"r{n}@example.jp"))[0]

        with ThreadPoolExecutor(20) as pool:
            codes = sorted(pool.map(ask, range(20)))
        assert codes == [200] * 3 + [429] * 17
        with ip.engine.connect() as conn:
            asked = conn.execute(sa.text("SELECT count(*) FROM address_moves")).scalar()
        assert asked == 3
        assert sum(len(ip.mail(f"r{n}@example.jp", "配信先")) for n in range(20)) == 3


def test_a_title_or_an_address_cannot_write_html_into_the_page(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A channel title with markup (the registry is staff's text) and an address with the
    characters carriers allow (' & { }) are shown as text on /me/ and its result page."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    channel = config / "channels" / f"{SLUG}.yaml"
    hostile = "ごみ<script>alert(1)</script>&\"'"
    text = channel.read_text("utf-8").replace("title: ごみ・リサイクル情報", f"title: '{hostile}'")
    channel.write_text(text.replace("\"'", "\"''"), "utf-8")
    odd = "o'b&{x}@example.jp"
    with inprocess(sqlite_url, config) as ip, ip.web() as (_, port):
        base = f"http://127.0.0.1:{port}"
        mail(ip, odd, f"mypage@{DOMAIN}")
        path = link_of(ip, odd)
        status, shown = request(base, path)
        assert status == 200 and "<script>" not in shown
        assert "ごみ&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#34;&#39;" in shown
        assert "o&#39;b&amp;{x}@example.jp" in shown
        status, result = request(base, path, form(action="save", channel=SLUG))
        assert status == 200 and "<script>" not in result and "ごみ&lt;script&gt;" in result


def test_a_reply_to_the_from_of_a_change_confirmation_confirms_it(sqlite_url: str) -> None:
    """A mail app that replies to From (mypage@), not Reply-To (mypage+<token>@): the
    quoted confirmation carries the token, as a reply to <slug>-confirm@ does; it confirms
    the change instead of bringing a page link the citizen did not ask for."""
    with page(sqlite_url) as (ip, _, base):
        with ip.engine.begin() as conn:
            subs.activate(conn, SLUG, A, method="test", evidence="test")
        mail(ip, A, f"mypage@{DOMAIN}")
        assert request(base, link_of(ip, A), form(action="move", address=B))[0] == 200
        (confirm,) = ip.mail(B, "配信先の変更の確認")
        quoted = "\r\n".join("> " + line for line in confirm.body.splitlines())
        raw = (
            f"From: {B}\r\nTo: mypage@{DOMAIN}\r\nSubject: Re: {confirm.msg['Subject']}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + quoted + "\r\n"
        ).encode()
        ip.deliver(raw, B, [f"mypage@{DOMAIN}"])
        assert statuses(ip, B) == {SLUG: "active"} and statuses(ip, A) == {SLUG: "unsubscribed"}
        assert ip.mail(B, "変更が完了") and not ip.mail(B, "マイページのご案内")
        # quoted again, now that it is done: the mail asks for a link and gets one
        ip.deliver(raw, B, [f"mypage@{DOMAIN}"])
        assert ip.mail(B, "マイページのご案内") and statuses(ip, B) == {SLUG: "active"}
        # a page link quoted in a mail to mypage@ is no confirmation: a new link comes
        (link_mail,) = ip.mail(A, "マイページのご案内")
        (url,) = set(re.findall(r"http://\S+/me/[a-z2-7]{26}", link_mail.body))
        raw = f"From: {A}\r\nTo: mypage@{DOMAIN}\r\nSubject: Re\r\n\r\n> {url}\r\n".encode()
        ip.deliver(raw, A, [f"mypage@{DOMAIN}"])
        assert len(ip.mail(A, "マイページのご案内")) == 2
