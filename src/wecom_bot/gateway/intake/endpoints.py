"""The inbound webhook endpoints: ``POST /alertmanager``, ``/grafana``, ``/webhook/{name}``.

:func:`receive` is the whole request path, independent of the web framework: check the body
size, decode the JSON, validate it for its source (4xx with a reason), then take out the heartbeats
(:mod:`wecom_bot.gateway.heartbeats`: a Watchdog beats, it is never routed; a notification
that was only heartbeats is answered here), then journal it
(:func:`wecom_bot.gateway.intake.inbox.accept`) or, with ``?wait=true``, render and store it before
answering (:func:`wecom_bot.gateway.intake.ingest.ingest`). Nothing here answers 500.

:func:`serve_endpoint` serves these paths as plain ASGI, ahead of FastAPI's middleware and
router (the app calls it first). They are the gateway's hot path, taken thousands of times a
second in a storm, and the framework's layers, request objects, dependency solving and
response classes cost more than the work itself. FastAPI still declares the same routes
(they are in the OpenAPI document and call :func:`receive` too); they are just answered
earlier.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from ...errors import MessageValidationError
from ...store import StoreUnavailableError
from ..auth import authorized, refuse_unauthorized
from ..heartbeats import switch, take
from ..templates.render_pool import RenderPoolClosed
from ..templates.renderer import TemplateError
from .bodies import BodyBusy, BodyTimeout, Reservation, read_body, too_busy, too_slow
from .inbox import accept, decode_body, safe_reason
from .ingest import IngestOutcome, ingest
from .sources import PayloadError, parse_payload

if TYPE_CHECKING:
    from ..gateway import Gateway
    from ..model import Notification

__all__ = ["Answer", "Endpoint", "endpoint_for", "receive", "serve_endpoint"]

logger = logging.getLogger("wecom_bot.gateway")

_TRUE = ("1", "true", "yes")
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Answer:
    """A response: status code and JSON body."""

    status: int
    body: dict[str, Any]

    def encode(self) -> bytes:
        """The body as UTF-8 JSON."""
        return _COMPACT.encode(self.body).encode()


@dataclass(frozen=True)
class Endpoint:
    """Which inbound endpoint a path is.

    Attributes:
        source: ``alertmanager``, ``grafana`` or ``generic``.
        route: a route forced by the path, or ``webhook:{name}``; ``None`` to match.
        webhook: the webhook name of ``/webhook/{name}``.
    """

    source: str
    route: str | None = None
    webhook: str | None = None


def endpoint_for(path: str) -> Endpoint | None:
    """The endpoint ``path`` names, or ``None`` when it is not an inbound webhook path."""
    head, _, rest = path.strip("/").partition("/")
    if "/" in rest:
        return None
    if head == "alertmanager" or head == "grafana":
        return Endpoint(head, rest or None)
    if head == "webhook" and rest:
        return Endpoint("generic", f"webhook:{rest}", rest)
    return None


def refuse(gateway: Gateway, source: str, status: int, reason: str, message: str) -> Answer:
    """A refusal, counted in ``wecom_bot_requests_rejected``."""
    gateway.metrics.rejected.labels(source, reason).inc()
    return Answer(status, {"error": message, "reason": reason})


async def receive(
    gateway: Gateway, endpoint: Endpoint, body: bytes | bytearray | None, wait: bool
) -> Answer:
    """Handle one inbound request whose body was read (``None``: over ``max_body_bytes``)."""
    source = endpoint.source
    if not gateway.accepting:
        return refuse(gateway, source, 503, "shutting_down", "the gateway is stopping; retry")
    if endpoint.webhook is not None and endpoint.webhook not in gateway.config.webhooks:
        return refuse(
            gateway, source, 404, "unknown_webhook", f"no webhook named {endpoint.webhook!r}"
        )
    if body is None:
        return refuse(
            gateway, source, 413, "too_large",
            f"body larger than max_body_bytes ({gateway.config.max_body_bytes})",
        )  # fmt: skip
    try:
        decoded = decode_body(body)
    except (ValueError, RecursionError):
        return refuse(gateway, source, 400, "not_json", "the body is not valid JSON")
    size = len(body)
    del body  # decoded: a large body's bytes go now, not after it is journaled
    try:
        notification = parse_payload(endpoint.source, decoded.value, webhook=endpoint.webhook or "")
    except PayloadError as exc:
        return refuse(gateway, source, 422, "invalid", str(exc))
    runtime = gateway.runtime
    if runtime.heartbeats:
        taken = take(runtime.heartbeats, notification)
        if taken.taken:
            try:
                for heartbeat in taken.beats:
                    await switch.beat(runtime, heartbeat, notification, now=runtime.clock())
            except StoreUnavailableError as exc:
                logger.error("outbox unavailable, refusing a heartbeat: %s", exc)
                return refuse(
                    gateway, source, 503, "store_unavailable",
                    "the outbox is unavailable; nothing was stored, retry later",
                )  # fmt: skip
            if taken.rest is None:
                gateway.metrics.count_received(notification.source)
                _log_heartbeat(notification, taken.taken)
                return Answer(200, {"status": "heartbeat", "heartbeats": list(taken.taken)})
    try:
        if wait:
            outcome = await ingest(runtime, notification, route_name=endpoint.route)
            _log_received(notification, outcome.notification_id, outcome.routes, outcome.duplicate)
            return Answer(200, outcome_json(outcome))
        accepted = await accept(
            runtime, notification, decoded, route_name=endpoint.route, size=size
        )
    except LookupError as exc:
        if type(exc) is LookupError:  # what names a missing route; a KeyError is some bug's
            return refuse(gateway, source, 404, "unknown_route", str(exc))
        if not wait:
            raise
        return _render_failed(gateway, source, f"{type(exc).__name__}: {exc}")
    except StoreUnavailableError as exc:
        logger.error("outbox unavailable, refusing a notification: %s", exc)
        return refuse(
            gateway, source, 503, "store_unavailable",
            "the outbox is unavailable; nothing was stored, retry later",
        )  # fmt: skip
    except RenderPoolClosed:  # ?wait=true, while the gateway stops: nothing was stored
        return refuse(gateway, source, 503, "shutting_down", "the gateway is stopping; retry")
    except (TemplateError, MessageValidationError) as exc:
        # Only ?wait=true renders here; the journal dead-letters such a failure instead.
        return _render_failed(gateway, source, str(exc))
    except Exception as exc:
        if not wait:
            raise
        # Anything else that fails while rendering this payload (a bug it runs into) is this
        # payload's failure too: the same answer, nothing stored, where the journal would
        # make it a dead letter.
        return _render_failed(gateway, source, f"{type(exc).__name__}: {exc}")
    if not accepted.duplicate:
        gateway.inbox.wake()
    _log_received(notification, accepted.notification_id, accepted.routes, accepted.duplicate)
    return Answer(200, accepted.to_json())


def _log_heartbeat(notification: Notification, taken: Mapping[str, int]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "received %s heartbeat(s) %s", notification.source, ", ".join(taken),
            extra={"event": "heartbeat", "source": notification.source,
                   "heartbeats": list(taken)},
        )  # fmt: skip


def _render_failed(gateway: Gateway, source: str, error: str) -> Answer:
    """A ``?wait=true`` request whose payload failed to render: 422 with the reason (keys
    masked, on one line, cut), logged once; nothing was stored."""
    reason = safe_reason(gateway.runtime, error)
    logger.error("rendering failed: %s", reason)
    return refuse(gateway, source, 422, "render_failed", f"rendering failed: {reason}")


def _log_received(
    notification: Notification, notification_id: str, routes: list[str], duplicate: bool
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    alerts = len(notification.alerts)
    logger.info(
        "received %s notification %s (%s, %d alert(s)) -> route(s) %s%s",
        notification.source, notification_id, notification.status, alerts,
        ", ".join(routes) or "none", " (duplicate, queued once)" if duplicate else "",
        extra={"event": "received", "source": notification.source,
               "notification_id": notification_id, "status": notification.status,
               "alerts": alerts, "routes": routes, "duplicate": duplicate},
    )  # fmt: skip


def outcome_json(outcome: IngestOutcome) -> dict[str, Any]:
    """The response body of a ``?wait=true`` request."""
    return {
        "status": "duplicate" if outcome.duplicate else "queued",
        "notification_id": outcome.notification_id,
        "messages": outcome.messages,
        "routes": outcome.routes,
        "skipped": outcome.skipped,
        "muted": outcome.muted,
        "deferred": outcome.deferred,
        "state": outcome.state,
    }


def wants_wait(query_string: bytes | str) -> bool:
    """Whether a query string asks to render before answering (``wait=true``)."""
    if not query_string:
        return False
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    values = parse_qs(text).get("wait", [])
    return bool(values) and values[-1].lower() in _TRUE


async def serve_endpoint(
    gateway: Gateway, endpoint: Endpoint, scope: Scope, receive_: Receive, send: Send
) -> None:
    """Serve one ``POST`` to an inbound endpoint as plain ASGI (authentication included)."""
    if not authorized(gateway.config, Headers(scope=scope)):
        await refuse_unauthorized(gateway, scope, receive_, send)
        return
    gateway.inflight += 1
    headers = [(b"content-type", b"application/json")]
    config = gateway.config
    reservation = Reservation(gateway.body_budget)
    try:
        # The body is handed on without a name here, so receive() can let it go once decoded.
        answer = await receive(
            gateway, endpoint,
            await read_body(
                scope, receive_, config.max_body_bytes, config.server.body_timeout, reservation
            ),
            wants_wait(scope["query_string"]),
        )  # fmt: skip
    except BodyBusy:
        busy = too_busy(config.server.body_timeout)
        answer = refuse(gateway, endpoint.source, busy.status, busy.reason, busy.message)
        headers.append((b"connection", b"close"))
    except BodyTimeout:
        slow = too_slow(config.server.body_timeout)
        answer = refuse(gateway, endpoint.source, slow.status, slow.reason, slow.message)
        headers.append((b"connection", b"close"))
    finally:
        reservation.close()
        gateway.inflight -= 1
    data = answer.encode()
    headers.append((b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
