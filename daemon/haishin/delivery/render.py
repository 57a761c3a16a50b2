"""The outbound message of a post: rendered once, personalized per recipient by headers.

Everything that is the same for all recipients — From, Subject with the service's prefix,
Date, Message-ID, the MIME body with the 第3条 footer, the List-* headers of RFC 2369 and
RFC 2919 — is encoded and folded once into bytes. Per recipient only To and the
List-Unsubscribe header carrying that recipient's token are added, and the DKIM header
signature over them made (the body hash is shared). No parsing, templating or database
work happens per recipient. Nothing of the sender's own header block is carried over: the
message is built anew from the post's subject and text, so a sender's List-* headers or
DKIM signature can never leak through.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from functools import cached_property

from .. import addresses, urls
from ..clock import utcnow
from ..registry.model import JST, Channel, Department, Service
from . import dkim

_SMTP = email_policy.SMTP.clone(max_line_length=78)


@dataclass(frozen=True)
class RenderContext:
    """What a channel's posts are rendered with; built once per post."""

    service: Service
    channel: Channel
    department: Department
    web_url: str
    """Base URL of the daemon's HTTP side (one-click unsubscribe), ending in '/'."""
    channel_url: str
    """The channel's page on the public site."""
    archive_url: str | None = None
    """The channel's back numbers, when its archive is public."""
    dkim_keys: Sequence[dkim.DkimKey] = field(default_factory=tuple)

    def address(self, suffix: str, token: str | None = None) -> str:
        return addresses.of(self.channel.slug, suffix, self.service.mail_domain, token)


@dataclass(frozen=True)
class Rendered:
    """One post, ready to be personalized."""

    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    bh: bytes
    context: RenderContext = field(repr=False)
    message_id: str = ""

    def for_recipient(self, address: str, token: str) -> bytes:
        """The bytes to send to `address`; `token` is its unsubscribe token."""
        return self.personal(address, token) + self.common()

    @cached_property
    def _unsubscribe(self) -> tuple[str, str, str]:
        """List-Unsubscribe (RFC 2369, RFC 8058) around the token, written once per post:
        per recipient only the token is put in (the hot path of a fan-out)."""
        ctx, mark = self.context, "\0"
        value = (
            f" <{ctx.web_url}{urls.ONE_CLICK.format(token=mark)}>,"
            f" <mailto:{ctx.address(addresses.UNSUBSCRIBE, mark)}>"
        )
        head, middle, tail = value.split(mark)
        return head, middle, tail

    def personal_headers(self, address: str, token: str) -> tuple[dkim.Header, dkim.Header]:
        """What differs per recipient before signing: To and List-Unsubscribe."""
        head, middle, tail = self._unsubscribe
        unsubscribe = (head + token + middle + token + tail).encode("ascii")
        return (b"To", b" " + address.encode("utf-8")), (b"List-Unsubscribe", unsubscribe)

    @cached_property
    def plan(self) -> dkim.Plan:
        """The signing plan: the shared headers hashed once (dkim.Plan); its t= is when
        it was made (a fan-out makes one per batch)."""
        return dkim.plan(self.context.dkim_keys, self.headers, PERSONAL, self.bh)

    def personal(self, address: str, token: str) -> bytes:
        """What differs per recipient: DKIM signatures, To and List-Unsubscribe. The
        outbound queue stores this beside one copy of `common()` (design.md)."""
        personal = self.personal_headers(address, token)
        keys = [k.key for k in self.context.dkim_keys]
        signatures = self.plan.signatures(keys, personal) if keys else b""
        return signatures + headers_bytes(personal)

    def common(self) -> bytes:
        """The header block and body that every recipient shares."""
        return headers_bytes(self.headers) + b"\r\n" + self.body

    @classmethod
    def from_common(cls, ctx: RenderContext, raw: bytes, message_id: str = "") -> Rendered:
        """Rebuild from stored `common()` bytes, to resume a fan-out after a restart with
        exactly the message that was started (a new render would have a new Date)."""
        head, _, body = raw.partition(b"\r\n\r\n")
        return cls(_split_headers(head), body, dkim.body_hash(body), ctx, message_id)


