"""From a parsed notification to messages stored in the outbox.

:func:`plan` routes a notification and renders it for each bot of each matching route,
deciding muting for the time it was received. A route muted by its time intervals keeps the
rendered messages in history (``muted: keep``, the default), records them as dropped
(``drop``), or queues them to be sent when the interval ends (``defer``). :func:`finish`
runs once the planned messages are stored: it counts them, writes the notification and what
it became to the history, and wakes the dispatcher. Nothing here sends.

Two callers share them. The journal's processor (:mod:`wecom_bot.gateway.intake.inbox`) plans a
journaled notification, swaps its record for the messages (``Outbox.settle``) and finishes.
:func:`ingest`, for a ``?wait=true`` request, plans and stores every message in one atomic
``enqueue_once`` keyed by the notification's dedup key (so a sender's retry is queued once)
before finishing. Both open or forget the notification's alert group (:func:`track_group`,
escalation and reminders) before they store its messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ...digest import with_shape
from ...limits import CONTENT_LIMITS, utf8_len
from ...store import NewMessage
from ...store.history import HistoryEntry, HistoryEvent, label_pairs
from ...storm import AlertBrief, attach
from ..actions import escalation
from ..actions.groups import group_of
from ..heartbeats import take
from ..model import Notification
from ..runtime import Muting, Runtime
from ..templates.renderer import is_summary_template
from ..templates.summaries import briefs_of_notification

_TITLE_CHARS = 200


@dataclass(frozen=True)
class IngestOutcome:
    """What became of a notification.

    Attributes:
        notification_id: the id history and outbox records carry.
        duplicate: it was a sender's retry seen within the idempotency window.
        messages: how many messages were queued (deferred ones included).
        routes: the names of the routes it took.
        skipped: routes that matched but did not send (e.g. resolved with send_resolved off).
        muted: routes that were muted by their time intervals.
        deferred: messages queued to be sent when a mute interval ends.
        state: the history state it starts in.
    """

    notification_id: str
    duplicate: bool
    messages: int
    routes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    muted: list[str] = field(default_factory=list)
    deferred: int = 0
    state: str = "pending"


@dataclass(frozen=True)
class _Planned:
    route: str
    bot: str
    payload: dict[str, Any]
    part: int
    parts: int
    muting: Muting | None
    briefs: list[AlertBrief] | None = None
    summary: bool = False

    @property
    def stored_payload(self) -> dict[str, Any]:
        """The payload as queued: with the alerts it was rendered from and what it is (a whole
        message, a summary, a part), for digests."""
        if self.briefs is None:
            return self.payload
        shaped = with_shape(
            self.payload, "summary" if self.summary else "alerts", self.part, self.parts
        )
        return attach(shaped, self.briefs)

    @property
    def queued(self) -> bool:
        return self.muting is None or self.muting.action == "defer"

    def describe(self, record_id: int | None) -> dict[str, Any]:
        msgtype = str(self.payload.get("msgtype", ""))
        body = self.payload.get(msgtype)
        content = body.get("content", "") if isinstance(body, dict) else ""
        info: dict[str, Any] = {
            "record_id": record_id,
            "route": self.route,
            "bot": self.bot,
            "msgtype": msgtype,
            "part": self.part,
            "parts": self.parts,
            "size": utf8_len(content) if isinstance(content, str) else 0,
            "limit": CONTENT_LIMITS.get(msgtype),
            "payload": self.payload,
        }
        if self.muting is not None:
            info["muted"] = self.muting.to_json()
        return info


def title_of(notification: Notification) -> str:
    """A one-line title for history: Grafana's title, the alert names, or the webhook name."""
    if notification.source == "generic":
        raw = notification.raw if isinstance(notification.raw, dict) else {}
        extra = raw.get("title") or raw.get("message") or raw.get("text") or ""
        title = f"webhook {notification.receiver}" + (f": {extra}" if extra else "")
    elif notification.title:
        title = notification.title
    else:
        names = dict.fromkeys(
            a.labels.get("alertname", "") for a in notification.alerts if a.labels.get("alertname")
        )
        head = notification.common_labels.get("alertname") or ", ".join(names) or "alert"
        title = f"[{notification.status.upper()}:{notification.total_alerts}] {head}"
    title = " ".join(str(title).split())
    return title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"


