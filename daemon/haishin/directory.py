"""The address contract (design.md) applied to envelope recipients, and sender checks.

`Directory.classify` answers both the SMTP front end at RCPT time (refuse unknown and
unserved recipients with 550: no open relay, no backscatter) and the router, which needs
to know what a recipient asks for.

A token address (`-confirm+`, `-unsubscribe+`, `-bounces+`) exists only while its token
verifies: the HMAC signature, a purpose that belongs to that address, and the expiry
(tokens.py). Any other is refused at RCPT with 550 and the reason, while the client is
still connected, so that nothing is ever answered by mail to a sender who may be forged
(issue 11, item 5); behind Postfix, its recipient verification passes the same answer on
(deploy/postfix/main.cf). It is HMAC work only, no database: RCPT stays on the event loop.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field

from . import addresses as contract
from . import clock
from .clock import utcnow
from .mailtext.mailbox import mailbox
from .registry import ChannelState, Registry, channel_states
from .registry.model import Service
from .tokens import Keyring, Purpose, Verdict


class Kind(enum.StrEnum):
    POST = "post"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    CONFIRM = "confirm"
    REQUEST = "request"
    OWNER = "owner"
    BOUNCES = "bounces"
    INQUIRY = "inquiry"  # the service inquiry address (第3条(1))
    MYPAGE = "mypage"  # `mypage@`: a link to the citizen's own page; `mypage+<token>@`
    # confirms a change of address (the Reply-To of that confirmation)


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


class TokenFault(enum.Enum):
    """Why a token address does not exist (expected outcomes, not exceptions)."""

    FORGED = "forged"  # no purpose's signature matches: not a token we made
    WRONG_PURPOSE = "wrong-purpose"  # ours, but for another kind of address
    EXPIRED = "expired"  # ours, for this address, past its expiry


PURPOSES: dict[Kind, tuple[Purpose, ...]] = {
    # a confirmation request's Reply-To, or a held post's approval or withdraw request
    Kind.CONFIRM: (Purpose.CONFIRM, Purpose.POST_APPROVE, Purpose.POST_WITHDRAW),
    # the per-recipient address in a post's List-Unsubscribe (RFC 2369, RFC 8058)
    Kind.UNSUBSCRIBE: (Purpose.UNSUBSCRIBE,),
    # a post's VERP return path (per subscriber) or another message's (per outbound row).
    # VERP tokens live 30 days (delivery/fanout.py VERP_TOKEN_TTL): our sender gives up
    # after about a day and a half, each MTA after it after 4-5 days (RFC 5321 §4.5.4.1),
    # so a late bounce still finds its address; tests/inbound/test_intake_tokens.py checks
    Kind.BOUNCES: (Purpose.VERP, Purpose.BOUNCE),
    # the Reply-To of a change-of-address confirmation, mailed to the new address
    Kind.MYPAGE: (Purpose.MOVE,),
}

_FAULT_TEXT: dict[TokenFault, str] = {
    TokenFault.FORGED: "5.1.1 No such recipient: the token in this address is not valid",
    TokenFault.WRONG_PURPOSE: (
        "5.1.1 No such recipient: this token belongs to another kind of address"
    ),
    TokenFault.EXPIRED: "5.1.1 This address has expired (its token was valid until {until})",
}

_EXPIRED_HINT: dict[Kind, str] = {
    Kind.CONFIRM: "; please send a new request to {slug}-request@{domain}",
    Kind.UNSUBSCRIBE: "; to unsubscribe, write to {slug}-unsubscribe@{domain}",
    Kind.BOUNCES: "",  # a bounce: no person reads the answer
    Kind.MYPAGE: "; please ask again on your page (mail {mypage} for a new link)",
}


@dataclass
class Directory:
    """The registry seen as mail addresses, with channel states for today (JST)."""

    registry: Registry
    keyring: Keyring
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
        today = clock.today()
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
        if base == contract.MYPAGE:
            if not plus:
                return Target(Kind.MYPAGE, None)
            if 0 < len(token) <= contract.TOKEN_MAX_LEN and _TOKEN_CHARS.match(token):
                return Target(Kind.MYPAGE, None, token)
            return None
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

    def token_fault(
        self, target: Target, now: dt.datetime | None = None
    ) -> tuple[TokenFault, dt.datetime | None] | None:
        """Why `target`'s token does not make an address (with the expiry when it
        expired), or None when it verifies or the address has no token."""
        if target.token is None:
            return None
        now = now or utcnow()
        allowed = PURPOSES[target.kind]
        for purpose in allowed:
            opened = self.keyring.open(purpose, target.token, now)
            if opened.verdict is Verdict.OK:
                return None
            if opened.verdict is Verdict.EXPIRED:
                return TokenFault.EXPIRED, opened.expires
        for other in (p for p in Purpose if p not in allowed):
            if self.keyring.open(other, target.token, now).verdict is not Verdict.INVALID:
                return TokenFault.WRONG_PURPOSE, None
        return TokenFault.FORGED, None

    def _token_refusal(self, target: Target) -> Refusal | None:
        found = self.token_fault(target)
        if found is None:
            return None
        fault, expires = found
        text = _FAULT_TEXT[fault]
        if fault is TokenFault.EXPIRED:
            assert expires is not None
            until = expires.strftime("%Y-%m-%d %H:%M UTC")
            slug = target.slug or contract.MYPAGE
            hint = _EXPIRED_HINT[target.kind].format(
                slug=slug, domain=self.domain, mypage=contract.of(contract.MYPAGE, "", self.domain)
            )
            text = text.format(until=until) + hint
        return Refusal(550, text)

    def classify(self, rcpt: str) -> Target | Refusal:
        target = self.parse(rcpt)
        if target is None:
            return UNKNOWN
        if target.slug is not None:
            state = self.states()[target.slug]
            if not state.served:
                # 第7条: the daemon serves exactly the approved channels
                return Refusal(550, f"5.2.1 This channel is not in service ({state.state})")
        return self._token_refusal(target) or target
