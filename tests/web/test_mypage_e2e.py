"""Issue 14, "Done when" 1 and 2: the citizen's own page, end to end.

`haishin serve` runs as a subprocess; real smtplib clients send the mail, an aiosmtpd
sink receives every outbound message, urllib plays the browser. Started once by an empty
mail to `mypage@` and once by the command 一覧 at a `<slug>-request@`: one link; two GETs
change nothing; saving two channels → a post to each reaches the address; unchecking one →
its posts stop; "leave all" → none; a change of address → the new address confirms, posts
go there and not to the old one, and the old link no longer works.
"""

from __future__ import annotations

import re
import smtplib
import urllib.parse
from pathlib import Path

import pytest
import sqlalchemy as sa

from support import helpers
from support import posting as p
from support.helpers import DOMAIN
from support.smarthost import Sink

GOMI = ("gomi-recycle", "genryo@city.kawasaki.example.jp")
KENSHIN = ("kenshin-info", "kenko@city.kawasaki.example.jp")
CITIZEN = "Hanako.Kawasaki@docomo.ne.jp"
NEW = "hanako-new@au.com"
LINK_RE = re.compile(r"http://[^\s]+/me/[a-z2-7]{26}")


def _statuses(engine: sa.Engine, address: str) -> dict[str, str]:
    with engine.connect() as c:
        rows = c.execute(
            sa.text("SELECT channel, status FROM subscribers WHERE address_key = :k"),
            {"k": address.lower()},
        ).all()
    return {str(ch): str(st) for ch, st in rows}


def _send(d: helpers.Daemon, sender: str, rcpt: str, subject: str = "", body: str = "") -> None:
    raw = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    with smtplib.SMTP(*d.smtp) as client:
        client.sendmail(sender, [rcpt], raw.encode())


def _post(
    d: helpers.Daemon, sink: Sink, engine: sa.Engine, channel: tuple[str, str], n: int
) -> str:
    """A post to `channel`, approved by its sender's reply; returns its subject once sent."""
    slug, sender = channel
    subject = f"お知らせ {slug} {n}"
    p.send(d, p.post_message(subject, "本文です。\n", sender=sender, slug=slug), sender=sender)
    request = p.wait_mail(sink, sender, subject)
    reply_to = str(request.msg["Reply-To"])
    p.send_to(
        d, reply_to, helpers.phone_reply(sender, reply_to, "RE: 確認", "お願いします"), sender
    )

    def sent() -> bool:
        with engine.connect() as c:
            state = c.execute(
                sa.text("SELECT state FROM posts WHERE subject = :s"), {"s": subject}
            ).scalar()
        return state == "sent" and helpers.drained(engine)

    helpers.wait_until(sent, what=f"post {subject} sent")
    return subject


def _posts_to(sink: Sink, address: str) -> set[str]:
    """Subjects of posts (VERP return path) delivered to `address`."""
    with sink.cond:
        got = [m for m in sink.messages if "-bounces+" in m.mail_from and address in m.rcpts]
    return {str(m.msg["Subject"]).removeprefix("【川崎市】") for m in got}


def _form(**values: str | list[str]) -> bytes:
    return urllib.parse.urlencode(values, doseq=True).encode()


def _link_in(sink: Sink, rcpt: str, fragment: str, count: int = 1) -> str:
    mail = p.wait_mail(sink, rcpt, fragment, count)
    links = LINK_RE.findall(p.body(mail))
    assert len(set(links)) == 1, links  # one link, the same wherever the text names it
    return links[0]