@dataclass
class Plan:
    """What a notification becomes, rendered but not stored yet.

    Attributes:
        notification: the parsed notification.
        dedup: its idempotency key.
        notification_id: the id history and outbox records carry.
        now: the time it was received (muting is decided for that moment).
        planned: every rendered message, queued or not.
        taken: routes that matched and render. skipped: routes that matched but do not
            send. muted: routes muted by their time intervals.
    """

    notification: Notification
    dedup: str
    notification_id: str
    now: float
    planned: list[_Planned] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    muted: list[str] = field(default_factory=list)

    @property
    def queued(self) -> list[_Planned]:
        """The planned messages that go to the outbox (deferred ones included)."""
        return [p for p in self.planned if p.queued]

    @property
    def deferred(self) -> int:
        """How many queued messages wait for a mute interval to end."""
        return sum(1 for p in self.queued if p.muting is not None)

    @cached_property
    def messages(self) -> list[NewMessage]:
        """The outbox messages, in order (built once, after planning)."""
        return [
            NewMessage(
                bot=p.bot,
                payload=p.stored_payload,
                notification_id=self.notification_id,
                not_before=p.muting.resumes_at if p.muting is not None else None,
            )
            for p in self.queued
        ]

    def duplicate(self) -> IngestOutcome:
        """The outcome of a sender's retry."""
        return IngestOutcome(self.notification_id, True, 0, self.taken, self.skipped, self.muted)


async def plan(
    runtime: Runtime, notification: Notification, route_name: str | None, *, now: float
) -> Plan:
    """Route ``notification`` and render it for each bot of each route.

    Raises:
        LookupError: ``route_name`` names no route.
        TemplateError / MessageValidationError: rendering failed (a config problem).
    """
    dedup = notification.dedup_key()
    # Heartbeats were taken when it arrived (intake.endpoints); a journaled notification still
    # holds them: they are never routed as alerts.
    routed = take(runtime.heartbeats, notification).rest if runtime.heartbeats else notification
    result = Plan(routed or notification, dedup, dedup[:16], now)
    if routed is None:
        return result
    notification = routed
    for route in runtime.routes_for(notification, route_name):
        if notification.status == "resolved" and not route.send_resolved:
            result.skipped.append(route.name)
            continue
        result.taken.append(route.name)
        muting = runtime.muting(route.name, now)
        if muting is not None:
            result.muted.append(route.name)
        # What a route renders depends on the bot only through its msgtype: render once per
        # msgtype (a route to ten bots is one rendering, not ten).
        rendered: dict[str, tuple[list[dict[str, Any]], bool]] = {}
        selected = route.select(notification)
        briefs = briefs_of_notification(selected) if selected and selected.alerts else None
        for bot in route.bots:
            msgtype = runtime.msgtype_for(route, bot)
            done = rendered.get(msgtype)
            if done is None:
                report = await runtime.render_route(route, bot, notification, now)
                done = ([], False) if report is None else (
                    report.payloads, is_summary_template(report.used_template)
                )  # fmt: skip
                rendered[msgtype] = done
            payloads, summary = done
            for i, payload in enumerate(payloads):
                result.planned.append(_Planned(
                    route.name, bot, payload, i + 1, len(payloads), muting, briefs, summary
                ))  # fmt: skip
    return result


async def ingest(
    runtime: Runtime, notification: Notification, *, route_name: str | None = None
) -> IngestOutcome:
    """Render a notification for its routes and store the messages durably (``?wait=true``).

    Args:
        runtime: the running gateway's routes, templates and store.
        notification: the parsed inbound notification.
        route_name: force one route (``/alertmanager/{route}``) or a webhook
            (``webhook:{name}``) instead of matching.

    Raises:
        LookupError: ``route_name`` names no route.
        StoreUnavailableError: nothing was stored.
        TemplateError / MessageValidationError: rendering failed (a config problem).
    """
    planned = await plan(runtime, notification, route_name, now=runtime.clock())
    metrics = runtime.metrics
    if metrics is not None:
        metrics.count_received(notification.source)
    await track_group(runtime, planned)
    messages = planned.messages
    ids: list[int] = []
    if messages:
        stored = await runtime.store_required.enqueue_once(
            planned.dedup, runtime.config.idempotency_window, messages, now=planned.now
        )
        if stored is None:
            if metrics is not None:
                metrics.duplicates.labels(notification.source).inc()
            await note_duplicate(runtime, planned.notification_id, planned.now)
            return planned.duplicate()
        ids = stored
    elif planned.planned and runtime.history is not None:
        # Nothing was queued, so the outbox's dedup did not see it: history tells a retry.
        if await runtime.history.history.get(planned.notification_id) is not None:
            await note_duplicate(runtime, planned.notification_id, planned.now)
            return planned.duplicate()
    return await finish(runtime, planned, ids)


