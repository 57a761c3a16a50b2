"""Mail to `<slug>@` (a post) and replies to a post's approval request.

A post walks the post path (posting/path/: sender, 第3条(2) requirements, send time,
approval mode), and every finding is stored with it; here the walk's verdict is acted on:

- FORWARD: not a listed sender; nothing is stored, the router forwards the mail to the
  channel's 情報管理者 (router/dispatch.py `_from_stranger`);
- REFUSE: stored as refused for the audit, and the sender told each requirement to fix;
- HOLD (`confirm`, `manager`): held, and the approver asked (第5条: the 情報管理者 answers
  for what is sent): the sender replies or presses the page's button, or the
  department's 情報管理者 does (a second person);
- VERIFY (`authenticated`): held until a DKIM signature that the daemon itself verifies,
  aligned with the From domain, approves it (posting/authenticated.py, after this
  transaction); anything less, a DNS failure included, falls back to `confirm`.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from email.message import EmailMessage

import sqlalchemy as sa

from ..clock import utcnow
from ..context import Context, Outcome
from ..mailtext import posts as texts
from ..mailtext.charsets import decode_text
from ..mailtext.incoming import Incoming
from ..outbound.replies import reply
from ..posting import decisions
from ..posting.approval import VERIFYING, ask_approval, warnings_of
from ..posting.path import Arrival, walk
from ..posting.policy.base import PostVerdict
from ..posting.schedule import HEADER, requested
from ..posting.view import view_of
from ..store import posts
from ..store.posts import Post, PostState
from ..tokens import Purpose, Verdict

CORRECTION_MARK = "【訂正】"
"""第5条(1) 修正: a subject starting with this corrects the channel's latest post."""


def _text_of(part: EmailMessage) -> str:
    """The daemon's Japanese-aware decoder (ISO-2022-JP with CP50220, Shift_JIS...)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return decode_text(data, part.get_content_charset()).replace("\r\n", "\n")


def _html_of(msg: EmailMessage) -> str | None:
    for part in msg.walk():
        if part.get_content_type() == "text/html" and not part.is_attachment():
            assert isinstance(part, EmailMessage)
            return _text_of(part)
    return None


_MID_RE = re.compile(r"<[^<>\s]+@[^<>\s]+>")


def _corrects(conn: sa.Connection, slug: str, incoming: Incoming) -> Post | None:
    named = " ".join(str(incoming.msg.get(h, "")) for h in ("In-Reply-To", "References"))
    found = posts.by_out_message_id(conn, slug, _MID_RE.findall(named))
    if found is None and incoming.subject.strip().startswith(CORRECTION_MARK):
        found = posts.latest_sent(conn, slug)
    return found


def _arrival(ctx: Context, slug: str, incoming: Incoming, size: int) -> Arrival:
    sender = incoming.sender
    assert sender is not None  # dispatch answers no mail without a sender (RFC 3834)
    view = dataclasses.replace(
        view_of(incoming.msg, size, text_of=_text_of), subject=incoming.subject
    )
    return Arrival(
        channel=ctx.registry.channels[slug].value,
        sender=sender,
        view=view,
        schedule=requested(incoming.msg.get(HEADER), view.text, utcnow()),
        policy=ctx.service.policy,
    )


def receive(
    conn: sa.Connection,
    ctx: Context,
    slug: str,
    incoming: Incoming,
    raw: bytes,
    spool_id: int,
) -> Outcome:
    """A post arrived at `<slug>@` from `incoming.sender` (the caller checked RFC 3834)."""
    arrival = _arrival(ctx, slug, incoming, len(raw))
    walked = walk(arrival)
    verdict = walked.verdict
    if verdict is PostVerdict.FORWARD:
        return Outcome.NOT_SENDER  # nothing stored: the caller forwards it (第5条3(3))
    sender, schedule, mid = arrival.sender, arrival.schedule, incoming.message_id
    subject = " ".join(incoming.subject.split())

    def create(state: PostState, correction_of: int | None = None) -> Post:
        return posts.create(
            conn,
            channel=slug,
            spool_id=spool_id,
            sender=sender,
            subject=subject,
            text=schedule.text.strip("\n") + "\n",
            html=_html_of(incoming.msg) if arrival.policy.allow_html else None,
            message_id=mid,
            state=state,
            approval=str(arrival.channel.approval),
            findings=walked.record(),
            send_at=schedule.at,
            ttl=ctx.post_ttl,
            correction_of=correction_of,
        )

    if verdict is PostVerdict.REFUSE:
        create(PostState.REFUSED)  # kept for the audit: what was refused and why
        refusal = texts.refused(ctx.about(slug), subject, walked.explain())
        reply(conn, ctx, slug, sender, refusal, in_reply_to=mid)
        return Outcome.POST_REFUSED
    corrected = _corrects(conn, slug, incoming)
    post = create(PostState.HELD, corrected.id if corrected else None)
    if verdict is PostVerdict.VERIFY:
        # The daemon verifies the DKIM signature itself (posting/authenticated.py), after
        # this transaction: a DNS lookup must not hold the store's write lock. Headers
        # the sender wrote (Authentication-Results) are never read as evidence.
        posts.update(conn, post.id, note=VERIFYING)
        return Outcome.POST_VERIFYING
    assert verdict is PostVerdict.HOLD, verdict  # the approval step holds every post
    ask_approval(conn, ctx, post, warnings=warnings_of(post))
    return Outcome.APPROVAL_REQUESTED


def open_token(ctx: Context, token: str) -> tuple[Purpose, int] | None:
    """A post token's purpose and post id, when `token` is one (and not expired)."""
    now = utcnow()
    for purpose in (Purpose.POST_APPROVE, Purpose.POST_WITHDRAW):
        opened = ctx.keyring.open(purpose, token, now)
        if opened.verdict is Verdict.OK:
            return purpose, opened.ident
        if opened.verdict is Verdict.EXPIRED:
            return purpose, 0  # no post: answered as expired
    return None


