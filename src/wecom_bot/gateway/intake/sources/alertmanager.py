"""Prometheus Alertmanager's webhook payload (``webhook_config``, format version 4)."""

from __future__ import annotations

from typing import Any

from ...model import Notification
from ._common import (
    Cuts,
    PayloadError,
    envelope,
    require_object,
)

__all__ = ["parse_alertmanager"]

VERSION = "4"


def parse_alertmanager(payload: Any) -> Notification:
    """Parse an Alertmanager webhook notification.

    Reads ``receiver``, ``status``, ``alerts[]`` (``status``, ``labels``, ``annotations``,
    ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``), ``groupLabels``,
    ``commonLabels``, ``commonAnnotations``, ``externalURL``, ``groupKey`` and
    ``truncatedAlerts``. ``version`` may be absent; when present it must be ``"4"``.

    Args:
        payload: the decoded JSON body.

    Returns:
        The notification, ``source="alertmanager"``.

    Raises:
        PayloadError: a used field is missing or of the wrong type; the message names the
            field. Size never is: what is too large is cut (see ``_common``).
    """
    root = require_object(payload, "")
    version = root.get("version")
    if version is not None and version != VERSION:
        hint = ""
        if "orgId" in root or "state" in root:
            hint = " (this looks like a Grafana payload: post it to /grafana)"
        raise PayloadError(
            "version", f'must be "4" (Alertmanager webhook v4), not {version!r}{hint}'
        )
    if "alerts" not in root and ("evalMatches" in root or "ruleName" in root):
        raise PayloadError("", "is a legacy Grafana alert, not an Alertmanager notification")
    cuts = Cuts()
    fields = envelope(root, grafana=False, cuts=cuts)
    return Notification(
        source="alertmanager", **fields, cut_alerts=cuts.alerts, cut_values=cuts.values
    )
