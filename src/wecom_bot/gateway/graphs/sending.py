"""The graph of an alert, sent after its text: when, to whom, and what is dropped.

:meth:`Graphs.after_queued` runs once a notification's messages are stored (the text never
waits on anything here). For a firing notification on a route that sends graphs it starts one
background task that

1. finds the image: Grafana's ``imageURL``, or the chart of the ``generatorURL``'s expression
   queried from Prometheus; only addresses under ``graphs.prometheus`` / ``graphs.grafana``
   are requested (:mod:`.sources`), anything else is skipped with a log line;
2. draws or re-encodes it in the drawing pool (:mod:`.drawing`), within ``render_timeout``;
3. waits until the alert's text has been delivered (a graph never goes ahead of its text;
   one whose text is not delivered within ``wait_for_text`` is dropped);
4. queues it on the same bot, class :attr:`~wecom_bot.store.Priority.GRAPH`, when the bot is
   at rest: its burst (``storm_burst`` per key) still has room for it, counting what is
   queued. In a storm it is dropped, unless ``in_storms`` lets one graph through per rate
   window while the window has room.

Whatever fails (not allowed, no answer, nothing to draw, too slow) drops the graph with one log
line; nothing is retried and nothing about the alert's text changes. A queued graph is a
message like any other: it takes a slot of the bot's rate window when it is sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ...errors import SecretNotSetError
from ...store import NewMessage, Priority, Status
from ...storm import STORM_GRAPH_KEY
from ..config import GraphsConfig
from ..model import Alert, Notification
from .chart import ChartRequest
from .drawing import DrawPool, GraphDrawError
from .prometheus import Window, chart_request, query_range, window_of
from .promql import expression_of, split_threshold
from .sources import Allowlist, GraphFetchError, Source, bounded_get, origin_of

if TYPE_CHECKING:
    from ..intake.ingest import Plan
    from ..metrics import GatewayMetrics
    from ..runtime import Runtime

__all__ = ["GraphImage", "Graphs", "describe"]

logger = logging.getLogger("wecom_bot.gateway.graphs")

_MAX_IN_FLIGHT = 4
"""Graphs being fetched or drawn at once; past it, a new one is dropped (bounded work)."""
_POLL = 0.1
"""Seconds between looks at whether an alert's text was delivered."""
_FIRST_LOOK = 0.02
"""Seconds the graph's task leaves the event loop to the text's delivery before it starts."""


@dataclass(frozen=True)
class GraphImage:
    """An image ready to send, and the chart it was drawn from (``None``: Grafana's)."""

    data: bytes
    request: ChartRequest | None
    origin: str

    def payload(self) -> dict[str, Any]:
        """The image message's API payload."""
        return {
            "msgtype": "image",
            "image": {
                "base64": base64.b64encode(self.data).decode("ascii"),
                "md5": hashlib.md5(self.data).hexdigest(),
            },
        }


@dataclass(frozen=True)
class _Target:
    bot: str
    record_ids: tuple[int, ...]
    summary: bool