def _first_line(body: str) -> str:
    for line in body.split("\n"):
        text = line.strip()
        if text and not text.startswith((">", "＞")):
            return text
    return ""


def asks_withdraw(incoming: Incoming) -> bool:
    """The subject, or the first line the replier wrote, says 取消 (or withdraw)."""
    subject = unicodedata.normalize("NFKC", incoming.subject).lower()
    first = unicodedata.normalize("NFKC", _first_line(incoming.body)).lower()
    return any(w in subject or first.startswith(w) for w in texts.WITHDRAW_WORDS)


def by_mail(
    conn: sa.Connection, ctx: Context, slug: str, incoming: Incoming, token: str
) -> Outcome:
    """A reply to an approval request (or the sender's withdraw-only notice)."""
    opened = open_token(ctx, token)
    assert opened is not None
    purpose, post_id = opened
    replier = incoming.sender
    assert replier is not None
    about = ctx.about(slug)
    mid = incoming.message_id
    post = posts.get(conn, post_id) if post_id else None
    if post is None or post.channel != slug:
        reply(conn, ctx, slug, replier, texts.expired_token(about), in_reply_to=mid)
        return Outcome.EXPIRED
    if asks_withdraw(incoming):
        done = decisions.withdraw(conn, ctx, post.id, by=replier, method="mail-reply")
        if done is not decisions.Decided.DONE:
            reply(conn, ctx, slug, replier, texts.expired_token(about), in_reply_to=mid)
            return Outcome.EXPIRED
        return Outcome.POST_WITHDRAWN
    if purpose is Purpose.POST_WITHDRAW:
        reply(conn, ctx, slug, replier, texts.withdraw_hint(about), in_reply_to=mid)
        return Outcome.HELP_SENT
    done = decisions.approve(conn, ctx, post.id, approver=replier, method="mail-reply")
    if done is not decisions.Decided.DONE:
        reply(conn, ctx, slug, replier, texts.expired_token(about), in_reply_to=mid)
        return Outcome.EXPIRED
    return Outcome.POST_APPROVED
