"""Grafana unified alerting's webhook contact point payload.

It is Alertmanager's v4 shape (Grafana embeds an Alertmanager) plus ``orgId``, ``title``,
``state`` and ``message`` at the top and ``values``, ``valueString``, ``silenceURL``,
``dashboardURL``, ``panelURL`` and ``imageURL`` on each alert. Grafana's ``version`` is
``"1"``; it is not checked, so later versions that keep the shape still parse.
"""

from __future__ import annotations

from typing import Any

from ...model import Notification
from ._common import (
    MAX_TEXT_BYTES,
    Cuts,
    PayloadError,
    envelope,
    get_int,
    get_string,
    require_object,
)

__all__ = ["parse_grafana"]


def parse_grafana(payload: Any) -> Notification:
    """Parse a Grafana (unified alerting) webhook notification.

    Args:
        payload: the decoded JSON body.

    Returns:
        The notification, ``source="grafana"``.

    Raises:
        PayloadError: a used field is missing or of the wrong type, or the payload is from
            Grafana's legacy (pre-8) alerting; the message names the field. What is too large
            is cut, not refused (see ``_common``).
    """
    root = require_object(payload, "")
    if "alerts" not in root and ("evalMatches" in root or "ruleName" in root):
        raise PayloadError(
            "",
            "is from Grafana's legacy dashboard alerting (ruleName/evalMatches); "
            "use a unified alerting webhook contact point",
        )
    cuts = Cuts()
    fields = envelope(root, grafana=True, cuts=cuts)
    title = get_string(root, "title", "", max_bytes=MAX_TEXT_BYTES, cuts=cuts)
    message = get_string(root, "message", "", max_bytes=MAX_TEXT_BYTES, cuts=cuts)
    state = get_string(root, "state", "", cuts=cuts)
    return Notification(
        source="grafana",
        **fields,
        title=title,
        message=message,
        org_id=get_int(root, "orgId", ""),
        state=state,
        cut_alerts=cuts.alerts,
        cut_values=cuts.values,
    )
