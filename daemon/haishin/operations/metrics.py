"""Prometheus metrics for the daemon's /metrics (第4条(1)).

Store-derived figures (queue depth, delivery rate, deferrals, bounces, subscribers,
confirmation rate) are read at scrape time from one `status.snapshot`, so several daemons
sharing a database report the same truth; events only a process sees (registry reloads)
are counters of that process. Everything lives in a registry owned by the daemon, never
prometheus_client's global one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .daemons import DaemonState
from .status import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    def __init__(self, take: Callable[[], Snapshot]) -> None:
        self._take = take

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self._take()
        g = GaugeMetricFamily("haishin_inbound_messages", "Spool rows by state", labels=["state"])
        for state, n in s.inbound.items():
            g.add_metric([state], n)
        yield g
        g = GaugeMetricFamily(
            "haishin_outbound_messages", "Outbound rows by state", labels=["state"]
        )
        for state, n in s.outbound.items():
            g.add_metric([state], n)
        yield g
        yield GaugeMetricFamily(
            "haishin_outbound_deferred", "Queued rows waiting to retry", value=s.deferred
        )
        yield GaugeMetricFamily(
            "haishin_outbound_oldest_queued_seconds",
            "Age of the oldest queued row",
            value=s.oldest_queued_seconds,
        )
        yield GaugeMetricFamily(
            "haishin_delivery_rate",
            "Messages sent per second over the last 5 minutes",
            value=s.delivery_rate,
        )
        yield GaugeMetricFamily(
            "haishin_confirmation_rate",
            "Share of confirmation requests answered (24 h)",
            value=s.confirmation_rate,
        )
        g = GaugeMetricFamily(
            "haishin_post_pending",
            "Rows of one post still queued or sending (its id as in held and status --message)",
            labels=["post"],
        )
        for post_id, n in s.pending_by_post.items():
            g.add_metric([str(post_id)], n)
        yield g
        g = GaugeMetricFamily(
            "haishin_outbound_pending", "Rows queued or sending by kind of mail", labels=["kind"]
        )
        for kind, n in s.pending_by_kind.items():
            g.add_metric([kind], n)
        yield g
        g = GaugeMetricFamily(
            "haishin_subscribers", "Subscribers by channel and status", labels=["channel", "status"]
        )
        for (channel, status), n in s.subscribers.items():
            g.add_metric([channel, status], n)
        yield g


class RefusalCollector(Collector):
    """Refusals that speak about our sending, by reason and destination domain (issue 12,
    item 3): counted from the store's bounce events, so every daemon reports the same."""

    def __init__(self, take: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._take = take

    def collect(self) -> Iterator[CounterMetricFamily]:
        c = CounterMetricFamily(
            "haishin_bounce_sender_refusals",
            "Refusals about our sending (authfailure, requireptr, ...) by reason and domain",
            labels=["reason", "domain"],
        )
        for (reason, domain), n in sorted(self._take().items()):
            c.add_metric([reason, domain], n)
        yield c


class DaemonCollector(Collector):
    """Each daemon's liveness, holdings and rate (issue 16 item 3), read from the store
    so that every daemon reports all of them, the gone ones too."""

    def __init__(self, take: Callable[[], list[DaemonState]]) -> None:
        self._take = take

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = self._take()
        labels = ["daemon", "host"]
        families = {
            "up": GaugeMetricFamily(
                "haishin_daemon_up", "1 while its heartbeat is within the lease", labels=labels
            ),
            "heartbeat": GaugeMetricFamily(
                "haishin_daemon_heartbeat_timestamp_seconds",
                "When the daemon last said it was alive",
                labels=labels,
            ),
            "claimed": GaugeMetricFamily(
                "haishin_daemon_claimed_rows", "Rows claimed and not settled", labels=labels
            ),
            "rate": GaugeMetricFamily(
                "haishin_daemon_rate", "Messages sent per second over 10 s", labels=labels
            ),
        }
        lanes = GaugeMetricFamily(
            "haishin_daemon_lane_connections",
            "Connection slots of a limited domain the daemon holds",
            labels=[*labels, "domain"],
        )
        for d in states:
            key = [d.id, d.host]
            families["up"].add_metric(key, 1 if d.alive else 0)
            families["heartbeat"].add_metric(key, d.heartbeat_at.timestamp())
            families["claimed"].add_metric(key, d.claimed)
            families["rate"].add_metric(key, d.rate if d.alive else 0.0)
            for domain in sorted(set(d.lanes)):
                lanes.add_metric([*key, domain], d.lanes.count(domain))
        yield from families.values()
        yield lanes


class Metrics:
    """The daemon's metrics: a private registry with the store collector and counters."""

    def __init__(
        self,
        take: Callable[[], Snapshot],
        refusals: Callable[[], dict[tuple[str, str], int]] | None = None,
        daemons: Callable[[], list[DaemonState]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(take))
        if refusals is not None:
            self.registry.register(RefusalCollector(refusals))
        if daemons is not None:
            self.registry.register(DaemonCollector(daemons))
        self.reloads = Counter(
            "haishin_registry_reloads",
            "Registry reloads by result",
            ["result"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
