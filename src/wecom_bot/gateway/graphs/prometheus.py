"""From an alert to the chart of its expression: one ``query_range``, then the series to draw.

The window runs from ``graphs.window`` before the earliest ``startsAt`` of the alerts to now
(at most ``graphs.max_window``), with a step that keeps every series within
``graphs.max_points``. The alerts' own series (those whose labels all equal the alert's:
an alert's labels are its series' labels plus the rule's) are highlighted; of the others the
``graphs.max_series`` with the highest values are kept.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from ..config import GraphsConfig
from ..model import Alert
from .chart import ChartRequest, Series, Threshold
from .promql import Expression
from .sources import GraphFetchError, Source, bounded_get

__all__ = ["RawSeries", "Window", "chart_request", "query_range", "window_of"]

_IDENTITY_LABELS = ("instance", "job", "pod", "namespace", "service", "host", "device")


@dataclass(frozen=True)
class RawSeries:
    """One series of a ``query_range`` answer."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Window:
    """The span a chart covers and its step (seconds)."""

    start: float
    end: float
    step: float


def window_of(alerts: Sequence[Alert], config: GraphsConfig, now: float) -> Window:
    """The window for ``alerts`` at ``now`` (see the module docs)."""
    fired = min((a.starts_at.timestamp() for a in alerts), default=now)
    start = max(min(fired, now) - config.window, now - config.max_window)
    span = max(now - start, 1.0)
    step = max(math.ceil(span / (config.max_points - 1)), 1)
    return Window(start, now, float(step))


async def query_range(
    client: httpx.AsyncClient,
    source: Source,
    query: str,
    window: Window,
    config: GraphsConfig,
) -> list[RawSeries]:
    """Ask ``source`` for ``query`` over ``window``.

    Raises:
        GraphFetchError: no answer in time, too large, not a matrix.
    """
    params = {
        "query": query,
        "start": f"{window.start:.3f}",
        "end": f"{window.end:.3f}",
        "step": f"{window.step:g}",
        "timeout": f"{config.query_timeout:g}s",
    }
    body = await bounded_get(
        client, source, source.address("/api/v1/query_range"), params=params,
        max_bytes=config.max_response_bytes, timeout=config.query_timeout,
    )  # fmt: skip
    # Off the event loop: an answer of several MiB takes a while to decode.
    return await asyncio.to_thread(_matrix, body, source.field, config.max_points)


def _matrix(body: bytes, field: str, max_points: int) -> list[RawSeries]:
    """The series of a ``query_range`` answer.

    Raises:
        GraphFetchError: it is not a successful matrix.
    """
    try:
        answer = json.loads(body)
        data = answer["data"]
        if answer.get("status") != "success" or data.get("resultType") != "matrix":
            raise ValueError("not a matrix")
        series = []
        for item in data["result"]:
            labels = {str(k): str(v) for k, v in dict(item.get("metric") or {}).items()}
            points = tuple(
                (float(t), float(v))
                for t, v in item.get("values") or ()
                if math.isfinite(float(v))
            )
            series.append(RawSeries(labels, points[:max_points]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # cut: a ValueError quotes the offending value whole, and the answer is megabytes
        reason = _shortened(str(exc), 120)
        raise GraphFetchError(f"{field}: not a query_range answer ({reason})") from None
    return series


def matches(series_labels: Mapping[str, str], alert: Alert) -> bool:
    """Whether ``alert`` is this series firing: every label of the series (its name apart)
    has the same value on the alert."""
    own = {k: v for k, v in series_labels.items() if k != "__name__"}
    return all(alert.labels.get(k) == v for k, v in own.items())


def chart_request(
    alerts: Sequence[Alert],
    expression: Expression,
    series: Sequence[RawSeries],
    window: Window,
    config: GraphsConfig,
    *,
    timezone: str,
) -> ChartRequest:
    """The chart of ``series`` for ``alerts``: theirs highlighted, the top others kept."""
    mine: list[Series] = []
    others: list[RawSeries] = []
    for item in series:
        if not item.points:
            continue
        if any(matches(item.labels, a) for a in alerts):
            mine.append(Series(labels=dict(item.labels), points=item.points, highlighted=True))
        else:
            others.append(item)
    others.sort(key=lambda s: max(v for _, v in s.points), reverse=True)
    rest = [
        Series(labels=dict(s.labels), points=s.points, highlighted=False)
        for s in others[: config.max_series]
    ]
    threshold = (
        Threshold(op=expression.op, value=expression.threshold)
        if expression.op is not None and expression.threshold is not None
        else None
    )
    fired = min(a.starts_at.timestamp() for a in alerts) if alerts else None
    mine = mine[: max(config.max_series, 1)]
    return ChartRequest(
        title=title_of(alerts),
        subtitle=_shortened(expression.full, 160),
        series=[*mine, *rest],
        start=window.start,
        end=window.end,
        timezone=timezone,
        threshold=threshold,
        firing_at=fired,
        max_series=len(mine) + config.max_series,
    )


def title_of(alerts: Sequence[Alert]) -> str:
    """``alertname`` and what identifies the alert (``instance``, ``job`` ...)."""
    if not alerts:
        return "alert"
    first = alerts[0]
    name = first.labels.get("alertname", "alert")
    identity = [f"{k}={first.labels[k]}" for k in _IDENTITY_LABELS if first.labels.get(k)][:2]
    more = f" (+{len(alerts) - 1})" if len(alerts) > 1 else ""
    return _shortened(" ".join([name, *identity]) + more, 120)


def _shortened(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
