"""Which alerts of a notification are heartbeats, taken out before routing.

A heartbeat watches some sources (``alertmanager``, ``grafana``, ``webhook:<name>``) and
matches alerts one by one, on each alert's own labels plus ``__source__`` and
``__receiver__`` (a Watchdog arrives in a group of its own, or beside other alerts: only the
matching alerts are taken). The first heartbeat, in configuration order, whose matchers match
an alert takes it. A generic webhook's call has no alerts: it is matched whole, on the labels
routes match on (:func:`~wecom_bot.gateway.routing.routing_labels`).

Only a firing alert is a beat. A resolved Watchdog (Prometheus stopped evaluating the rule,
Alertmanager gave up on it) is taken, so it is not routed as an alert, but it does not count:
the switch then fires when the beats stop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..config import GatewayConfig, HeartbeatConfig
from ..model import Alert, Notification
from ..routing import Matcher, parse_matchers, routing_labels

__all__ = ["Heartbeat", "Taken", "compile_heartbeats", "take"]


@dataclass(frozen=True)
class Heartbeat:
    """A configured heartbeat with its matchers parsed.

    Attributes:
        config: its configuration.
        matchers: all must match an alert's labels.
    """

    config: HeartbeatConfig
    matchers: tuple[Matcher, ...]

    @classmethod
    def of(cls, config: HeartbeatConfig) -> Heartbeat:
        """Compile one configured heartbeat (its matchers were checked when it was loaded)."""
        return cls(config, parse_matchers(config.matchers))

    @property
    def name(self) -> str:
        """Its configured name."""
        return self.config.name

    def watches(self, notification: Notification) -> bool:
        """Whether ``notification`` comes from one of its sources."""
        if notification.source == "generic":
            return f"webhook:{notification.receiver}" in self.config.sources
        return notification.source in self.config.sources

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels``."""
        return all(m.matches(labels) for m in self.matchers)


def compile_heartbeats(config: GatewayConfig) -> tuple[Heartbeat, ...]:
    """The configured heartbeats, in order."""
    return tuple(Heartbeat.of(beat) for beat in config.heartbeats)


@dataclass(frozen=True)
class Taken:
    """A notification split into heartbeats and the rest.

    Attributes:
        rest: what is left to route: the notification itself when nothing was taken, a copy
            without the taken alerts, or ``None`` when everything was taken.
        beats: the heartbeats that beat (a firing alert or a webhook call matched), in order.
        taken: per heartbeat name, how many alerts it took (firing or resolved; 1 for a
            webhook call).
    """

    rest: Notification | None
    beats: tuple[Heartbeat, ...] = ()
    taken: Mapping[str, int] = field(default_factory=dict)


def _alert_labels(alert: Alert, notification: Notification) -> dict[str, str]:
    labels = dict(alert.labels)
    labels["__source__"] = notification.source
    labels["__receiver__"] = notification.receiver
    return labels


def take(heartbeats: Sequence[Heartbeat], notification: Notification) -> Taken:
    """Take the heartbeats out of ``notification`` (see the module docstring)."""
    watching = [h for h in heartbeats if h.watches(notification)]
    if not watching:
        return Taken(notification)
    if notification.source == "generic":
        labels = routing_labels(notification)
        for one in watching:
            if one.matches(labels):
                return Taken(None, (one,), {one.name: 1})
        return Taken(notification)
    keep: list[Alert] = []
    taken: dict[str, int] = {}
    beats: dict[str, Heartbeat] = {}
    for alert in notification.alerts:
        labels = _alert_labels(alert, notification)
        beat = next((h for h in watching if h.matches(labels)), None)
        if beat is None:
            keep.append(alert)
            continue
        taken[beat.name] = taken.get(beat.name, 0) + 1
        if alert.firing:
            beats.setdefault(beat.name, beat)
    if not taken:
        return Taken(notification)
    rest = notification.with_alerts(tuple(keep)) if keep else None
    order = [h for h in watching if h.name in beats]
    return Taken(rest, tuple(order), taken)
