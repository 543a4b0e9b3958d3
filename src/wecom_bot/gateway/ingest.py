"""From a parsed notification to messages stored in the outbox (the synchronous half).

Route, render for each bot of each matching route, and store every message in one atomic
``enqueue_once`` keyed by the notification's dedup key, so a sender's retry of the same
notification is queued once. Nothing here sends; the dispatcher does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import NewMessage
from .model import Notification
from .runtime import Runtime


@dataclass(frozen=True)
class IngestOutcome:
    """What became of a notification.

    Attributes:
        notification_id: the id history and outbox records carry.
        duplicate: it was a sender's retry seen within the idempotency window.
        messages: how many messages were queued.
        routes: the names of the routes it took.
        skipped: routes that matched but did not send (e.g. resolved with send_resolved off).
    """

    notification_id: str
    duplicate: bool
    messages: int
    routes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


async def ingest(
    runtime: Runtime, notification: Notification, *, route_name: str | None = None
) -> IngestOutcome:
    """Render a notification for its routes and store the messages durably.

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
    dedup = notification.dedup_key()
    notification_id = dedup[:16]
    messages: list[NewMessage] = []
    taken: list[str] = []
    skipped: list[str] = []
    for route in runtime.routes_for(notification, route_name):
        if notification.status == "resolved" and not route.send_resolved:
            skipped.append(route.name)
            continue
        taken.append(route.name)
        for bot in route.bots:
            for payload in runtime.render(route, bot, notification):
                messages.append(
                    NewMessage(bot=bot, payload=payload, notification_id=notification_id)
                )
    metrics = runtime.metrics
    if metrics is not None:
        metrics.received.labels(notification.source).inc()
    if not messages:
        return IngestOutcome(notification_id, False, 0, taken, skipped)
    ids = await runtime.store_required.enqueue_once(
        dedup, runtime.config.idempotency_window, messages, now=runtime.clock()
    )
    if ids is None:
        if metrics is not None:
            metrics.duplicates.labels(notification.source).inc()
        return IngestOutcome(notification_id, True, 0, taken, skipped)
    if metrics is not None:
        for message in messages:
            metrics.rendered.labels(message.bot).inc()
            metrics.queued.labels(message.bot).inc()
    runtime.notify({m.bot for m in messages})
    return IngestOutcome(notification_id, False, len(ids), taken, skipped)
