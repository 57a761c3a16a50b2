"""Confirmation requests, and every other automatic answer, are limited per address, per
client network and overall, each in its own window (service.yaml `limits`): forged mail
cannot flood a stranger's mailbox, and one client sending a flood of forged requests
uses up only its own network's share, never the residents' (issue 11, item 3).

The client network is the connecting address (behind Postfix, the one Postfix saw and
passed by XFORWARD, inbound/smtp.py) grouped by prefix: an attacker owns a whole /24 or
/56 as easily as one address. IMAP-ingested mail has no client: it is a bucket of its
own. Requests from no client at all (an import by staff, the web pages, which act only
on a token the address received) are not counted per network.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import ipaddress
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..clock import utcnow
from ..context import Context
from ..registry.model import AnswerLimits, Cap, ClientNetworks
from ..store import autoreplies, confirmations
from ..store.states import Intake
from ..store.subscribers import address_key

log = logging.getLogger(__name__)

IMAP = str(Intake.IMAP)
"""The bucket of mail taken from the IMAP mailbox: its client is not known to us."""
UNKNOWN = "unknown"
"""A message whose client was not recorded (stored before migration 0009)."""


def client_network(source: str, address: str | None, settings: ClientNetworks) -> str:
    """The network a message's client belongs to, as counted by the per-network caps."""
    if source == Intake.IMAP:
        return IMAP
    if address is None:
        return UNKNOWN
    return _network(address, settings.ipv4_prefix, settings.ipv6_prefix)


@functools.lru_cache(maxsize=4096)
def _network(address: str, ipv4_prefix: int, ipv6_prefix: int) -> str:
    # cached: parsing the address and building the network is a few percent of the
    # router's time per message (bench/inbound_subscribe.py), and clients repeat
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network((ip, prefix), strict=False))


class RateVerdict(enum.StrEnum):
    """May one more answer go out? Which rule said no, for the log (style.md 4)."""

    ALLOWED = "allowed"
    PER_ADDRESS = "per-address limit"
    PER_NETWORK = "per-network limit"
    OVERALL = "overall limit"


@dataclass(frozen=True)
class _Counts:
    """How one kind of answer is counted: each function counts rows since a time, the
    windowed ones up to a cap (bounded work per request)."""

    name: str
    per_address: Callable[[sa.Connection, str, dt.datetime], int]
    per_network: Callable[[sa.Connection, str, dt.datetime, int], int]
    overall: Callable[[sa.Connection, dt.datetime, int], int]
    per_networks: Callable[[sa.Connection, Collection[str], dt.datetime], dict[str, int]]
    per_addresses: Callable[[sa.Connection, Collection[str], dt.datetime], dict[str, int]]
    """By address key (`subscribers.address_key`)."""


_CONFIRMATIONS = _Counts(
    "confirmations",
    confirmations.sent_to_address_since,
    confirmations.from_network_since,
    confirmations.sent_since,
    confirmations.from_networks_since,
    confirmations.to_addresses_since,
)
_AUTO_REPLIES = _Counts(
    "auto_replies",
    autoreplies.to_address_since,
    autoreplies.from_network_since,
    autoreplies.since,
    autoreplies.from_networks_since,
    autoreplies.to_addresses_since,
)


def _since(now: dt.datetime, cap: Cap) -> dt.datetime:
    return now - dt.timedelta(hours=cap.window_hours)


_CACHE = "haishin_answer_counts"


@dataclass
class _Batch:
    """What one transaction (a worker batch) knows of the limits: the windowed counts
    taken, and the client networks and senders whose counts to take at first need."""

    transaction: object
    counts: dict[str, int] = field(default_factory=dict)
    networks: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    """Address keys (`subscribers.address_key`)."""
    taken: set[str] = field(default_factory=set)
    """The kinds (`_Counts.name`) whose counts for `networks` and `addresses` are in."""
    locked: set[str] = field(default_factory=set)
    """Address keys whose answers this transaction holds the lock of (PostgreSQL)."""


def _batch_of(conn: sa.Connection) -> _Batch:
    """The windowed counts taken in this transaction (a worker batch), kept up to date as
    answers are allowed: on SQLite the batch holds the write lock, so nobody else adds to
    them meanwhile (with several daemons on PostgreSQL a batch may overshoot by its own
    size). One per transaction, so the networks seen never pile up on a pooled
    connection."""
    transaction = conn.get_transaction()
    batch = conn.info.get(_CACHE)
    if not isinstance(batch, _Batch) or batch.transaction is not transaction:
        batch = _Batch(transaction)
        conn.info[_CACHE] = batch
    return batch


def _network_key(counts: _Counts, network: str) -> str:
    return f"haishin_{counts.name}_network_{network}"


def _address_key(counts: _Counts, key: str) -> str:
    return f"haishin_{counts.name}_address_{key}"


def prefetch(
    conn: sa.Connection,
    ctx: Context,
    networks: Collection[str],
    addresses: Collection[str] = (),
) -> None:
    """Name a worker batch's client networks and senders: the first check of each kind
    of answer in this transaction takes all their counts, one query per kind for the
    networks and one for the addresses, instead of one per network and one per request
    as each message asks (bench/inbound_subscribe.py: a batch of 20 clients from 20
    networks made 20 queries, and every request one more); a kind no message of the
    batch answers with is not counted at all."""
    batch = _batch_of(conn)
    batch.networks.update(networks)
    batch.addresses.update(address_key(a) for a in addresses)
    batch.taken.clear()  # names added: each kind takes what it lacks at its next check


