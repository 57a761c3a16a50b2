"""Issue 14 item 3: a confirmation used twice (the button pressed again, a second reply, a
reload of the answer page) says the work is done, not that the link expired; a link whose
work no longer holds (unsubscribed since) has expired."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

from haishin.store import subscribers
from support.helpers import DOMAIN
from support.inprocess import InProcess, Queued, inprocess

SLUG = "gomi-recycle"
CITIZEN = "twice@example.jp"


def _request(ip: InProcess) -> Queued:
    ip.deliver(b"Subject: \r\n\r\n", CITIZEN, [f"{SLUG}-subscribe@{DOMAIN}"])
    [request] = ip.mail(CITIZEN, "登録の確認")
    return request


def _reply(ip: InProcess, request: Queued) -> None:
    reply = EmailMessage()
    reply["From"] = CITIZEN
    reply["To"] = request.msg["Reply-To"]
    reply["Subject"] = "Re: " + request.subject
    reply.set_content("")
    ip.deliver(reply.as_bytes(policy=policy.SMTP), CITIZEN, [str(request.msg["Reply-To"])])


def test_a_second_reply_is_told_it_is_subscribed(db_url: str) -> None:
    with inprocess(db_url) as ip:
        request = _request(ip)
        _reply(ip, request)
        _reply(ip, request)
        subjects = [q.subject for q in ip.queued(CITIZEN)]
    assert len(subjects) == 3, subjects
    assert "登録が完了しました" in subjects[1]
    assert "すでに登録されています" in subjects[2]
    assert not any("有効期限" in s for s in subjects)


def test_the_button_pressed_twice_says_registered_then_expired_once_unsubscribed(
    db_url: str,
) -> None:
    with inprocess(db_url) as ip:
        url = next(w for w in _request(ip).body.split() if "/confirm/" in w)
        assert ip.http(url, b"")[0] == 200
        code, page = ip.http(url, b"")
        assert code == 200 and "登録済みです" in page and "有効期限" not in page
        code, page = ip.http(url)  # the link opened again: the same answer, no button
        assert code == 200 and "登録済みです" in page and "<button" not in page
        with ip.engine.begin() as conn:
            sub = subscribers.find(conn, SLUG, CITIZEN)
            assert sub is not None
            subscribers.unsubscribe(conn, sub.id, method="test")
        code, page = ip.http(url, b"")
        assert code == 410 and "有効期限が切れています" in page
        with ip.engine.connect() as conn:
            after = subscribers.find(conn, SLUG, CITIZEN)
        assert after is not None and after.status is not subscribers.Status.ACTIVE
