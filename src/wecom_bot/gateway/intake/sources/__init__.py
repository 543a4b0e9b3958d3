"""Inbound payload parsers: each turns one sender's JSON into a :class:`~..model.Notification`.

* :func:`parse_alertmanager`: Prometheus Alertmanager webhook, format version 4.
* :func:`parse_grafana`: Grafana unified alerting's webhook contact point.
* :func:`parse_generic`: any JSON document, kept whole for its template.

Each raises :class:`PayloadError` (a ``ValueError``) whose message names the offending field
by its JSON path and says what is wrong (``alerts[2].labels must be an object of strings
(alerts[2].labels.team is a number)``); the gateway answers it with HTTP 422. Parsers are
lenient with fields they do not use and strict with the types of those they do. Size is not a
reason to refuse (the sender would drop the alerts): more than :data:`MAX_ALERTS` alerts, a
value over :data:`MAX_VALUE_BYTES` and the like are cut, marked and counted in the
notification's ``cut_alerts`` and ``cut_values``.
"""

from typing import Any

from ...model import Notification
from ._common import MAX_ALERTS, MAX_PAIRS, MAX_TEXT_BYTES, MAX_VALUE_BYTES, PayloadError
from .alertmanager import parse_alertmanager
from .generic import MAX_GENERIC_DEPTH, MAX_GENERIC_NODES, parse_generic
from .grafana import parse_grafana

PayloadError.__module__ = __name__


def parse_payload(source: str, payload: Any, *, webhook: str = "") -> Notification:
    """Parse ``payload`` with the parser of ``source`` (``generic`` needs its ``webhook`` name).

    Raises:
        PayloadError: the payload is not valid for ``source``, or ``source`` is unknown.
    """
    if source == "alertmanager":
        return parse_alertmanager(payload)
    if source == "grafana":
        return parse_grafana(payload)
    if source == "generic" and webhook:
        return parse_generic(webhook, payload)
    raise PayloadError("source", f"is unknown: {source!r}")


__all__ = [
    "MAX_ALERTS",
    "MAX_GENERIC_DEPTH",
    "MAX_GENERIC_NODES",
    "MAX_PAIRS",
    "MAX_TEXT_BYTES",
    "MAX_VALUE_BYTES",
    "PayloadError",
    "parse_alertmanager",
    "parse_generic",
    "parse_grafana",
    "parse_payload",
]
