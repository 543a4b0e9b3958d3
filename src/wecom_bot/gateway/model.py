"""What the gateway knows about an inbound notification, whatever sent it.

Every source (:mod:`wecom_bot.gateway.intake.sources`) turns its payload into one
:class:`Notification` holding zero or more :class:`Alert` objects. Everything after parsing
(routing, rendering, deduplication, history) works on these two types only.

Both are frozen dataclasses: cheap to build at thousands per second, and safe to share between
routes and bots. Their string fields hold the sender's text as received (sanitized to valid
UTF-8 and nothing more): they are **untrusted** and are escaped only when rendered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

__all__ = ["INBOX_BOT", "Alert", "Notification", "Source", "Status"]

INBOX_BOT = "~inbox"
"""The outbox "bot" whose records are accepted notifications, the journal (no configured bot
can be named so: bot names cannot start with ``~``)."""

Status = Literal["firing", "resolved"]
Source = Literal["alertmanager", "grafana", "generic"]

_STATUSES = ("firing", "resolved")
_SOURCES = ("alertmanager", "grafana", "generic")
# The idempotency key's canonical JSON (built once: json.dumps with options builds an encoder
# per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _empty() -> dict[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of a notification (Alertmanager webhook v4 fields, plus Grafana's extras).

    Attributes:
        status: ``"firing"`` or ``"resolved"``.
        labels: identifying labels (``alertname``, ``severity``, ``instance`` ...).
        annotations: descriptive text (``summary``, ``description``, ``runbook_url`` ...).
        starts_at: when it started firing (time-zone aware).
        ends_at: when it ended, or ``None`` when not ended (Alertmanager's zero time
            ``0001-01-01T00:00:00Z`` and a missing value both mean "not ended").
        generator_url: link to the rule or graph that produced it.
        fingerprint: the sender's stable identity for the label set (may be empty).
        values: Grafana: the query values that triggered it (``{"B": 44.2, "C": 1}``).
        value_string: Grafana: the same as text (``[ var='B' labels={} value=44.2 ]``).
        silence_url: Grafana: a link that creates a silence for it.
        dashboard_url: Grafana: the dashboard of the rule.
        panel_url: Grafana: the panel of the rule.
        image_url: Grafana: a screenshot of the panel.
    """

    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""
    fingerprint: str = ""
    values: Mapping[str, float] = field(default_factory=dict)
    value_string: str = ""
    silence_url: str = ""
    dashboard_url: str = ""
    panel_url: str = ""
    image_url: str = ""

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"status must be firing or resolved, not {self.status!r}")
        if self.starts_at.tzinfo is None:
            raise ValueError("starts_at must be time-zone aware")
        if self.ends_at is not None and self.ends_at.tzinfo is None:
            raise ValueError("ends_at must be time-zone aware")

    @property
    def firing(self) -> bool:
        """Whether the alert is firing."""
        return self.status == "firing"

    @property
    def identity(self) -> str:
        """The fingerprint, or a hash of the sorted labels when the sender gave none."""
        if self.fingerprint:
            return self.fingerprint
        canonical = json.dumps(sorted(self.labels.items()), ensure_ascii=False)
        return "labels:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Notification:
    """One inbound notification: a group of alerts, or one generic JSON document.

    Attributes:
        source: ``"alertmanager"``, ``"grafana"`` or ``"generic"``.
        status: ``"firing"`` when any alert fires, else ``"resolved"`` (generic: the payload's
            own ``status`` when it is one of those words, else ``"firing"``).
        receiver: the sender's receiver name (generic: the webhook name).
        alerts: the alerts, in the sender's order (empty for generic).
        group_labels: the labels the sender grouped by.
        common_labels: labels every alert shares.
        common_annotations: annotations every alert shares.
        external_url: the sender's own URL (Alertmanager's, Grafana's).
        group_key: the sender's identity of the group.
        truncated_alerts: alerts the sender left out of the payload (its ``max_alerts``).
        cut_alerts: alerts the gateway left out, past the most it keeps of one payload.
        cut_values: values (labels, annotations, URLs, texts) the gateway cut short, marked
            ``…(N bytes more)``, and pairs it left out, past the most it keeps per alert.
        title: Grafana: the rendered title (``[FIRING:2] (blue)``); generic: ``title`` if given.
        message: Grafana: the rendered message; generic: ``message``/``text`` if given.
        org_id: Grafana: the organisation id.
        state: Grafana: ``"alerting"``, ``"ok"`` ...
        raw: generic: the whole JSON payload.
    """

    source: Source
    status: Status
    receiver: str = ""
    alerts: tuple[Alert, ...] = ()
    group_labels: Mapping[str, str] = field(default_factory=_empty)
    common_labels: Mapping[str, str] = field(default_factory=_empty)
    common_annotations: Mapping[str, str] = field(default_factory=_empty)
    external_url: str = ""
    group_key: str = ""
    truncated_alerts: int = 0
    cut_alerts: int = 0
    cut_values: int = 0
    title: str = ""
    message: str = ""
    org_id: int | None = None
    state: str = ""
    raw: Any = None

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ValueError(f"source must be one of {', '.join(_SOURCES)}, not {self.source!r}")
        if self.status not in _STATUSES:
            raise ValueError(f"status must be firing or resolved, not {self.status!r}")
        if self.truncated_alerts < 0 or self.cut_alerts < 0 or self.cut_values < 0:
            raise ValueError("truncated_alerts, cut_alerts and cut_values must not be negative")

    @property
    def firing_alerts(self) -> tuple[Alert, ...]:
        """The alerts that are firing."""
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved_alerts(self) -> tuple[Alert, ...]:
        """The alerts that are resolved."""
        return tuple(a for a in self.alerts if a.status == "resolved")

    @property
    def total_alerts(self) -> int:
        """Every alert of the group: those kept, plus those the sender truncated and those the
        gateway cut."""
        return len(self.alerts) + self.truncated_alerts + self.cut_alerts

    def with_alerts(self, alerts: tuple[Alert, ...]) -> Notification:
        """A copy holding only ``alerts`` (the status follows: firing if any alert fires)."""
        status: Status = "firing" if any(a.firing for a in alerts) else "resolved"
        if not alerts:
            status = self.status
        return replace(self, alerts=tuple(alerts), status=status)

    def dedup_key(self) -> str:
        """A stable hash that is equal for the same notification sent again by a sender retry.

        Alertmanager and Grafana: receiver, group key, status and, for each alert sorted by
        identity, its fingerprint (or label hash), status and start time, plus the end time
        of resolved alerts. A firing alert's ``endsAt`` is left out: senders move it forward on
        every evaluation, and a retry must still match. Generic: the webhook name and the
        canonical JSON of the payload (sorted keys).

        Returns:
            64 hexadecimal characters (SHA-256).
        """
        if self.source == "generic":
            body: Any = [self.source, self.receiver, self.raw]
        else:
            alerts = sorted(
                (
                    a.identity,
                    a.status,
                    a.starts_at.isoformat(),
                    a.ends_at.isoformat() if a.ends_at is not None and not a.firing else "",
                )
                for a in self.alerts
            )
            body = [
                self.source,
                self.receiver,
                self.group_key,
                self.status,
                self.org_id,
                self.truncated_alerts,
                alerts,
            ]
            if self.cut_alerts:
                body.append(self.cut_alerts)
        canonical = _CANONICAL.encode(body)
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (times as RFC 3339 strings), for history and logs."""
        return {
            "source": self.source,
            "status": self.status,
            "receiver": self.receiver,
            "alerts": [_alert_dict(a) for a in self.alerts],
            "group_labels": dict(self.group_labels),
            "common_labels": dict(self.common_labels),
            "common_annotations": dict(self.common_annotations),
            "external_url": self.external_url,
            "group_key": self.group_key,
            "truncated_alerts": self.truncated_alerts,
            "cut_alerts": self.cut_alerts,
            "cut_values": self.cut_values,
            "title": self.title,
            "message": self.message,
            "org_id": self.org_id,
            "state": self.state,
            "raw": self.raw,
        }


def _alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at is not None else None,
        "generator_url": alert.generator_url,
        "fingerprint": alert.fingerprint,
        "values": dict(alert.values),
        "value_string": alert.value_string,
        "silence_url": alert.silence_url,
        "dashboard_url": alert.dashboard_url,
        "panel_url": alert.panel_url,
        "image_url": alert.image_url,
    }
