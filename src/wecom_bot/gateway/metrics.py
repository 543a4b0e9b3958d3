"""Prometheus metrics of one gateway (a registry per app: two apps never share counters).

Labels carry bot names and sources, never keys.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..dispatcher import DispatchObserver
from ..errors import DeliveryError
from ..store import OutboxRecord

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class GatewayMetrics:
    """Counters, gauges and histograms of the data path, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._received_from: dict[str, Any] = {}
        self.received = Counter(
            "wecom_bot_notifications_received",
            "Inbound notifications accepted for processing",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            "wecom_bot_requests_rejected",
            "Inbound requests refused (bad payload, auth, size, store down)",
            ["source", "reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "wecom_bot_notifications_duplicate",
            "Notifications recognised as a sender's retry and queued only once",
            ["source"],
            registry=r,
        )
        self.rendered = Counter(
            "wecom_bot_messages_rendered",
            "Messages rendered from notifications",
            ["bot"],
            registry=r,
        )
        self.queued = Counter(
            "wecom_bot_messages_queued", "Messages stored in the outbox", ["bot"], registry=r
        )
        self.sent = Counter("wecom_bot_messages_sent", "Messages delivered", ["bot"], registry=r)
        self.retried = Counter(
            "wecom_bot_messages_retried",
            "Delivery attempts that failed and will be retried",
            ["bot", "error"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "wecom_bot_messages_dead_lettered",
            "Messages moved to dead letters",
            ["bot"],
            registry=r,
        )
        self.rate_limit_wait = Counter(
            "wecom_bot_rate_limit_wait_seconds",
            "Time spent waiting for a send slot under the rate limit",
            ["bot"],
            registry=r,
        )
        self.digest_items = Counter(
            "wecom_bot_digest_items", "Messages folded into digests", ["bot"], registry=r
        )
        self.digest_messages = Counter(
            "wecom_bot_digest_messages", "Digest messages created", ["bot"], registry=r
        )
        self.graphs = Counter(
            "wecom_bot_graphs",
            "Alert graphs by outcome: queued, skipped (not allowed), failed, storm, late, busy",
            ["outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "wecom_bot_queue_depth", "Undelivered messages in the outbox", ["bot"], registry=r
        )
        self.inbox_depth = Gauge(
            "wecom_bot_inbox_depth",
            "Notifications accepted and journaled, not rendered into messages yet",
            registry=r,
        )
        self.inbox_dead = Gauge(
            "wecom_bot_inbox_dead_letters",
            "Notifications that could not be rendered (dead letters of the journal)",
            registry=r,
        )
        self.groups_trimmed = Counter(
            "wecom_bot_groups_trimmed",
            "Open alert groups forgotten, oldest first, because more than max_open_groups were "
            "open (their escalation and reminders will not fire)",
            registry=r,
        )
        self.heartbeat_last_seen = Gauge(
            "wecom_bot_heartbeat_last_seen_timestamp_seconds",
            "When each configured heartbeat last beat (Unix seconds; 0: not since it was "
            "configured)",
            ["heartbeat"],
            registry=r,
        )
        self.heartbeat_missing = Gauge(
            "wecom_bot_heartbeat_missing",
            "1 while a heartbeat is missing (its miss message was sent and it has not beaten "
            "since), else 0",
            ["heartbeat"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "wecom_bot_dead_letters", "Dead letters waiting for an operator", ["bot"], registry=r
        )
        self.oldest_due = Gauge(
            "wecom_bot_oldest_due_seconds",
            "How long the oldest message due for a bot has waited to be claimed (the store "
            "watch; delivery counts as stuck past 600 s with nothing sent meanwhile)",
            ["bot"],
            registry=r,
        )
        self.store_incidents = Counter(
            "wecom_bot_store_incidents",
            "Times the store lost or nearly lost what it held: file_deleted (written back, "
            "nothing lost), file_replaced (not ready until restart), redis_emptied (lost)",
            ["kind"],
            registry=r,
        )
        self.latency = Histogram(
            "wecom_bot_delivery_latency_seconds",
            "Seconds from enqueue to errcode 0",
            ["bot"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )

    def count_received(self, source: str) -> None:
        """Count one notification received from ``source`` (on the request path: the
        labelled child is looked up once per source, not per request)."""
        child = self._received_from.get(source)
        if child is None:
            child = self._received_from[source] = self.received.labels(source)
        child.inc()

    def exposition(self) -> bytes:
        """The text for ``GET /metrics``."""
        return generate_latest(self.registry)


class MetricsObserver(DispatchObserver):
    """Feeds the dispatcher's events into :class:`GatewayMetrics`."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def sent(self, bot: str, record: OutboxRecord, seconds_since_created: float) -> None:
        """Count a delivery and its end-to-end latency."""
        self.metrics.sent.labels(bot).inc()
        self.metrics.latency.labels(bot).observe(max(seconds_since_created, 0.0))

    def retried(self, bot: str, record: OutboxRecord, error: DeliveryError, delay: float) -> None:
        """Count a failed attempt that will be retried, by error class."""
        self.metrics.retried.labels(bot, type(error).__name__).inc()

    def dead_lettered(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """Count a dead letter."""
        self.metrics.dead_lettered.labels(bot).inc()

    def rate_limit_wait(self, bot: str, seconds: float) -> None:
        """Add time spent waiting for a slot."""
        self.metrics.rate_limit_wait.labels(bot).inc(seconds)

    def digested(self, bot: str, items: int, messages: int, compact: bool) -> None:
        """Count items folded into digests."""
        self.metrics.digest_items.labels(bot).inc(items)
        self.metrics.digest_messages.labels(bot).inc(messages)
