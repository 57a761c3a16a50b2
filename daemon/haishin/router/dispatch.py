"""One spooled message → the command for each recipient, as an explicit table.

Runs inside the transaction that marks the spool row processed (see `worker`), so the
subscriber changes and queued replies commit together with "done", or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ..bounces import record as bounce_record
from ..bounces.score import settings_of
from ..clock import utcnow
from ..commands import forward, membership, moves, mypage, post
from ..commands.request import Command, parse
from ..context import Context, Outcome
from ..directory import Kind, Target, TokenFault
from ..mailtext import texts
from ..mailtext.incoming import Incoming, read
from ..outbound import ratelimit
from ..outbound.ratelimit import client_network
from ..outbound.replies import reply
from ..store import spool
from ..store.states import SpoolState
from ..tokens import Purpose, Verdict
from .loops import NoAnswer, why_not_answer


@dataclass(frozen=True)
class Mail:
    spool_id: int
    raw: bytes
    incoming: Incoming
    no_answer: NoAnswer | None  # RFC 3834: why not to answer, or None

    @property
    def origin(self) -> str:
        mid = self.incoming.message_id or "(no Message-ID)"
        return f"mail inbound#{self.spool_id} {mid}"


Handler = Callable[[sa.Connection, Context, Mail, Target], Outcome]

LIST_TRAFFIC = frozenset({NoAnswer.PRECEDENCE, NoAnswer.LIST})
"""Mail marked bulk or list (RFC 3834 §2) that a person may still have written: a staff
post can carry List-* headers (they are replaced), so it is taken but not answered."""
FROM_A_PERSON = LIST_TRAFFIC | {NoAnswer.AUTO_SUBMITTED}
"""Automatic, but on behalf of a person (an out-of-office reply, RFC 3834 §5): forwarded
to the inquiry or owner address, where a person may need it, though never answered."""


def _sender(mail: Mail) -> str:
    assert mail.incoming.sender is not None
    return mail.incoming.sender


def _subscribe(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    assert t.slug is not None
    if mail.no_answer is not None:
        return Outcome.NOT_ANSWERED
    return membership.request_subscribe(
        conn, ctx, t.slug, _sender(mail), origin=mail.origin, in_reply_to=mail.incoming.message_id
    )


def _unsubscribe(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    assert t.slug is not None
    if t.token:
        # the token proves receipt of a post: act at once, answer only if allowed
        return membership.unsubscribe_now(
            conn, ctx, t.token, method="mail-token", answer=mail.no_answer is None
        )
    if mail.no_answer is not None:
        return Outcome.NOT_ANSWERED
    return membership.request_unsubscribe(
        conn, ctx, t.slug, _sender(mail), origin=mail.origin, in_reply_to=mail.incoming.message_id
    )


def _confirm(
    conn: sa.Connection, ctx: Context, mail: Mail, t: Target, token: str | None
) -> Outcome:
    assert t.slug is not None
    if mail.no_answer is not None:
        # a vacation auto-reply to the Reply-To of a confirmation must not subscribe anyone
        return Outcome.NOT_ANSWERED
    if token is None:
        reply(
            conn,
            ctx,
            t.slug,
            _sender(mail),
            texts.help_text(ctx.about(t.slug)),
            in_reply_to=mail.incoming.message_id,
        )
        return Outcome.HELP_SENT
    if post.open_token(ctx, token) is not None:  # a reply to a post's approval request
        return post.by_mail(conn, ctx, t.slug, mail.incoming, token)
    return membership.confirm(
        conn,
        ctx,
        token,
        method="mail-reply",
        evidence=f"{mail.origin} from {_sender(mail)}",
        answer_to=_sender(mail),
        in_reply_to=mail.incoming.message_id,
        slug_hint=t.slug,
    )


def _is_confirmation(ctx: Context) -> Callable[[str], bool]:
    def check(token: str) -> bool:  # expired ones count: their sender gets "expired"
        return ctx.keyring.open(Purpose.CONFIRM, token, utcnow()).verdict is not Verdict.INVALID

    return check


def _confirm_address(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    token = t.token
    if token is None:
        _, token = parse(mail.incoming.subject, mail.incoming.body, _is_confirmation(ctx))
    return _confirm(conn, ctx, mail, t, token)


def _request(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    assert t.slug is not None
    if mail.no_answer is not None:
        return Outcome.NOT_ANSWERED
    command, token = parse(mail.incoming.subject, mail.incoming.body, _is_confirmation(ctx))
    if command is Command.CONFIRM:
        return _confirm(conn, ctx, mail, t, token)
    if command is Command.SUBSCRIBE:
        return _subscribe(conn, ctx, mail, t)
    if command is Command.UNSUBSCRIBE:
        return _unsubscribe(conn, ctx, mail, Target(Kind.UNSUBSCRIBE, t.slug))
    if command is Command.MYPAGE:  # 一覧: the same link as a mail to mypage@ brings
        return mypage.send_link(
            conn, ctx, _sender(mail), slug=t.slug, in_reply_to=mail.incoming.message_id
        )
    reply(
        conn,
        ctx,
        t.slug,
        _sender(mail),
        texts.help_text(ctx.about(t.slug)),
        in_reply_to=mail.incoming.message_id,
    )
    return Outcome.HELP_SENT


def _forward(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    reason = mail.no_answer
    if reason is not None and reason not in FROM_A_PERSON:
        # bounces, our own mail and robots are not forwarded; an auto-reply from a person
        # to the inquiry address still reaches a person, who may need it
        return Outcome.NOT_ANSWERED
    if mail.incoming.sender is None:
        return Outcome.NOT_ANSWERED
    return forward.forward(conn, ctx, mail.incoming, mail.raw, t.slug)


def _from_stranger(conn: sa.Connection, ctx: Context, mail: Mail, slug: str) -> Outcome:
    """Mail to `<slug>@` from an address the channel does not list: forwarded to the
    channel's 情報管理者 as an inquiry (第5条3(3)), and nothing is sent to the sender.

    Why forward rather than refuse at RCPT: RCPT knows only the envelope sender, while
    the channel's list is about the From header (posting/senders.py), and behind Postfix
    the recipient verification probes with Postfix's own sender and caches one verdict
    per address (deploy/postfix/main.cf), so a verdict that depends on the sender cannot
    reach the client at RCPT: Postfix would accept, the daemon refuse over LMTP, and
    Postfix bounce to a sender who may be forged — the backscatter this avoids. A
    subscriber who replies to a post's From (posts carry Reply-To `<slug>-owner@`, but
    not every mail app uses it) also reaches the person who answers for the channel.
    Forwards count as automatic answers to the sender (ratelimit.answer_allowed: per
    address per day, overall per hour), so a flood cannot fill the manager's mailbox.
    """
    sender = mail.incoming.sender
    if mail.no_answer is not None or sender is None:
        return Outcome.NOT_ANSWERED  # a bounce, a robot or list traffic: nobody to read it
    if not ratelimit.answer_allowed(conn, ctx, sender):
        return Outcome.RATE_LIMITED
    return forward.forward(conn, ctx, mail.incoming, mail.raw, slug, to_post_address=True)


def _post(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    assert t.slug is not None
    reason = mail.no_answer
    if reason is not None and reason not in LIST_TRAFFIC:
        return Outcome.NOT_ANSWERED  # RFC 3834: a robot or a loop never posts, nor asks
    # the post path's first rule (posting/path/sender.py) tells a post from a stranger's
    # mail; a staff post may carry List-* headers (they are replaced), a stranger's is
    # then not forwarded
    outcome = post.receive(conn, ctx, t.slug, mail.incoming, mail.raw, mail.spool_id)
    if outcome is Outcome.NOT_SENDER:
        return _from_stranger(conn, ctx, mail, t.slug)
    return outcome


def _bounce(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    # classify, match through the VERP token, score, disable at the threshold
    assert t.slug is not None
    bounce_record.from_mail(
        conn,
        ctx.keyring,
        slug=t.slug,
        token=t.token,
        raw=mail.raw,
        inbound_id=mail.spool_id,
        now=utcnow(),
        settings=settings_of(ctx.service),
    )
    return Outcome.BOUNCE_RECORDED  # never answered: this address only records


def _mypage(conn: sa.Connection, ctx: Context, mail: Mail, t: Target) -> Outcome:
    """`mypage@`: any mail (an empty one is enough) gets a link to the sender's own page;
    `mypage+<token>@`: a reply to a change-of-address confirmation confirms it (the token
    was mailed to the new address only: it proves that mailbox, whatever From says)."""
    if mail.no_answer is not None:
        # RFC 3834: a bounce or a robot gets no link; an auto-reply confirms no move
        return Outcome.NOT_ANSWERED
    if t.token is not None:
        return moves.by_mail(
            conn, ctx, t.token, _sender(mail), mail.origin, in_reply_to=mail.incoming.message_id
        )
    # a mail app that replies to From (mypage@), not Reply-To: the quoted confirmation
    # carries the change's token, as a reply to <slug>-confirm@ carries its own. One that
    # is no longer open is only quoted: the mail asks for a link, and gets one
    _, quoted = parse(mail.incoming.subject, mail.incoming.body, _is_a_move(ctx))
    if quoted is not None:
        done = moves.confirm(conn, ctx, quoted, f"mail reply {mail.origin}", mail_welcome=True)
        if done.verdict is moves.Confirmed.MOVED:
            return Outcome.MOVED
    return mypage.send_link(conn, ctx, _sender(mail), in_reply_to=mail.incoming.message_id)


def _is_a_move(ctx: Context) -> Callable[[str], bool]:
    def check(token: str) -> bool:
        return ctx.keyring.open(Purpose.MOVE, token, utcnow()).verdict is Verdict.OK

    return check


HANDLERS: dict[Kind, Handler] = {
    Kind.SUBSCRIBE: _subscribe,
    Kind.UNSUBSCRIBE: _unsubscribe,
    Kind.CONFIRM: _confirm_address,
    Kind.REQUEST: _request,
    Kind.OWNER: _forward,
    Kind.INQUIRY: _forward,
    Kind.POST: _post,
    Kind.BOUNCES: _bounce,
    Kind.MYPAGE: _mypage,
}


def dispatch(
    conn: sa.Connection, ctx: Context, row: spool.Spooled, incoming: Incoming | None = None
) -> tuple[SpoolState, str]:
    """Process one spooled message; returns (spool state, outcome for the audit).
    `incoming`: the message as the worker already read it (read once, not twice)."""
    # every answer to this message counts against its client's network (issue 11, item 3)
    ctx = ctx.from_network(
        client_network(row.source, row.client_address, ctx.service.limits.client_networks)
    )
    if incoming is None:
        incoming = read(row.raw, row.mail_from)
    no_answer = why_not_answer(incoming.msg, row.mail_from, incoming.sender, ctx.domain)
    mail = Mail(row.id, row.raw, incoming, no_answer)
    results: list[str] = []
    state = SpoolState.DONE
    seen: set[Target] = set()
    for rcpt in row.rcpts:
        target = ctx.directory.parse(rcpt)
        if target is None or target in seen:
            continue  # refused at RCPT, or the registry changed since: nothing to do
        seen.add(target)
        fault = ctx.directory.token_fault(target)
        if fault is not None and fault[0] is not TokenFault.EXPIRED:
            # refused at RCPT over SMTP; here from IMAP, which has no RCPT: a token we did
            # not make for this address is a forgery, and a forgery is never answered.
            # An expired one was valid when it arrived (or came by IMAP from the one it
            # was sent to): its command answers that it expired.
            results.append(f"{target.kind}:{target.slug or ''}=refused-{fault[0].value}")
            continue
        if target.slug is not None and not ctx.directory.states()[target.slug].served:
            outcome = Outcome.UNAVAILABLE
        else:
            outcome = HANDLERS[target.kind](conn, ctx, mail, target)
        if outcome is Outcome.HELD:
            state = SpoolState.HELD
        results.append(f"{target.kind}:{target.slug or ''}={outcome}")
    if no_answer is not None:
        results.append(f"({no_answer.why})")
    return state, " ".join(results) or "no recipient of ours"