def _take(conn: sa.Connection, kind: _Counts, limits: AnswerLimits) -> None:
    """The counts of the batch's networks and senders for `kind`, if not yet taken."""
    batch = _batch_of(conn)
    if kind.name in batch.taken:
        return
    batch.taken.add(kind.name)
    now = utcnow()
    counts = batch.counts
    todo = [n for n in batch.networks if _network_key(kind, n) not in counts]
    if todo:
        since = _since(now, limits.per_network)
        for network, seen in kind.per_networks(conn, todo, since).items():
            counts[_network_key(kind, network)] = seen
    todo = [k for k in batch.addresses if _address_key(kind, k) not in counts]
    if todo:
        since = _since(now, limits.per_address)
        for key, seen in kind.per_addresses(conn, todo, since).items():
            counts[_address_key(kind, key)] = seen


def _cached(conn: sa.Connection, key: str, count: Callable[[], int]) -> int:
    counts = _batch_of(conn).counts
    if key not in counts:
        counts[key] = count()
    return counts[key]


def _spend(conn: sa.Connection, key: str) -> None:
    _batch_of(conn).counts[key] += 1


_LOCK_ADDRESSES = sa.select(
    sa.func.pg_advisory_xact_lock(
        sa.func.unnest(sa.bindparam("keys", type_=postgresql.ARRAY(sa.BigInteger)))
    )
)
"""One statement that takes the locks in the order given (a Core statement naming no
table: store/deferred.py then writes no held rows and keeps what it read ahead)."""


def _lock_id(key: str) -> int:
    """An address key's advisory lock: a bigint from its hash."""
    digest = hashlib.sha256(b"haishin answers " + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_addresses(conn: sa.Connection, keys: Collection[str]) -> None:
    """PostgreSQL: hold each address's lock until this transaction ends, before its counts
    are read, so that two transactions answering one mailbox (two daemons, or web pages
    at the same moment) count one after the other and its cap holds: without it, 20 at
    once sent 12 against a cap of 10. In one global order (by hash), so two batches never
    wait on each other in a circle. SQLite's writer already holds the database's lock."""
    if conn.dialect.name != "postgresql":
        return
    batch = _batch_of(conn)
    todo = set(keys) - batch.locked
    if todo:
        conn.execute(_LOCK_ADDRESSES, {"keys": sorted(_lock_id(k) for k in todo)})
        batch.locked.update(todo)


def _check(
    conn: sa.Connection, counts: _Counts, limits: AnswerLimits, address: str, network: str | None
) -> RateVerdict:
    """The three rules in order; if all pass, the answer is counted as sent now."""
    _lock_addresses(conn, _batch_of(conn).addresses | {address_key(address)})
    _take(conn, counts, limits)
    now = utcnow()
    cap = limits.per_address
    key = _address_key(counts, address_key(address))
    seen = _cached(conn, key, lambda: counts.per_address(conn, address, _since(now, cap)))
    if seen >= cap.count:
        return RateVerdict.PER_ADDRESS
    keys = [key]
    if network is not None:
        cap = limits.per_network
        key = _network_key(counts, network)
        seen = _cached(
            conn, key, lambda: counts.per_network(conn, network, _since(now, cap), cap.count)
        )
        if seen >= cap.count:
            return RateVerdict.PER_NETWORK
        keys.append(key)
    overall = limits.overall
    key = f"haishin_{counts.name}_overall"
    seen = _cached(conn, key, lambda: counts.overall(conn, _since(now, overall), overall.count))
    if seen >= overall.count:
        return RateVerdict.OVERALL
    keys.append(key)
    for k in keys:  # the caller sends one now
        _spend(conn, k)
    return RateVerdict.ALLOWED


def confirmation(conn: sa.Connection, ctx: Context, address: str) -> RateVerdict:
    """May one more confirmation request go to `address`? (If yes, the caller records
    it in `confirmations` with `ctx.network`.)"""
    verdict = _check(conn, _CONFIRMATIONS, ctx.service.limits.confirmations, address, ctx.network)
    if verdict is not RateVerdict.ALLOWED:
        _not_sent("confirmation", ctx, address, verdict)
    return verdict


def answer(conn: sa.Connection, ctx: Context, address: str) -> RateVerdict:
    """May we send one more automatic answer (help, expired, already subscribed…) to
    `address`? If yes, it is counted now."""
    verdict = _check(conn, _AUTO_REPLIES, ctx.service.limits.auto_replies, address, ctx.network)
    if verdict is RateVerdict.ALLOWED:
        autoreplies.add(conn, address, utcnow(), ctx.network)
    else:
        _not_sent("answer", ctx, address, verdict)
    return verdict


def _not_sent(what: str, ctx: Context, address: str, verdict: RateVerdict) -> None:
    log.info(
        "%s to %s from network %s not sent: %s",
        what,
        ctx.keyring.redact(address),
        ctx.network or "(none)",
        verdict,
    )


def allowed(conn: sa.Connection, ctx: Context, address: str) -> bool:
    return confirmation(conn, ctx, address) is RateVerdict.ALLOWED


def answer_allowed(conn: sa.Connection, ctx: Context, address: str) -> bool:
    return answer(conn, ctx, address) is RateVerdict.ALLOWED
