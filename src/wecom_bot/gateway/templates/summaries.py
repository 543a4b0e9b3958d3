"""Storm summaries: what the built-in (or a configured) ``summary`` template is given.

A notification with more alerts than ``max_alerts_per_message``, and a backlog the dispatcher
folds, are written as a summary built from the alerts themselves (:mod:`wecom_bot.storm`):
grouped by alertname and status, shared labels once, the labels that differ compressed
(``host-[0-999]``), severities counted, the earliest start. Every alert stays identifiable.

Label names and values are written as :func:`wecom_bot.storm.literal` writes them, in the
entries, the shared labels, the keys and the severities alike: a missing label as ``-``, the
empty value as ``""``, a value a reader could misread (whitespace, a double quote) as a JSON
string, ``"disk C"``; everything else as it is. The alertname is written the same way.

Variables of the ``summary`` template
    ``groups``: the groups, firing first; each has ``name`` (the alertname), ``status``,
    ``firing`` (bool), ``count``, ``shared`` (``"k=v"`` texts), ``severities`` (pairs of
    severity and count, when they differ), ``keys`` (the label names that tell the alerts
    apart), ``entries`` (the compressed identities; with one key, its values, else
    ``"k=v, key: values"``), ``since`` (the earliest start, a datetime or ``None``) and
    ``summary`` (the ``summary`` annotation every alert of the group shares, or empty).
    ``total``, ``firing_count``, ``resolved_count``, ``firing`` (any firing), ``status``,
    ``notifications`` (how many notifications a digest folds; 1 for one notification),
    ``running_total`` (a later part of a storm delivered in several paced parts: the distinct
    alerts the robot has delivered since the storm began, this part's included, per status:
    ``running_total.firing``, ``running_total.resolved``; only the statuses whose running total
    is more than this summary's own count are there, so it is empty (false) for a storm's
    first part and for a notification's own summary),
    ``cut_alerts`` (alerts the sender or the gateway left out), ``value_bytes`` (the most bytes
    one label value takes before it is cut ``…(N bytes more)``), ``history_url`` (the
    console's history of these alerts, where each is whole; ``None`` without
    ``external_url``), ``msgtype``, ``now`` and ``timezone``. Every text in them is escaped for
    the msgtype already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from ... import limits
from ...storm import SUMMARY_BYTES, AlertBrief, AlertGroup, cut_value, group_alerts, literal
from ..model import Alert, Notification

__all__ = ["GroupView", "brief_of", "briefs_of_notification", "history_link", "summary_context"]

_MIN_VALUE_BYTES = 32
_MAX_VALUE_BYTES = 256


def brief_of(alert: Alert) -> AlertBrief:
    """What a summary needs of ``alert``."""
    summary = alert.annotations.get("summary", "")
    return AlertBrief(
        labels=dict(alert.labels),
        status=alert.status,
        starts_at=alert.starts_at.timestamp(),
        summary=cut_value(" ".join(summary.split()), SUMMARY_BYTES) if summary else "",
    )


def briefs_of_notification(notification: Notification) -> list[AlertBrief]:
    """The briefs of every alert of ``notification`` (none for a generic webhook)."""
    return [brief_of(a) for a in notification.alerts]


@dataclass(frozen=True)
class GroupView:
    """One group as the ``summary`` template sees it (texts escaped for the msgtype)."""

    name: str
    status: str
    firing: bool
    count: int
    shared: list[str]
    severities: list[tuple[str, int]]
    keys: list[str]
    entries: list[str]
    since: datetime | None
    summary: str


def value_budget(alerts: int, msgtype: str, max_messages: int | None) -> int:
    """The bytes one label value may take: an alert's share of the messages available."""
    room = limits.CONTENT_LIMITS[msgtype] * max(max_messages or 1, 1)
    return max(_MIN_VALUE_BYTES, min(_MAX_VALUE_BYTES, room // max(alerts, 1)))


def _view(group: AlertGroup, esc: Callable[[str], str], value_bytes: int) -> GroupView:
    def shown(value: str | None) -> str:
        return literal(None if value is None else cut_value(value, value_bytes), esc)

    return GroupView(
        name=shown(group.alertname),
        status=group.status,
        firing=group.status == "firing",
        count=group.count,
        shared=[f"{shown(k)}={shown(v)}" for k, v in group.shared.items()],
        severities=[(shown(k), n) for k, n in group.severities.items()],
        keys=[shown(k) for k in group.keys],
        entries=group.entries(esc, value_bytes),
        since=datetime.fromtimestamp(group.earliest, UTC) if group.earliest else None,
        summary=esc(" ".join(cut_value(group.summary, value_bytes).split())),
    )


def summary_context(
    briefs: Sequence[AlertBrief],
    *,
    msgtype: str,
    esc: Callable[[str], str],
    max_messages: int | None = None,
    notifications: int = 1,
    cut_alerts: int = 0,
    console_url: str | None = None,
    running_total: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The variables of the ``summary`` template for ``briefs`` (see the module docs).

    Args:
        briefs: the alerts, in arrival order.
        msgtype: the msgtype rendered.
        esc: the escaper of ``msgtype``.
        max_messages: the messages the summary may take (sets each value's share).
        notifications: how many notifications the alerts came in.
        cut_alerts: alerts left out before they got here (the sender's ``truncatedAlerts``).
        console_url: the console's address as people reach it (``external_url`` + ``/ui/``).
        running_total: the storm's running total per status (see the module docs); ``None``:
            the first part, or not part of a paced storm.
    """
    value_bytes = value_budget(len(briefs), msgtype, max_messages)
    groups = [_view(g, esc, value_bytes) for g in group_alerts(briefs)]
    firing = sum(g.count for g in groups if g.firing)
    resolved = sum(g.count for g in groups if not g.firing)
    return {
        "groups": groups,
        "total": firing + resolved,
        "firing_count": firing,
        "resolved_count": resolved,
        "firing": firing > 0,
        "status": "firing" if firing else "resolved",
        "notifications": notifications,
        "running_total": {
            status: total
            for status, total in (running_total or {}).items()
            if total > (firing if status == "firing" else resolved)
        },
        "cut_alerts": cut_alerts,
        "value_bytes": value_bytes,
        "history_url": history_link(console_url, briefs) if console_url else None,
        "msgtype": msgtype,
    }


def history_link(console_url: str, briefs: Sequence[AlertBrief]) -> str:
    """The console's history view filtered to ``briefs``: received since a minute before the
    earliest start, and their alertname when they share one (the view lists every alert
    whole, values a summary cut included)."""
    params: dict[str, str] = {}
    names = {b.labels.get("alertname", "") for b in briefs}
    if len(names) == 1 and (name := names.pop()) and "," not in name:
        params["label"] = f"alertname={name}"
    starts = [b.starts_at for b in briefs if b.starts_at]
    if starts:
        params["since"] = str(int(min(starts)) - 60)
    return f"{console_url}#history" + (f"?{urlencode(params)}" if params else "")
