"""Issue 14 item 4: the footer of each post says exactly what each address it names does,
the channel page says the same, and the daemon does it: `<slug>-unsubscribe@` asks for a
confirmation (From can be forged), the mail app's button (List-Unsubscribe, RFC 8058) stops
at once, and `mypage@` leads to the citizen's own page."""

from __future__ import annotations

from email import policy
from pathlib import Path

from haishin.store import subscribers
from haishin.store.states import MessageKind
from haishin.store.subscribers import Status
from support import posting
from support.helpers import DOMAIN
from support.inprocess import inprocess
from website.conftest import sample_site  # noqa: F401 (the built site, a fixture)
from website.html import parse

SLUG = posting.SLUG
READER = "reader@example.jp"
UNSUBSCRIBE = f"{SLUG}-unsubscribe@{DOMAIN}"
MYPAGE = f"mypage@{DOMAIN}"


def test_the_footer_the_page_and_the_daemon_agree(
    db_url: str,
    sample_site: Path,  # noqa: F811
) -> None:
    with inprocess(db_url) as ip:
        with ip.engine.begin() as conn:
            subscribers.activate(conn, SLUG, READER, method="test", evidence="test")
        msg = posting.post_message("収集日のお知らせ", "年末年始の収集日です。\n")
        ip.deliver(msg.as_bytes(policy=policy.SMTP), posting.SENDER, [str(msg["To"])])
        [request] = ip.mail(posting.SENDER, "投稿の確認")
        approve = next(w for w in request.body.split() if "/post/" in w)
        assert ip.http(approve, b"action=approve")[0] == 200
        assert ip.release() == 1
        [post] = [q for q in ip.queued(READER) if q.kind is MessageKind.POST]
        footer = post.body.split("----", 1)[1]

        # what the footer says of each address
        assert f"配信の停止: {UNSUBSCRIBE} に空メールを送り、届く確認メールに返信" in footer
        assert f"{MYPAGE} に空メールを送ると、登録の一覧と変更のページ（マイページ）" in footer
        assert "すぐ" not in footer  # nothing in the shared body stops at once
        assert post.msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        # what the daemon does: a confirmation request, the reader still subscribed
        ip.deliver(b"Subject: \r\n\r\n", READER, [UNSUBSCRIBE])
        assert ip.mail(READER, "配信停止の確認")
        with ip.engine.connect() as conn:
            sub = subscribers.find(conn, SLUG, READER)
        assert sub is not None and sub.status is Status.ACTIVE

    # what the channel page says of the same address
    page = parse(sample_site / "channels" / "kosodate-news.html")
    [section] = [
        s for s in page.find_all("section") if s.attrs.get("aria-labelledby") == "unsubscribe-title"
    ]
    said = section.text
    assert "kosodate-news-unsubscribe@" in said
    assert "届いた確認メールに返信してください" in said
    assert "すぐに解除されます" not in said
    assert "「登録解除」「配信停止」のボタン" in said  # the one-click button stops at once
