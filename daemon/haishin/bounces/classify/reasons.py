"""The reasons: each row holds the status codes and the reply-text patterns of one reason
(Sisimai's vocabulary), and the class the reason means (issue 12, item 1).

Read top-down: the text table is asked in this order, so a specific wording ("SPF",
"mailbox full") is found before a vague one ("rejected"). New wording for a reason is a
new pattern in its row; nothing else changes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .model import BounceClass

P, T, R, C, N = (
    BounceClass.PERMANENT,
    BounceClass.TEMPORARY,
    BounceClass.REFUSED,
    BounceClass.COMPLAINT,
    BounceClass.NONE,
)


@dataclass(frozen=True, slots=True)
class Reason:
    name: str
    klass: BounceClass
    statuses: tuple[str, ...]  # RFC 3463 codes that mean this reason (X = 4 or 5)
    patterns: tuple[str, ...]  # reply-text patterns, matched case-insensitively
    regex: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.patterns:
            object.__setattr__(self, "regex", re.compile("|".join(self.patterns), re.I))


# The text table, in the order it is asked.
REASONS: tuple[Reason, ...] = (
    # --- about us: our authentication, our address, our reputation (issue 12, item 3)
    Reason(
        "authfailure",
        R,
        ("X.7.20", "X.7.21", "X.7.22", "X.7.23", "X.7.24", "X.7.26"),
        (
            r"\bspf\b",
            r"\bdkim\b",
            r"\bdmarc\b",
            r"unauthenticated (?:e-?mail|sender|message)",
            r"sender policy framework",
            r"not authorized to send",
            r"authentication (?:check )?failed",
            r"fail(?:ed|s)? (?:the )?(?:sender )?authentication",
            r"domain ?keys",
            r"is not designated as a permitted sender",
            r"5\.7\.(?:2[0-46])\b",
        ),
    ),
    Reason(
        "requireptr",
        R,
        ("X.7.25",),
        (
            r"\bptr\b",
            r"reverse (?:dns|lookup|name|hostname)",
            r"\brdns\b",
            r"no reverse",
            r"cannot find your hostname",
            r"could not resolve (?:the )?(?:reverse|your (?:ip|host))",
            r"(?:ip|address) (?:has no|without) (?:a )?(?:dns|hostname|name)",
            r"client host .* (?:no|without) (?:a )?(?:ptr|hostname)",
            r"not have a (?:valid )?ptr",
            r"name lookup failed for",
            r"unverif\w* (?:sending )?ips?\b",
            r"unresolvable (?:sender )?(?:host|ip)",
            r"\bhelo\b.*(?:does not resolve|invalid)",
        ),
    ),
    Reason(
        "badreputation",
        R,
        (),
        (
            r"reputation",
            r"sender score",
            r"sending (?:ip|domain) (?:is|has been) .*(?:low|poor)",
        ),
    ),
    Reason(
        "norelaying",
        R,
        ("X.7.2",),
        (
            r"relay(?:ing)? (?:access )?(?:denied|not (?:permitted|allowed)|prohibited)",
            r"(?:not|unable to|we do not|cannot) relay\b",
            r"relay not",
            r"no relaying",
            r"not (?:permitted|allowed|authorized) to relay",
            r"(?:not|isn\'t) in my list of allowed rcpthosts",
            r"open relay",
        ),
    ),
    Reason(
        "virusdetected",
        R,
        (),
        (
            r"virus",
            r"malware",
            r"infected",
            r"trojan",
            r"worm detected",
        ),
    ),
    Reason(
        "spamdetected",
        R,
        ("X.7.28",),
        (
            r"\bspam(?!haus|cop)",
            r"\bjunk mail",
            r"unsolicited",
            r"bulk (?:e-?)?mail",
            r"\buce\b",
            r"content filter",
            r"looks like (?:spam|phishing)",
            r"phishing",
            r"scored too high",
            r"message (?:was )?(?:classified|identified|detected) as",
            r"rejected as spam",
            r"high probability of being",
            r"suspicious",
            r"spamassassin",
        ),
    ),
    Reason(
        "toomanyconn",
        T,
        ("X.4.5",),
        (
            r"too many (?:connections|concurrent|simultaneous|sessions)",
            r"connection (?:rate )?limit",
            r"frequency limited",
        ),
    ),
    Reason(
        "blocked",
        R,
        (),
        (
            r"block(?:ed|list|ing)",
            r"black ?list",
            r"\brbl\b",
            r"dnsbl",
            r"spamhaus",
            r"spamcop",
            r"barracuda",
            r"sorbs",
            r"(?<!not )listed (?:in|on|at|by)",
            r"(?:your|the sending|sender'?s?|"
            r"connecting|client) (?:ip|host|server|mta)\b.{0,40}(?:rejected|refused|denied|banned)",
            r"client host .*rejected",
            r"(?<!rejected: )access denied",
            r"connection (?:refused|rejected) by policy",
            r"banned",
            r"not allowed to send",
            r"denied by policy",
            r"messages from [\d.]+ weren't sent",
            r"(?:ip|host) (?:address )?(?:is )?(?:not allowed|refused|rejected)",
            r"\bsc-00\d\b",
            r"reject(?:ed)? (?:for )?(?:your|the) (?:ip|host)",
            r"poor (?:reputation|sending)",
            r"temporarily deferred due to",
            r"\bdynamic\b.*(?:ip|address|pool)",
            r"\bdul\b",
        ),
    ),
    Reason(
        "mailererror",
        T,
        (),
        (
            r"mailer error",
            r"x-unix",
            r"command (?:died|failed)",
            r"pipe to",
            r"procmail",
            r"exit (?:status|code)",
            r"program (?:exited|failed)",
            r"unknown mailer",
        ),
    ),
    # --- about the recipient's mailbox
    Reason(
        "mailboxfull",
        T,
        ("X.2.2",),
        (
            r"mailbox (?:is |was )?(?:full|over)",
            r"over ?quota\b",
            r"quota (?:violation|exceeded|full)",
            r"(?:reached|exceeded) (?:its |the |their |his |her )?(?:disk |mailbox )?quota",
            r"(?:over|exceeded|exceeds|exceed) (?:the |their |"
            r"your |his |her |its )?(?:storage |disk |mailbox |mail )?(?:quota|storage|size limit)",
            r"quota (?:exceeded|full|exceed)",
            r"(?:mail)?box (?:size )?(?:limit )?(?:exceeded|full)",
            r"full mailbox",
            r"too much mail",
            r"insufficient (?:disk )?space in (?:the )?mailbox",
            r"number of messages in recipient's mailbox exceeded",
            r"mailbox has exceeded",
            r"is over (?:its |the )?quota",
            r"not enough (?:storage|space)",
            r"user is over",
            r"mailfolder is full",
            r"account is full",
            r"inbox is full",
            r"storage full",
            r"一杯",
            r"満杯",
            r"容量(?:超過|オーバー|不足|が不足|が一杯)",
        ),
    ),
    Reason(
        "suspend",
        R,
        ("X.2.1",),
        (
            r"(?:account|mailbox|user|address|recipient)(?: has been| is| was)? "
            r"(?:disabled|suspended|inactive|deactivated|frozen|locked|blocked|expired|closed)",
            r"suspended",
            r"(?:disabled|inactive|deactivated) (?:account|mailbox|user)",
            r"is not (?:currently )?active",
            r"temporarily (?:disabled|deactivated)",
            r"not available for delivery",
            r"no longer (?:active|in use)",
        ),
    ),
    Reason(
        "hasmoved",
        P,
        ("X.1.6",),
        (
            r"has moved",
            r"user has moved",
            r"address has changed",
            r"no longer at this address",
            r"moved to (?:a )?(?:new|another)",
        ),
    ),
    Reason(
        "notaccept",
        P,
        ("X.1.10", "X.3.2", "X.7.27"),
        (
            r"does not accept (?:any )?(?:e-?)?mail",
            r"null mx",
            r"not accept(?:ing)? (?:any )?mail",
            r"accepts no mail",
            r"does not receive mail",
            r"indicated no smtp service",
        ),
    ),
    Reason(
        "hostunknown",
        P,
        ("X.1.2", "X.4.4"),
        (
            r"host (?:or domain name )?(?:unknown|not found)",
            r"unknown (?:host|domain)",
            r"domain (?:name )?(?:not found|does not exist|unknown|is not valid|not exist)",
            r"no such (?:domain|host)",
            r"name or service not known",
            r"host not found",
            r"unrout(?:e)?able (?:mail )?domain",
            r"\bno mx\b",
            r"mx (?:record|lookup|host)",
            r"dns (?:error|failure|lookup)",
            r"nxdomain",
            r"could not find (?:a )?(?:mail )?(?:server|"
            r"exchanger)",
            r"no (?:mail|valid) (?:host|exchanger|server)",
            r"illegal host/domain",
            r"hostname lookup failed",
            r"unresolvable",
            r"nonexistent domain",
            r"domain (?:is )?not reachable",
            r"non-existent hosts?",
            r"couldn't find any host",
            r"all relevant mx records",
        ),
    ),
    Reason(
        "userunknown",
        P,
        ("X.1.1", "X.1.3", "X.1.0", "X.1.4"),
        (
            r"user(?:name)? (?:unknown|not found|not known|does not exist|doesn't exist|invalid)",
            r"unknown (?:user|recipient|local[- ]?part|address|mailbox|account)",
            r"no such (?:user|recipient|mailbox|person|account|address|local user)",
            r"(?:recipient|mailbox|account|address|user|addressee)(?: address)? (?:is )?"
            r"(?:unknown|not found|invalid|does not exist|doesn't exist|not exist|unavailable|"
            r"not valid|not listed|nonexistent|unrecognized)",
            r"invalid (?:recipient|mailbox|address|user|account)",
            r"does(?: not|n't) exist",
            r"not a valid (?:mailbox|user|recipient)",
            r"no mailbox",
            r"mailbox (?:not|unavailable)",
            r"bad (?:recipient|destination|address)",
            r"no (?:such|valid) (?:recipient|address)",
            r"unrouteable address",
            r"not our customer",
            r"address (?:is )?not (?:known|valid|exist)",
            r"not (?:a )?known user",
            r"no account",
            r"doesn't have a .* account",
            r"is not a valid",
            r"undeliverable address",
            r"unknown or illegal alias",
            r"recipient rejected",
            r"user not local",
            r"no user",
            r"not listed in (?:the )?(?:domino|public|address|directory)",
            r"recipient address rejected: access denied",
            r"account (?:not|does)",
            r"(?:address|recipient|user|mailbox)\b.{0,20}(?:wasn't|was not|couldn't be|could not be) found",
            r"invalid (?:final delivery )?userid",
            r"宛先不明",
            r"n'existe pas",
            r"no existe",
            r"existiert nicht",
            r"不存在",
            r"存在しません",
            r"存在しない",
            r"見つかりません",
        ),
    ),
    # --- the recipient's own filter (a carrier's 受信拒否設定, a personal block list)
    Reason(
        "filtered",
        R,
        ("X.2.0",),
        (
            r"domain filter",
            r"rejected by (?:the )?(?:recipient|user)",
            r"recipient'?s? "
            r"(?:filter|rule|setting)",
            r"(?:user|recipient) (?:has )?(?:rejected|refused|blocked)",
            r"refused by (?:the )?(?:recipient|user)",
            r"filtered",
            r"受信拒否",
            r"recipient preferences",
            r"only accept(?:s|ing)? mail from",
            r"user refuses",
        ),
    ),
    # --- the transport
    Reason(
        "expired",
        T,
        ("X.4.7",),
        (
            r"expired",
            r"retry (?:time|timeout|period) (?:exceeded|reached|expired)",
            r"giving up",
            r"gave up",
            r"could not be delivered for",
            r"too long in (?:the )?queue",
            r"have been failing for",
            r"not (?:been )?delivered within",
            r"delivery time",
            r"will (?:continue|keep) (?:trying|to try)",
            r"has not yet been delivered",
            r"delay(?:ed)?",
            r"still (?:being )?(?:retried|trying)",
            r"queue(?:d)? too long",
            r"not been able to deliver",
            r"timeout (?:exceeded|reached)",
            r"in the queue too long",
            r"not going to try again",
            r"cannot send message for \d+ days?",
        ),
    ),
    Reason(
        "mesgtoobig",
        R,
        ("X.3.4",),
        (
            r"message (?:is )?too (?:big|large)",
            r"maximum (?:incoming )?message size",
            r"message size exceeds",
            r"size limit",
            r"exceeds (?:the )?(?:maximum|max) (?:message )?size",
            r"too large",
            r"message length",
        ),
    ),
    Reason("exceedlimit", T, ("X.2.3",), (r"exceeds? (?:the )?administrative limit",)),
    Reason(
        "ratelimited",
        T,
        (),
        (
            r"rate ?limit",
            r"too many (?:messages|mails|recipients|emails)",
            r"throttl",
            r"exceeded .* rate",
            r"sending rate",
            r"try again later",
            r"too fast",
        ),
    ),
    Reason(
        "networkerror",
        T,
        ("X.4.0", "X.4.1", "X.4.2", "X.4.3", "X.4.6"),
        (
            r"connection (?:refused|timed out|reset|closed|lost|dropped)",
            r"lost connection",
            r"network (?:is )?unreachable",
            r"no route to host",
            r"timed out",
            r"timeout",
            r"could not connect",
            r"couldn't connect",
            r"unable to connect",
            r"routing loop",
            r"too many hops",
            r"mail loop",
            r"loops back to myself",
            r"message is looping",
            r"did not accept our requests? to connect",
            r"hop count exceeded",
            r"not responding",
            r"connect to .* failed",
            r"temporary (?:dns|lookup) failure",
        ),
    ),
    Reason(
        "systemfull",
        T,
        ("X.3.1",),
        (
            r"insufficient system storage",
            r"disk (?:is )?full",
            r"out of (?:disk|storage)",
            r"system (?:storage|disk)",
        ),
    ),
    Reason(
        "systemerror",
        T,
        ("X.3.0", "X.3.3", "X.3.5", "X.2.4"),
        (
            r"system (?:error|failure|not available|unavailable)",
            r"internal (?:server )?error",
            r"server error",
            r"local error",
            r"configuration error",
            r"misconfigur",
            r"temporar(?:y|ily) (?:local )?(?:failure|problem|error|unavailable)",
            r"resources? (?:temporarily )?unavailable",
            r"try again",
            r"service (?:is )?unavailable",
            r"processing error",
            r"unexpected error",
        ),
    ),
    Reason(
        "securityerror",
        R,
        ("X.7.4", "X.7.5", "X.7.7", "X.7.8", "X.7.9", "X.7.10", "X.7.11"),
        (
            r"starttls",
            r"\btls\b",
            r"encryption (?:required|needed)",
            r"authentication required",
            r"must (?:issue|authenticate)",
            r"certificate",
        ),
    ),
    Reason(
        "policyviolation",
        R,
        (),
        (
            r"polic(?:y|ies)",
            r"violat",
            r"prohibited",
            r"not permitted",
            r"forbidden",
            r"not allowed",
            r"terms of service",
        ),
    ),
    Reason(
        "notcompliantrfc",
        R,
        (),
        (
            r"rfc ?5322",
            r"rfc ?2822",
            r"rfc ?822",
            r"not (?:rfc[- ]?)?compliant",
            r"duplicate (?:header|message-id)",
            r"multiple (?:from|to|subject|date|message-id)",
            r"missing (?:a )?(?:required )?(?:header|date|message-id|from)",
        ),
    ),
    Reason(
        "contenterror",
        R,
        ("X.6.0", "X.6.1", "X.6.2", "X.6.3", "X.6.4", "X.6.5"),
        (
            r"content (?:rejected|refused|error|not)",
            r"message content",
            r"due to content",
            r"header error",
            r"illegal (?:character|header)",
            r"invalid (?:mime|header|character)",
            r"attachment",
            r"8-?bit",
            r"encoding",
        ),
    ),
    Reason(
        "syntaxerror",
        R,
        ("X.5.0", "X.5.1", "X.5.2", "X.5.4", "X.5.5"),
        (
            r"syntax error",
            r"command (?:not )?(?:unrecognized|recognized)",
            r"unrecognized command",
            r"bad sequence",
            r"invalid command",
        ),
    ),
    Reason(
        "rejected",
        R,
        ("X.1.7", "X.1.8", "X.7.1", "X.7.0"),
        (
            r"sender (?:address )?(?:rejected|refused|denied|verify failed|invalid|not allowed|"
            r"unknown|domain)",
            r"(?:domain|address) of sender",
            r"envelope sender",
            r"invalid sender",
            r"sender is",
            r"mail from",
            r"rejected",
            r"refused",
            r"denied",
            r"not accepted",
            r"reject",
            r"拒否",
        ),
    ),
)

# Reasons only a format or a provider settles (no status, no pattern of their own)
EXTRA: tuple[Reason, ...] = (
    Reason("feedback", C, (), ()),
    Reason("vacation", N, (), ()),
    Reason("delivered", N, ("X.0.0",), ()),  # only ever given by hint (RFC 3464 action)
    Reason("onhold", T, (), ()),
    Reason("undefined", T, (), ()),
    Reason("speeding", T, (), ()),
    Reason("failedstarttls", T, (), ()),
)

BY_NAME: dict[str, Reason] = {r.name: r for r in REASONS + EXTRA}

# status code → reason, from the rows above; "X" stands for both 4 and 5
BY_STATUS: dict[str, str] = {s: r.name for r in REASONS for s in r.statuses}

VAGUE_STATUSES = frozenset({"X.0.0", "X.7.0", "X.7.1", "X.1.0", "X.2.0", "X.3.0", "X.5.0", "X.4.0"})
"""Codes MTAs write for "something failed" (Postfix's 5.0.0 for any 550, 5.7.1 for any
policy): the reply text says more than they do, so the text table is asked first."""


def status_key(status: str) -> str:
    return "X" + status[1:]


@functools.lru_cache(maxsize=128)
def by_text(text: str) -> Reason | None:
    """The first reason whose wording the text has. Cached: the recipients of one report
    often share their diagnostic (one line naming several), and the table is the costly
    part of judging one."""
    for reason in REASONS:
        if reason.regex is not None and reason.regex.search(text):
            return reason
    return None


def klass(reason: str, status: str | None, reply_code: str | None) -> BounceClass:
    """The class a reason means. `notaccept` is permanent unless the answer was 4xx: a
    host that says "not accepting mail" with a transient code may accept later."""
    row = BY_NAME.get(reason)
    if row is None:
        return T
    if reason == "notaccept":
        four = (status or "").startswith("4") or (reply_code or "").startswith("4")
        return R if four else P
    return row.klass