class Graphs:
    """Sends the graphs of one running configuration (see the module docs).

    Args:
        config: the ``graphs`` section.
        pool: where charts are drawn and images re-encoded.
        timezone: the time zone of the chart's time axis.
        transport: the HTTP transport (tests); ``None``: httpx's own.
        clock: wall-clock time (the chart's window).
        metrics: counts the outcomes (``wecom_bot_graphs_total``).
    """

    def __init__(
        self,
        config: GraphsConfig,
        pool: DrawPool,
        *,
        timezone: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.timezone = timezone
        self.clock = clock
        self.prometheus = Allowlist("prometheus", config.prometheus)
        self.grafana = Allowlist("grafana", config.grafana)
        self.transport = transport
        self.metrics = metrics
        self.outcomes: Counter[str] = Counter()
        """How graphs ended: ``queued``, ``skipped`` (nothing allowed to fetch), ``failed``,
        ``storm`` (dropped: the bot was busy), ``late`` (the text was not delivered)."""
        self.last_request: ChartRequest | None = None
        """The chart most recently drawn (the console and the tests look at it)."""
        self.last_query: tuple[str, str, Window] | None = None
        """The query behind :attr:`last_request`: the address, the expression, the window."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._storm_graph_at: dict[str, float] = {}
        self._client: httpx.AsyncClient | None = None

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        if self.metrics is not None:
            self.metrics.graphs.labels(outcome).inc()

    @property
    def in_flight(self) -> int:
        """Graphs being fetched, drawn or waiting for their text."""
        return len(self._tasks)

    # -- after a notification is stored ------------------------------------------------------
    def after_queued(self, runtime: Runtime, planned: Plan, ids: Sequence[int]) -> None:
        """Start the graph of ``planned`` (stored as ``ids``) in the background, if it has one."""
        notification = planned.notification
        if notification.status != "firing" or notification.source == "generic":
            return
        targets: dict[str, _Target] = {}
        for p, record_id in zip(planned.queued, ids, strict=False):
            if p.muting is not None or not self.config.sends_for(p.route):
                continue
            old = targets.get(p.bot)
            ids_ = (old.record_ids if old else ()) + (record_id,)
            targets[p.bot] = _Target(p.bot, ids_, p.summary or (old is not None and old.summary))
        if not targets:
            return
        if any(t.summary for t in targets.values()) and not self.config.in_storms:
            self._count("storm")
            return
        if len(self._tasks) >= _MAX_IN_FLIGHT:
            self._count("busy")
            logger.info(
                "graph of notification %s dropped: %d graphs are being made already",
                planned.notification_id, len(self._tasks),
            )  # fmt: skip
            return
        task = asyncio.create_task(
            self._send(runtime, notification, planned.notification_id, list(targets.values())),
            name=f"graph-{planned.notification_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def client(self) -> httpx.AsyncClient:
        """The HTTP client of every query and fetch (built once: building one costs a TLS
        context). It follows no redirect and ignores proxy variables of the environment."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport, follow_redirects=False, trust_env=False
            )
        return self._client

    async def stop(self) -> None:
        """Abandon the graphs in progress (nothing about an alert's text depends on them)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(
        self, runtime: Runtime, notification: Notification, nid: str, targets: list[_Target]
    ) -> None:
        try:
            # The dispatcher takes the text first: nothing here competes with its send.
            await asyncio.sleep(_FIRST_LOOK)
            # Before any request: a bot already busy gets no graph, so a storm costs nothing.
            targets = [t for t in targets if await self._room(runtime, t, reserve=False)]
            if not targets:
                self._count("storm")
                logger.info("graph of notification %s dropped: the bot is in a storm", nid)
                return
            delivered = []
            for target in targets:
                if await self._text_delivered(runtime, target.record_ids):
                    delivered.append(target)
                    continue
                self._count("late")
                logger.info(
                    "graph of notification %s for bot %r dropped: its text was not delivered "
                    "within %g s", nid, target.bot, self.config.wait_for_text,
                )  # fmt: skip
            if not delivered:
                return
            image = await self.make(notification, largest_group=any(t.summary for t in targets))
            if image is None:
                return
            for target in delivered:
                await self._queue(runtime, nid, target, image)
        except asyncio.CancelledError:
            raise
        except Exception:  # a graph must never take anything else down
            self._count("failed")
            logger.exception("graph of notification %s failed", nid)

    async def _queue(self, runtime: Runtime, nid: str, target: _Target, image: GraphImage) -> None:
        room = await self._room(runtime, target, reserve=True)
        if room is None:
            self._count("storm")
            logger.info(
                "graph of notification %s for bot %r dropped: the bot is in a storm",
                nid, target.bot,
            )  # fmt: skip
            return
        payload = image.payload()
        if room == "storm":
            payload[STORM_GRAPH_KEY] = True
        message = NewMessage(
            bot=target.bot, payload=payload, notification_id=nid, coalescible=False,
            priority=Priority.GRAPH,
        )  # fmt: skip
        await runtime.store_required.enqueue([message])
        self._count("queued")
        logger.info(
            "graph of notification %s queued for bot %r (%d bytes, from %s)",
            nid, target.bot, len(image.data), image.origin,
        )  # fmt: skip
        runtime.notify([target.bot])

    async def _text_delivered(self, runtime: Runtime, record_ids: Sequence[int]) -> bool:
        store = runtime.store_required
        deadline = time.monotonic() + self.config.wait_for_text
        waiting = list(record_ids)
        while waiting:
            still = []
            for record_id in waiting:
                record = await store.get(record_id)
                if record is None or record.status is Status.DEAD:
                    return False
                if record.status is not Status.SENT:
                    still.append(record_id)
            waiting = still
            if waiting:
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(_POLL)
        return True

    async def _room(self, runtime: Runtime, target: _Target, *, reserve: bool) -> str | None:
        """How ``target``'s bot may take one more message now: ``"rest"`` (its burst has room,
        counting what is queued), ``"storm"`` (``in_storms``: no storm graph yet in this rate
        window, and the window has a free send besides the graph's), or ``None``."""
        limiter, store = runtime.limiter, runtime.store_required
        bot_target = runtime.targets.get(target.bot)
        if limiter is None or bot_target is None:
            return None
        keys = bot_target.keys
        if not target.summary:
            pending = await store.pending_count(target.bot)
            used = 0
            for key in keys:
                used += await limiter.used(key)
            if used + pending + 1 <= runtime.config.storm_burst * len(keys):
                return "rest"
        if not self.config.in_storms:
            return None
        last = self._storm_graph_at.get(target.bot)
        if last is not None and time.monotonic() - last < _rate_window(runtime):
            return None
        free = 0
        for key in keys:
            free += await limiter.capacity(key, 0.0, cap=2)
        if free < 2:
            return None
        if reserve:
            self._storm_graph_at[target.bot] = time.monotonic()
        return "storm"

    # -- the image ---------------------------------------------------------------------------
    async def make(
        self,
        notification: Notification,
        *,
        largest_group: bool = False,
        why: list[str] | None = None,
    ) -> GraphImage | None:
        """The image of ``notification``'s firing alerts (of its largest group, by
        ``alertname``, with ``largest_group``), or ``None`` (with a log line, and the reason
        appended to ``why``) when it has none, it is not allowed, or it failed."""
        alerts = [a for a in notification.alerts if a.firing]
        if largest_group:
            alerts = _largest_group(alerts)
        try:
            if not alerts:
                raise _NoGraph("no firing alert")
            client = self.client()
            if notification.source == "grafana":
                return await self._grafana_image(client, alerts)
            return await self._prometheus_chart(client, alerts)
        except _NoGraph as exc:
            if exc.outcome:
                self._count(exc.outcome)
                logger.warning("graph %s", exc)
            reason = str(exc)
        except (GraphFetchError, GraphDrawError, SecretNotSetError) as exc:
            self._count("failed")
            logger.warning("graph dropped: %s", exc)
            reason = str(exc)
        if why is not None:
            why.append(reason)
        return None

    async def _grafana_image(
        self, client: httpx.AsyncClient, alerts: Sequence[Alert]
    ) -> GraphImage:
        url = next((a.image_url for a in alerts if a.image_url), "")
        if not url:
            raise _NoGraph("no imageURL on the firing alerts")
        source = self.grafana.match(url)
        if source is None:
            raise _NoGraph(
                f"skipped: imageURL {origin_of(url)} is not under graphs.grafana (never fetched)",
                "skipped",
            )
        data = await bounded_get(
            client, source, source.address(), max_bytes=self.config.max_response_bytes,
            timeout=self.config.query_timeout,
        )  # fmt: skip
        fitted = await self.pool.fit(data, timeout=self.config.render_timeout)
        return GraphImage(fitted, None, source.field)

    async def _prometheus_chart(
        self, client: httpx.AsyncClient, alerts: Sequence[Alert]
    ) -> GraphImage:
        found = next(
            ((a.generator_url, e) for a in alerts if (e := expression_of(a.generator_url))),
            None,
        )
        if found is None:
            raise _NoGraph("no generatorURL with an expression (g0.expr) on the firing alerts")
        url, expr = found
        source = self.prometheus.match(url)
        if source is None:
            raise _NoGraph(
                f"skipped: generatorURL {origin_of(url)} is not under graphs.prometheus "
                "(never queried)",
                "skipped",
            )
        request = await self.chart_of(client, source, expr, alerts)
        data = await self.pool.draw(request, timeout=self.config.render_timeout)
        return GraphImage(data, request, source.field)

    async def chart_of(
        self, client: httpx.AsyncClient, source: Source, expr: str, alerts: Sequence[Alert]
    ) -> ChartRequest:
        """The chart request for ``expr`` queried from ``source``.

        Raises:
            GraphFetchError: the query failed, or returned no series (nothing to draw).
        """
        expression = split_threshold(expr)
        window = window_of(alerts, self.config, self.clock())
        series = await query_range(client, source, expression.query, window, self.config)
        self.last_query = (source.address("/api/v1/query_range"), expression.query, window)
        if not any(s.points for s in series):
            raise GraphFetchError(f"{source.field} returned no series for the expression")
        request = chart_request(
            alerts, expression, series, window, self.config, timezone=self.timezone
        )
        self.last_request = request
        logger.info(
            "chart of %r: %d series (%d highlighted), %s to %s, step %g s",
            request.title, len(request.series), sum(s.highlighted for s in request.series),
            window.start, window.end, window.step,
            extra={"event": "graph_chart", "chart": describe(request)},
        )  # fmt: skip
        return request


class _NoGraph(Exception):
    """The notification has no graph to send (``outcome``: what to count and log it as;
    empty: nothing to say, e.g. no link at all)."""

    def __init__(self, reason: str, outcome: str = "") -> None:
        super().__init__(reason)
        self.outcome = outcome


def describe(request: ChartRequest) -> dict[str, Any]:
    """``request`` as JSON (the console's preview, the log's ``chart`` field)."""
    return {
        "title": request.title,
        "subtitle": request.subtitle,
        "start": request.start,
        "end": request.end,
        "timezone": request.timezone,
        "threshold": (
            {"op": request.threshold.op, "value": request.threshold.value}
            if request.threshold is not None
            else None
        ),
        "firing_at": request.firing_at,
        "series": [
            {"labels": dict(s.labels), "highlighted": s.highlighted, "points": len(s.points)}
            for s in request.series
        ],
    }


def _largest_group(alerts: Sequence[Alert]) -> list[Alert]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.labels.get("alertname", ""), []).append(alert)
    return max(groups.values(), key=len) if groups else []


def _rate_window(runtime: Runtime) -> float:
    from ...ratelimit import parse_rate

    return parse_rate(runtime.config.rate).window
