"""Sample payloads, shaped like the real ones: for ``gateway check``, the console playground,
``make run`` and tests.

Each function returns a fresh dict (safe to modify). Times are relative to ``now`` (default: the
current time), so durations read naturally in a demo; pass a fixed ``now`` for repeatable output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .model import Notification

__all__ = [
    "SAMPLES",
    "alertmanager_firing",
    "alertmanager_resolved",
    "generic",
    "grafana_firing",
    "grafana_resolved",
    "sample_notification",
    "sample_notifications",
]

_ZERO_TIME = "0001-01-01T00:00:00Z"
_EXTERNAL = "http://alertmanager.example.com:9093"
_PROMETHEUS = "http://prometheus.example.com:9090"
_GRAFANA = "https://grafana.example.com/"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _am_alert(
    now: datetime,
    *,
    alertname: str,
    instance: str,
    severity: str,
    summary: str,
    description: str,
    fingerprint: str,
    started_ago: timedelta,
    resolved_ago: timedelta | None = None,
    expr: str = "up == 0",
) -> dict[str, Any]:
    return {
        "status": "resolved" if resolved_ago is not None else "firing",
        "labels": {
            "alertname": alertname,
            "instance": instance,
            "job": "node",
            "severity": severity,
            "team": "db",
        },
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"https://runbooks.example.com/{alertname.lower()}",
        },
        "startsAt": _iso(now - started_ago),
        "endsAt": _iso(now - resolved_ago) if resolved_ago is not None else _ZERO_TIME,
        "generatorURL": f"{_PROMETHEUS}/graph?g0.expr={expr.replace(' ', '+')}&g0.tab=1",
        "fingerprint": fingerprint,
    }


def _am_envelope(status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "receiver": "wecom-bot",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU", "job": "node", "team": "db"},
        "commonAnnotations": {},
        "externalURL": _EXTERNAL,
        "version": "4",
        "groupKey": '{}/{team="db"}:{alertname="HighCPU"}',
        "truncatedAlerts": 0,
    }


def alertmanager_firing(now: datetime | None = None) -> dict[str, Any]:
    """An Alertmanager v4 notification with two firing alerts of one group."""
    at = _now(now)
    return _am_envelope(
        "firing",
        [
            _am_alert(
                at,
                alertname="HighCPU",
                instance="db-1.example.com:9100",
                severity="critical",
                summary="CPU usage above 95% on db-1",
                description="CPU usage has been above 95% for 10 minutes.\nLoad average: 31.2",
                fingerprint="5f1e9c3a2b7d4e01",
                started_ago=timedelta(minutes=12),
                expr="rate(node_cpu_seconds_total[5m]) > 0.95",
            ),
            _am_alert(
                at,
                alertname="HighCPU",
                instance="db-2.example.com:9100",
                severity="warning",
                summary="CPU usage above 85% on db-2",
                description="CPU usage has been above 85% for 5 minutes.",
                fingerprint="9a7c2d4e6f8b1a03",
                started_ago=timedelta(minutes=6),
                expr="rate(node_cpu_seconds_total[5m]) > 0.85",
            ),
        ],
    )


def alertmanager_resolved(now: datetime | None = None) -> dict[str, Any]:
    """The same group as :func:`alertmanager_firing`, resolved."""
    at = _now(now)
    payload = alertmanager_firing(at)
    for alert, ago in zip(
        payload["alerts"], (timedelta(minutes=1), timedelta(minutes=2)), strict=True
    ):
        alert["status"] = "resolved"
        alert["endsAt"] = _iso(at - ago)
    payload["status"] = "resolved"
    return payload


def _grafana_alert(
    now: datetime, *, zone: str, value: float, fingerprint: str, resolved: bool
) -> dict[str, Any]:
    return {
        "status": "resolved" if resolved else "firing",
        "labels": {"alertname": "High memory usage", "team": "blue", "zone": zone},
        "annotations": {
            "description": "The system has high memory usage",
            "runbook_url": "https://runbooks.example.com/memory",
            "summary": f"Memory usage above 90% in zone {zone}",
        },
        "startsAt": _iso(now - timedelta(minutes=20)),
        "endsAt": _iso(now - timedelta(minutes=1)) if resolved else _ZERO_TIME,
        "generatorURL": f"{_GRAFANA}alerting/grafana/aef1d2c3/view",
        "fingerprint": fingerprint,
        "silenceURL": (
            f"{_GRAFANA}alerting/silence/new?alertmanager=grafana"
            f"&matcher=alertname%3DHigh+memory+usage&matcher=zone%3D{zone}"
        ),
        "dashboardURL": f"{_GRAFANA}d/mem01?orgId=1",
        "panelURL": f"{_GRAFANA}d/mem01?orgId=1&viewPanel=2",
        "values": {"B": value, "C": 1 if not resolved else 0},
        "valueString": f"[ var='B' labels={{zone={zone}}} value={value} ]",
    }


def grafana_firing(now: datetime | None = None) -> dict[str, Any]:
    """A Grafana unified-alerting webhook notification with two firing alerts."""
    at = _now(now)
    return {
        "receiver": "wecom-bot",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            _grafana_alert(
                at, zone="us-1", value=93.4, fingerprint="c6eadffa33fcdf37", resolved=False
            ),
            _grafana_alert(
                at, zone="eu-1", value=91.2, fingerprint="bc97ff14869b13e3", resolved=False
            ),
        ],
        "groupLabels": {"alertname": "High memory usage"},
        "commonLabels": {"alertname": "High memory usage", "team": "blue"},
        "commonAnnotations": {"description": "The system has high memory usage"},
        "externalURL": _GRAFANA,
        "version": "1",
        "groupKey": '{}:{alertname="High memory usage"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:2] High memory usage (blue)",
        "state": "alerting",
        "message": "**Firing**\n\nValue: B=93.4\nLabels:\n - alertname = High memory usage\n",
    }


def grafana_resolved(now: datetime | None = None) -> dict[str, Any]:
    """The same group as :func:`grafana_firing`, resolved."""
    at = _now(now)
    payload = grafana_firing(at)
    payload["alerts"] = [
        _grafana_alert(at, zone="us-1", value=42.0, fingerprint="c6eadffa33fcdf37", resolved=True),
        _grafana_alert(at, zone="eu-1", value=40.5, fingerprint="bc97ff14869b13e3", resolved=True),
    ]
    payload.update(
        status="resolved",
        title="[RESOLVED] High memory usage (blue)",
        state="ok",
        message="**Resolved**\n\nLabels:\n - alertname = High memory usage\n",
    )
    return payload


def generic(now: datetime | None = None) -> dict[str, Any]:
    """A generic JSON document (a deployment event from a CI system)."""
    at = _now(now)
    return {
        "title": "Deployment finished",
        "message": "api v2.14.0 deployed to production",
        "service": "api",
        "version": "2.14.0",
        "environment": "production",
        "status": "firing",
        "duration_seconds": 184,
        "finished_at": _iso(at),
        "changes": ["feat: rate limit per tenant", "fix: retry on 502"],
    }


SAMPLES: Mapping[str, tuple[str, Callable[[datetime | None], dict[str, Any]]]] = {
    "alertmanager_firing": ("alertmanager", alertmanager_firing),
    "alertmanager_resolved": ("alertmanager", alertmanager_resolved),
    "grafana_firing": ("grafana", grafana_firing),
    "grafana_resolved": ("grafana", grafana_resolved),
    "generic": ("generic", generic),
}
"""Sample name -> (source, payload factory)."""


def sample_notification(name: str, now: datetime | None = None) -> Notification:
    """Parse the sample ``name`` (a key of :data:`SAMPLES`) into a notification.

    Raises:
        KeyError: no sample has that name.
    """
    from .intake.sources import parse_alertmanager, parse_generic, parse_grafana

    source, factory = SAMPLES[name]
    payload = factory(now)
    if source == "alertmanager":
        return parse_alertmanager(payload)
    if source == "grafana":
        return parse_grafana(payload)
    return parse_generic("sample", payload)


def sample_notifications(now: datetime | None = None) -> list[Notification]:
    """Every sample, parsed, in :data:`SAMPLES` order."""
    return [sample_notification(name, now) for name in SAMPLES]