async def track_group(runtime: Runtime, planned: Plan) -> None:
    """Open or forget the alert group of ``planned`` (escalation and reminders), before its
    messages are stored: done again for a notification processed again, it changes nothing.

    Raises:
        StoreUnavailableError: nothing was changed.
    """
    await escalation.track(
        runtime, planned.notification, planned.taken,
        notification_id=planned.notification_id, now=planned.now,
    )  # fmt: skip


async def track_groups(runtime: Runtime, plans: Sequence[Plan]) -> None:
    """:func:`track_group` for a batch: the plans of one group in their order (its resolved
    notification may follow its firing one), different groups side by side.

    Raises:
        StoreUnavailableError: some were not tracked (doing them all again changes nothing).
    """
    chains: dict[str, list[Plan]] = {}
    for planned in plans:
        key = group_of(planned.notification)
        if key is not None:
            chains.setdefault(key, []).append(planned)

    async def in_order(chain: list[Plan]) -> None:
        for planned in chain:
            await track_group(runtime, planned)

    await asyncio.gather(*(in_order(chain) for chain in chains.values()))


async def finish(runtime: Runtime, planned: Plan, ids: list[int]) -> IngestOutcome:
    """After the messages of ``planned`` were stored as ``ids``: count, write history, wake."""
    messages = planned.messages
    metrics = runtime.metrics
    if metrics is not None:
        for message in messages:
            metrics.rendered.labels(message.bot).inc()
            metrics.queued.labels(message.bot).inc()
    queued = planned.queued
    deferred = planned.deferred
    state = _initial_state(planned.planned, queued, deferred)
    if runtime.history is not None:
        entry, events = _history(
            planned.notification,
            planned.notification_id,
            planned.now,
            planned.planned,
            ids,
            state,
            planned.skipped,
        )
        await runtime.history.record(entry, events)
    # History first: the dispatcher's events about these messages find their entry.
    runtime.notify({m.bot for m in messages})
    if runtime.graphs is not None and ids:
        # After the text is stored: its graph is fetched and drawn in the background.
        runtime.graphs.after_queued(runtime, planned, ids)
    return IngestOutcome(
        planned.notification_id,
        False,
        len(ids),
        planned.taken,
        planned.skipped,
        planned.muted,
        deferred,
        state,
    )


def _initial_state(planned: list[_Planned], queued: list[_Planned], deferred: int) -> str:
    if not planned:
        return "skipped"
    if queued:
        return "deferred" if deferred == len(queued) else "pending"
    if any(p.muting is not None and p.muting.action == "keep" for p in planned):
        return "muted"
    return "dropped"


async def note_duplicate(runtime: Runtime, notification_id: str, now: float) -> None:
    """Write a sender's retry of ``notification_id`` into its history."""
    if runtime.history is not None:
        event = HistoryEvent(
            notification_id, now, "duplicate", detail="a sender's retry", code="event.duplicate"
        )
        await runtime.history.record_events([event])


def _history(
    notification: Notification,
    notification_id: str,
    now: float,
    planned: list[_Planned],
    ids: list[int],
    state: str,
    skipped: list[str],
) -> tuple[HistoryEntry, list[HistoryEvent]]:
    record_ids = iter(ids)
    described = [p.describe(next(record_ids) if p.queued else None) for p in planned]
    events: list[HistoryEvent] = []
    for p, info in zip(planned, described, strict=True):
        rid = info["record_id"]
        if p.muting is None:
            events.append(HistoryEvent(notification_id, now, "queued", rid, p.bot))
        else:
            kind = {"keep": "muted", "drop": "dropped", "defer": "deferred"}[p.muting.action]
            muting = p.muting
            events.append(
                HistoryEvent(
                    notification_id, now, kind, rid, p.bot, muting.reason,
                    code="event.muting", params={
                        "inside": list(muting.inside), "outside": list(muting.outside),
                        "endless": muting.endless,
                    },
                )
            )  # fmt: skip
    detail: dict[str, Any] = {"receiver": notification.receiver}
    if skipped:
        detail["skipped_routes"] = skipped
    if notification.cut_alerts or notification.cut_values:
        detail["cut"] = {"alerts": notification.cut_alerts, "values": notification.cut_values}
    entry = HistoryEntry(
        id=notification_id,
        received_at=now,
        updated_at=now,
        source=notification.source,
        status=notification.status,
        state=state,
        title=title_of(notification),
        labels=label_pairs(
            [notification.group_labels, notification.common_labels]
            + [a.labels for a in notification.alerts]
        ),
        routes=tuple(dict.fromkeys(p.route for p in planned)) + tuple(skipped),
        bots=tuple(dict.fromkeys(p.bot for p in planned)),
        alerts=notification.total_alerts,
        messages=tuple(described),
        detail=detail,
    )
    return entry, events
