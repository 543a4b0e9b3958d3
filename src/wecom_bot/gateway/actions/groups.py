"""Alert groups: how the gateway names one, and what it keeps about one that is open.

A group is what an Alertmanager notification is about: its ``groupLabels`` (else its common
labels, see :func:`~wecom_bot.gateway.actions.links.group_matchers`), the same labels an
action link carries. Its id is a hash of those labels, so a link, a notification and the
console all name the same group. The store keeps a :class:`GroupInfo` for every open group
(``Outbox.open_group``); the console lists them and escalation writes its messages from them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import Notification
from .links import group_matchers

__all__ = ["GroupInfo", "group_id", "group_of"]


def group_id(labels: Iterable[tuple[str, str]]) -> str:
    """The id of the alert group named by ``labels`` (in any order)."""
    canonical = json.dumps(sorted(labels), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def group_of(notification: Notification) -> str | None:
    """The id of a notification's alert group, or ``None`` when it names none (a generic
    webhook, or no labels).

    An Alertmanager group is named by its ``groupLabels``. A route without ``group_by`` sends
    none: its common labels change as alerts come and go, so they cannot name one group from
    the first firing to the last resolve, and such a notification opens no group (no
    escalation or reminders; its links still acknowledge and silence)."""
    if notification.source == "generic":
        return None
    if notification.source == "alertmanager" and not notification.group_labels:
        return None
    labels = group_matchers(notification)
    return group_id(labels.items()) if labels else None


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """What the gateway keeps about an open alert group (untrusted values, escaped when shown).

    Attributes:
        labels: the group's labels, ``(name, value)`` pairs in the sender's order.
        name: its ``alertname`` (or the alert names, joined), for titles.
        source: ``alertmanager`` or ``grafana``.
        routes: the routes its last notification took.
        alerts: how many of its alerts fire.
        firing_since: the earliest start of its firing alerts (Unix seconds).
        external_url: the sender's own URL (where a silence is made), maybe ``""``.
        notification_id: its last notification in the history.
    """

    labels: tuple[tuple[str, str], ...]
    name: str
    source: str
    routes: tuple[str, ...]
    alerts: int
    firing_since: float
    external_url: str
    notification_id: str

    @property
    def id(self) -> str:
        """The group's id (see :func:`group_id`)."""
        return group_id(self.labels)

    @classmethod
    def of(
        cls, notification: Notification, routes: Sequence[str], *, notification_id: str, now: float
    ) -> GroupInfo | None:
        """The group of a notification, or ``None`` when it names none (see
        :func:`group_of`)."""
        if group_of(notification) is None:
            return None
        labels = group_matchers(notification)
        firing = notification.firing_alerts
        names = dict.fromkeys(a.labels.get("alertname", "") for a in notification.alerts)
        name = (
            labels.get("alertname")
            or notification.common_labels.get("alertname")
            or ", ".join(n for n in names if n)
            or notification.title
        )
        starts = [a.starts_at.timestamp() for a in firing]
        since = min([*starts, now]) if starts else now
        return cls(
            labels=tuple(labels.items()),
            name=name,
            source=notification.source,
            routes=tuple(routes),
            alerts=len(firing) if firing else notification.total_alerts,
            firing_since=since,
            external_url=notification.external_url,
            notification_id=notification_id,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as stored."""
        return {
            "labels": [list(p) for p in self.labels],
            "name": self.name,
            "source": self.source,
            "routes": list(self.routes),
            "alerts": self.alerts,
            "firing_since": self.firing_since,
            "external_url": self.external_url,
            "notification_id": self.notification_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupInfo:
        """The inverse of :meth:`to_json` (missing fields read as empty)."""
        return cls(
            labels=tuple((str(n), str(v)) for n, v in data.get("labels", ())),
            name=str(data.get("name", "")),
            source=str(data.get("source", "")),
            routes=tuple(str(r) for r in data.get("routes", ())),
            alerts=int(data.get("alerts", 0)),
            firing_since=float(data.get("firing_since", 0.0)),
            external_url=str(data.get("external_url", "")),
            notification_id=str(data.get("notification_id", "")),
        )
