"""What every command needs, as one frozen object passed in (style.md 7)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass

from . import addresses
from .clock import utcnow
from .directory import Directory
from .mailtext.texts import About
from .registry import Registry
from .registry.model import Service
from .tokens import Keyring, Purpose


class Outcome(enum.StrEnum):
    """What a command did; expected results, not exceptions (style.md 4)."""

    CONFIRMATION_SENT = "confirmation-sent"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    ALREADY_SUBSCRIBED = "already-subscribed"
    ALREADY_PENDING = "already-pending"  # an open confirmation request: not asked again
    NOT_SUBSCRIBED = "not-subscribed"
    EXPIRED = "expired"
    INVALID_TOKEN = "invalid-token"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"
    HELP_SENT = "help-sent"
    FORWARDED = "forwarded"
    RATE_LIMITED = "rate-limited"
    NOT_ANSWERED = "not-answered"  # RFC 3834: a loop or a robot
    HELD = "held"  # kept in the spool for a later stage (posts)
    BOUNCE_RECORDED = "bounce-recorded"
    NOT_SENDER = "not-sender"  # a post from an address the channel does not list
    POST_REFUSED = "post-refused"  # 第3条(2) requirements not met
    APPROVAL_REQUESTED = "approval-requested"
    POST_VERIFYING = "post-verifying"  # `authenticated`: the daemon's DKIM check is next
    POST_APPROVED = "post-approved"
    POST_WITHDRAWN = "post-withdrawn"
    POST_REJECTED = "post-rejected"
    MYPAGE_SENT = "mypage-sent"  # the link to the citizen's own page went out
    MOVE_REQUESTED = "move-requested"  # a change of address waits for the new address
    MOVED = "moved"  # the subscriptions went to the new address


UNSUBSCRIBE_TOKEN_TTL = dt.timedelta(days=400)
"""Long-lived: the token sits in every post's List-Unsubscribe (RFC 8058) and must keep
working as long as a subscriber may keep a post."""


@dataclass(frozen=True)
class Context:
    directory: Directory
    keyring: Keyring
    public_url: str  # where the confirm and unsubscribe pages are, ending in "/"
    network: str | None = None
    """The client network of the message being answered (ratelimit.client_network); None
    when no client asked (an import by staff, a web page acting on a received token)."""

    def from_network(self, network: str | None) -> Context:
        """The same context for answering one message from `network` (style.md 7: clone)."""
        return dataclasses.replace(self, network=network)

    @property
    def registry(self) -> Registry:
        return self.directory.registry

    @property
    def service(self) -> Service:
        return self.directory.service

    @property
    def domain(self) -> str:
        return self.directory.domain

    @property
    def ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.service.limits.token_ttl_hours)

    @property
    def post_ttl(self) -> dt.timedelta:
        """How long a post waits for approval before it expires."""
        return dt.timedelta(hours=self.service.limits.held_post_ttl_hours)

    @property
    def mypage_ttl(self) -> dt.timedelta:
        """How long a link to the citizen's own page works (service.yaml)."""
        return dt.timedelta(hours=self.service.limits.mypage_link_ttl_hours)

    def address(self, slug: str, suffix: str, token: str | None = None) -> str:
        return addresses.of(slug, suffix, self.domain, token)

    def unsubscribe_token(self, sub_id: int, now: dt.datetime | None = None) -> str:
        """The per-subscriber token of List-Unsubscribe and `<slug>-unsubscribe+token@`;
        a fan-out passes one `now` for its whole batch (the clock is not per recipient)."""
        expires = (now or utcnow()) + UNSUBSCRIBE_TOKEN_TTL
        return self.keyring.make(Purpose.UNSUBSCRIBE, sub_id, expires)

    def about(self, slug: str) -> About:
        service = self.service
        channel = self.registry.channels[slug].value
        department = self.registry.departments.get(channel.department)
        contact = ""
        if department is not None:
            c = department.contact
            contact = "".join(
                f"{label}: {value}\n"
                for label, value in (("電話", c.phone), ("メール", c.address), ("受付", c.hours))
                if value
            )
        return About(
            service=service.name,
            site_url=service.site_url,
            slug=slug,
            title=channel.title,
            department=department.name if department else channel.department,
            manager=f"{department.manager.title} {department.manager.name}" if department else "",
            contact=contact,
            owner_address=self.address(slug, addresses.OWNER),
            request_address=self.address(slug, addresses.REQUEST),
            subscribe_address=self.address(slug, addresses.SUBSCRIBE),
            unsubscribe_address=self.address(slug, addresses.UNSUBSCRIBE),
        )
