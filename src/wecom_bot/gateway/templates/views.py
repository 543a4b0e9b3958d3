"""What a template sees of a notification and of each alert: read-only views whose values are
escaped for the msgtype being rendered (see :mod:`.untrusted`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cached_property
from urllib.parse import quote

from ..model import Alert, Notification
from .escaping import safe_url
from .filters import format_duration
from .untrusted import Untrusted, UntrustedMap, wrap

__all__ = ["AlertView", "NotificationView", "title_of_notification"]


def _alertmanager_silence_url(external_url: str, labels: Mapping[str, str]) -> str:
    if not external_url or not labels:
        return ""
    matchers = ",".join(
        f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in sorted(labels.items())
    )
    base = external_url.rstrip("/")
    return safe_url(f"{base}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}")


class AlertView:
    """An alert as a template sees it (payload strings are :class:`Untrusted`).

    Attributes:
        status: ``"firing"`` or ``"resolved"``.
        firing: whether it fires.
        labels: label mapping. annotations: annotation mapping.
        name: the ``alertname`` label. severity: the ``severity`` label.
        summary, description, runbook_url: those annotations.
        starts_at, ends_at: aware datetimes (``ends_at`` ``None`` when not ended); format
            them with ``|localtime``.
        duration: how long it fired (until now for a firing alert), e.g. ``"2h 5m"``.
        generator_url, fingerprint, values, value_string, silence_url, dashboard_url,
        panel_url, image_url: the payload's fields.
        source_link, silence_link, runbook_link, dashboard_link, panel_link, image_link:
            safe http(s) URLs for link targets, or ``""``. ``silence_link`` is Grafana's
            ``silenceURL`` or, for Alertmanager, a new-silence link on its ``externalURL``.
    """

    def __init__(
        self, alert: Alert, notification: Notification, esc: Callable[[str], str], now: datetime
    ) -> None:
        self.status = alert.status
        self.firing = alert.firing
        self.labels = UntrustedMap(alert.labels, esc)
        self.annotations = UntrustedMap(alert.annotations, esc)
        self.name = Untrusted(alert.labels.get("alertname", ""), esc)
        self.severity = Untrusted(alert.labels.get("severity", ""), esc)
        self.summary = Untrusted(alert.annotations.get("summary", ""), esc)
        self.description = Untrusted(alert.annotations.get("description", ""), esc)
        self.runbook_url = Untrusted(alert.annotations.get("runbook_url", ""), esc)
        self.starts_at = alert.starts_at
        self.ends_at = alert.ends_at
        end = alert.ends_at if (not alert.firing and alert.ends_at is not None) else now
        self.duration = format_duration(end - alert.starts_at)
        self.generator_url = Untrusted(alert.generator_url, esc)
        self.fingerprint = Untrusted(alert.fingerprint, esc)
        self.values = UntrustedMap(alert.values, esc)
        self.value_string = Untrusted(alert.value_string, esc)
        self.silence_url = Untrusted(alert.silence_url, esc)
        self.dashboard_url = Untrusted(alert.dashboard_url, esc)
        self.panel_url = Untrusted(alert.panel_url, esc)
        self.image_url = Untrusted(alert.image_url, esc)
        self._alert = alert
        self._notification = notification

    @cached_property
    def source_link(self) -> str:
        """``generatorURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.generator_url)

    @cached_property
    def silence_link(self) -> str:
        """Grafana's ``silenceURL``, or a new-silence link on Alertmanager's ``externalURL``."""
        alert, notification = self._alert, self._notification
        if alert.silence_url:
            return safe_url(alert.silence_url)
        if notification.source == "alertmanager" and alert.firing:
            return _alertmanager_silence_url(notification.external_url, alert.labels)
        return ""

    @cached_property
    def runbook_link(self) -> str:
        """The ``runbook_url`` annotation as a safe link target, or ``""``."""
        return safe_url(self._alert.annotations.get("runbook_url", ""))

    @cached_property
    def dashboard_link(self) -> str:
        """Grafana's ``dashboardURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.dashboard_url)

    @cached_property
    def panel_link(self) -> str:
        """Grafana's ``panelURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.panel_url)

    @cached_property
    def image_link(self) -> str:
        """Grafana's ``imageURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.image_url)


class NotificationView:
    """A notification as a template sees it: every field of :class:`~.model.Notification`,
    payload strings as :class:`Untrusted`, ``alerts`` as :class:`AlertView` (all of them)."""

    def __init__(
        self, notification: Notification, alerts: list[AlertView], esc: Callable[[str], str]
    ) -> None:
        self.source = notification.source
        self.status = notification.status
        self.receiver = Untrusted(notification.receiver, esc)
        self.alerts = alerts
        self.group_labels = UntrustedMap(notification.group_labels, esc)
        self.common_labels = UntrustedMap(notification.common_labels, esc)
        self.common_annotations = UntrustedMap(notification.common_annotations, esc)
        self.external_url = Untrusted(notification.external_url, esc)
        self.group_key = Untrusted(notification.group_key, esc)
        self.truncated_alerts = notification.truncated_alerts
        self.title = Untrusted(notification.title, esc)
        self.message = Untrusted(notification.message, esc)
        self.org_id = notification.org_id
        self.state = Untrusted(notification.state, esc)
        self.raw = wrap(notification.raw, esc)


def title_of_notification(notification: Notification) -> str:
    if notification.source == "generic":
        return notification.title or notification.receiver
    alertname = notification.common_labels.get("alertname")
    if alertname:
        return alertname
    if notification.group_labels:
        return " ".join(notification.group_labels.values())
    names = dict.fromkeys(a.labels.get("alertname", "") for a in notification.alerts)
    names.pop("", None)
    if names:
        return ", ".join(list(names)[:3]) + (" ..." if len(names) > 3 else "")
    return notification.title or notification.receiver or "alert"
