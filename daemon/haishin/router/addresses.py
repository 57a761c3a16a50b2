"""The address contract (design.md) applied to envelope recipients, and sender checks.

`Directory.classify` answers both the SMTP front end at RCPT time (refuse unknown and
unserved recipients with 550: no open relay, no backscatter) and the router, which needs
to know what a recipient asks for.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field

from .. import addresses as contract
from ..mailtext.mailbox import mailbox
from ..registry import ChannelState, Registry, channel_states
from ..registry.model import JST, Service


class Kind(enum.StrEnum):
    POST = "post"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    CONFIRM = "confirm"
    REQUEST = "request"
    OWNER = "owner"
    BOUNCES = "bounces"
    INQUIRY = "inquiry"  # the service inquiry address (第3条(1))


_SUFFIX_KINDS = {
    contract.SUBSCRIBE: Kind.SUBSCRIBE,
    contract.UNSUBSCRIBE: Kind.UNSUBSCRIBE,
    contract.CONFIRM: Kind.CONFIRM,
    contract.REQUEST: Kind.REQUEST,
    contract.OWNER: Kind.OWNER,
    contract.BOUNCES: Kind.BOUNCES,
}
_TOKEN_KINDS = {_SUFFIX_KINDS[s] for s in contract.TOKEN_SUFFIXES}
_TOKEN_CHARS = re.compile(r"^[a-z2-7]+$")


@dataclass(frozen=True)
class Target:
    kind: Kind
    slug: str | None  # None for the inquiry address
    token: str | None = None


@dataclass(frozen=True)
class Refusal:
    """An RCPT refusal: reply code and text (reply codes are API, style.md 6)."""

    code: int
    text: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


UNKNOWN = Refusal(550, "5.1.1 No such recipient here")


@dataclass
class Directory:
    """The registry seen as mail addresses, with channel states for today (JST)."""

    registry: Registry
    _day: dt.date | None = field(default=None, init=False)
    _states: dict[str, ChannelState] = field(default_factory=dict, init=False)

    @property
    def service(self) -> Service:
        located = self.registry.service
        assert located is not None, "load_valid guarantees service.yaml"
        return located.value

    @property
    def domain(self) -> str:
        return self.service.mail_domain.lower()

    def states(self) -> dict[str, ChannelState]:
        today = dt.datetime.now(JST).date()
        if today != self._day:
            self._states = channel_states(self.registry, today)
            self._day = today
        return self._states

    def parse(self, rcpt: str) -> Target | None:
        """What an address means under the contract, or None when it is not ours."""
        address = mailbox(rcpt)
        if address is None:
            return None
        if address.lower() == self.service.inquiry_address.lower():
            return Target(Kind.INQUIRY, None)
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.domain:
            return None
        local = local.lower()
        base, plus, token = local.partition("+")
        channels = self.registry.channels
        for suffix, kind in _SUFFIX_KINDS.items():
            slug = base.removesuffix(suffix)
            if slug != base and slug in channels:
                if plus:
                    if kind not in _TOKEN_KINDS or not token:
                        return None
                    if len(token) > contract.TOKEN_MAX_LEN or not _TOKEN_CHARS.match(token):
                        return None
                    return Target(kind, slug, token)
                return Target(kind, slug)
        if not plus and base in channels:
            return Target(Kind.POST, base)
        return None

    def classify(self, rcpt: str) -> Target | Refusal:
        target = self.parse(rcpt)
        if target is None:
            return UNKNOWN
        if target.slug is not None:
            state = self.states()[target.slug]
            if not state.served:
                # 第7条: the daemon serves exactly the approved channels
                return Refusal(550, f"5.2.1 This channel is not in service ({state.state})")
        return target