PERSONAL = (b"To", b"List-Unsubscribe")
"""The headers each recipient has its own of; every other header is the same for all."""


def headers_bytes(headers: Sequence[dkim.Header]) -> bytes:
    return b"".join(name + b":" + value + b"\r\n" for name, value in headers)


def footer(ctx: RenderContext) -> str:
    """第3条(2) and 特定電子メール法: who sends, how to stop it, whom to ask. Each address is
    named with what a mail to it does (design.md, the address contract): the body is the
    same for every recipient, so it names `<slug>-unsubscribe@`, which asks for a
    confirmation since From can be forged; the per-recipient one-click link is in the
    List-Unsubscribe header (the mail app's 登録解除 button, RFC 8058)."""
    domain = ctx.service.mail_domain
    return ctx.service.policy.footer.format(
        department=ctx.department.name,
        channel=ctx.channel.title,
        unsubscribe=(
            f"{ctx.address(addresses.UNSUBSCRIBE)} に空メールを送り、届く確認メールに返信"
            f"（詳しくは {ctx.channel_url}）"
        ),
        mypage=(
            f"{addresses.service(addresses.MYPAGE, domain)} に空メールを送ると、"
            "登録の一覧と変更のページ（マイページ）のリンクが届きます"
        ),
        owner=ctx.address(addresses.OWNER),
    )


def subject(ctx: RenderContext, original: str) -> str:
    prefix = ctx.service.policy.subject_prefix
    text = " ".join(original.split())
    return text if not prefix or text.startswith(prefix) else prefix + text


def render(
    ctx: RenderContext,
    post_id: str,
    original_subject: str,
    text: str,
    html: str | None = None,
    now: dt.datetime | None = None,
    post_url: str | None = None,
    references: str | None = None,
) -> Rendered:
    """Render post `post_id` of the context's channel. `text` is the sender's body."""
    service, channel = ctx.service, ctx.channel
    msg = EmailMessage(policy=_SMTP)
    msg["From"] = Address(channel.title, addr_spec=ctx.address(addresses.POST))
    msg["Reply-To"] = ctx.address(addresses.OWNER)
    msg["Subject"] = subject(ctx, original_subject)
    msg["Date"] = email.utils.format_datetime((now or utcnow()).astimezone(JST))
    message_id = f"<{post_id}.{channel.slug}@{service.mail_domain}>"
    msg["Message-ID"] = message_id
    if references:
        # 第5条(1) 修正: a correction threads under the post it corrects (RFC 5322 §3.6.4)
        msg["In-Reply-To"] = references
        msg["References"] = references
    msg["List-Id"] = f"{channel.title} <{channel.slug}.{service.mail_domain}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Post"] = "NO"
    msg["List-Help"] = (
        f"<mailto:{ctx.address(addresses.REQUEST)}?subject=help>, <{ctx.channel_url}>"
    )
    msg["List-Owner"] = f"<mailto:{ctx.address(addresses.OWNER)}>"
    if ctx.archive_url:
        msg["List-Archive"] = f"<{ctx.archive_url}>"
    if post_url:
        msg["Archived-At"] = f"<{post_url}>"
    msg["Precedence"] = "bulk"
    body_text = text.rstrip("\n") + "\n\n" + footer(ctx)
    msg.set_content(body_text, charset="utf-8", cte="base64")
    if html is not None:
        from html import escape

        foot = "<hr><p>" + escape(footer(ctx)).replace("\n", "<br>") + "</p>"
        msg.add_alternative(html + foot, subtype="html", charset="utf-8", cte="base64")
    raw = msg.as_bytes(policy=_SMTP)
    head, _, body = raw.partition(b"\r\n\r\n")
    return Rendered(_split_headers(head), body, dkim.body_hash(body), ctx, message_id)


def _split_headers(head: bytes) -> tuple[tuple[bytes, bytes], ...]:
    out: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            out.append((name, value))
    return tuple(out)