def _flow(d: helpers.Daemon, sink: Sink, engine: sa.Engine, link: str) -> None:
    # two GETs (a link scanner, then the person) change nothing
    for _ in range(2):
        code, page = p.http(d, link)
        assert code == 200 and 'name="channel"' in page
    assert _statuses(engine, CITIZEN) == {}
    assert 'value="gomi-recycle" checked' not in page  # 一括登録: nothing checked yet

    # save with two channels checked → a post to each reaches the address
    code, page = p.http(d, link, _form(action="save", channel=[GOMI[0], KENSHIN[0]]))
    assert code == 200 and "登録内容を保存しました" in page and "ごみ・リサイクル情報" in page
    assert _statuses(engine, CITIZEN) == {GOMI[0]: "active", KENSHIN[0]: "active"}
    with engine.connect() as c:
        method = c.execute(
            sa.text("SELECT consent_method, consent_evidence FROM subscribers WHERE channel = :c"),
            {"c": GOMI[0]},
        ).one()
    assert method[0] == "mypage" and "127.0.0.1" in method[1]
    code, page = p.http(d, link)
    assert 'value="gomi-recycle" checked' in page and 'value="kenshin-info" checked' in page
    first = {_post(d, sink, engine, GOMI, 1), _post(d, sink, engine, KENSHIN, 1)}
    assert _posts_to(sink, CITIZEN) == first

    # uncheck one → its posts stop
    code, page = p.http(d, link, _form(action="save", channel=[GOMI[0]]))
    assert code == 200 and "配信を停止したチャネル" in page
    second = {_post(d, sink, engine, GOMI, 2), _post(d, sink, engine, KENSHIN, 2)}
    assert _posts_to(sink, CITIZEN) == first | {f"お知らせ {GOMI[0]} 2"}

    # leave all → no post reaches it
    code, page = p.http(d, link, _form(action="leave"))
    assert code == 200 and "すべての配信を停止しました" in page
    assert set(_statuses(engine, CITIZEN).values()) == {"unsubscribed"}
    _post(d, sink, engine, GOMI, 3)
    assert _posts_to(sink, CITIZEN) == first | {f"お知らせ {GOMI[0]} 2"}
    del second

    # subscribe again, then change the address: the new one must confirm first
    p.http(d, link, _form(action="save", channel=[GOMI[0], KENSHIN[0]]))
    code, page = p.http(d, link, _form(action="move", address=NEW))
    assert code == 200 and "確認のメールを送りました" in page
    confirm = p.wait_mail(sink, NEW, "配信先の変更の確認")
    assert NEW not in _statuses(engine, NEW)  # nothing moved yet
    assert _statuses(engine, NEW) == {}
    move_link = re.findall(r"http://[^\s]+/me/move/[a-z2-7]{26}", p.body(confirm))[0]
    code, page = p.http(d, move_link)  # a GET shows, never acts
    assert code == 200 and "このアドレスに変更する" in page
    assert _statuses(engine, NEW) == {}
    code, page = p.http(d, move_link, b"")
    assert code == 200 and "配信先を変更しました" in page
    assert _statuses(engine, NEW) == {GOMI[0]: "active", KENSHIN[0]: "active"}
    p.wait_mail(sink, CITIZEN, "配信先を変更しました")  # the old address is told
    code, _ = p.http(d, move_link, b"")  # pressed twice: nothing more
    assert code == 410

    moved = {_post(d, sink, engine, GOMI, 4), _post(d, sink, engine, KENSHIN, 4)}
    assert _posts_to(sink, NEW) == moved
    assert not moved & _posts_to(sink, CITIZEN)

    # the old link no longer works, neither to show nor to change
    code, page = p.http(d, link)
    assert code == 410 and CITIZEN not in page
    code, _ = p.http(d, link, _form(action="save", channel=[GOMI[0]]))
    assert code == 410
    assert _statuses(engine, CITIZEN) == {GOMI[0]: "unsubscribed", KENSHIN[0]: "unsubscribed"}


@pytest.mark.parametrize("start", ["mypage", "request"])
def test_mypage_flow_end_to_end(tmp_path: Path, db_url: str, sink: Sink, start: str) -> None:
    # the archive of sent posts in tmp_path: the daemon's default is the repository's
    # content/archive, which a test must never write
    extra = ["--archive", str(tmp_path / "archive")]
    with helpers.running(tmp_path, db_url, smarthost=sink.port, extra=extra) as (d, engine):
        if start == "mypage":
            _send(d, CITIZEN, f"mypage@{DOMAIN}")  # an empty mail is enough
            mail = p.wait_mail(sink, CITIZEN, "マイページ")
            assert mail.msg["From"].addresses[0].addr_spec == f"mypage@{DOMAIN}"
        else:
            _send(d, CITIZEN, f"{GOMI[0]}-request@{DOMAIN}", "一覧")
            mail = p.wait_mail(sink, CITIZEN, "マイページ")
            assert mail.msg["From"].addresses[0].addr_spec == f"{GOMI[0]}-request@{DOMAIN}"
        assert mail.rcpts == [CITIZEN]
        _flow(d, sink, engine, _link_in(sink, CITIZEN, "マイページ"))
    log = "".join(f.read_text() for f in tmp_path.glob("daemon-*.log"))
    assert "Traceback" not in log
    assert CITIZEN not in log and NEW not in log  # 第4条: logs never show addresses
