"""Journal first: a notification is stored as received, answered 200, and rendered behind.

The request path does only what the sender must hear about: it parses and validates the
payload (4xx with a reason when bad), picks the routes (404 for an unknown one), and stores
the payload in the outbox as one record of the internal bot :data:`INBOX_BOT`, keyed by the
notification's idempotency key. That write is durable before the 200, so a crash after it
loses nothing: the next start renders what is left.

:class:`InboxProcessor` claims those records in the background, in arrival order, renders
each for its routes (:func:`wecom_bot.gateway.ingest.plan`) and swaps it for the rendered
messages in one transaction (:meth:`wecom_bot.store.Outbox.settle`), then writes history and
wakes the dispatcher. Muting is decided for the moment the notification was received, so a
backlog does not change what a mute interval does. A notification that cannot be rendered
(a template failing on this payload) becomes a dead letter with the reason: fix the
template, reload, and requeue it from the console.

Under a burst the journal absorbs what rendering cannot keep up with; the processor works
between requests, so accepting stays fast. Several gateways on one Redis share the journal:
any of them renders what any of them accepted. ``?wait=true`` on a request renders before
answering instead (see :func:`wecom_bot.gateway.ingest.ingest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MessageValidationError
from ..store import LeaseLostError, NewMessage, OutboxRecord, StoreUnavailableError
from .background import BackgroundLoop
from .bodies import BodyBudget, Reservation
from .ingest import Plan, finish, note_duplicate, plan, track_groups
from .model import Notification
from .pacing import step_back
from .render_pool import RenderPoolClosed
from .runtime import Runtime
from .sources import PayloadError, parse_payload
from .surrogates import may_hold_surrogates, replace_surrogates
from .templates import TemplateError

__all__ = [
    "INBOX_BOT",
    "INBOX_KIND",
    "Accepted",
    "Body",
    "InboxProcessor",
    "accept",
    "decode_body",
    "inbox_message",
]

logger = logging.getLogger("wecom_bot.gateway.inbox")

INBOX_BOT = "~inbox"
"""The outbox "bot" whose records are accepted notifications (no configured bot can be
named so: bot names cannot start with ``~``)."""

INBOX_KIND = "notification"
"""The ``msgtype`` of an inbox record's payload."""

WEBHOOK_PREFIX = "webhook:"

_MAX_PAUSE = 0.05
"""The longest step back between two notifications while requests are answered."""
_MAX_STORE_PAUSE = 0.5
"""The longest step back after storing a batch while requests are answered."""


@dataclass(frozen=True)
class Accepted:
    """The answer to an accepted request.

    Attributes:
        notification_id: the id history and outbox records carry.
        duplicate: it was a sender's retry seen within the idempotency window.
        routes: the routes it matched (rendering decides which of them send).
    """

    notification_id: str
    duplicate: bool
    routes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "status": "duplicate" if self.duplicate else "accepted",
            "notification_id": self.notification_id,
            "routes": self.routes,
        }


class NotStrictJSON(ValueError):
    """The text uses ``NaN`` or ``Infinity``, which Python reads but JSON does not have."""


def _refuse_constant(name: str) -> Any:
    raise NotStrictJSON(name)


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant)


@dataclass(frozen=True, slots=True)
class Body:
    """A request body, decoded once.

    Attributes:
        value: the decoded JSON.
        text: the JSON text (UTF-8 as received, or written again when it arrived otherwise).
        verbatim: ``text`` is strict JSON that decodes to ``value``, so the journal record
            embeds it as is instead of encoding ``value`` again.
    """

    value: Any
    text: str
    verbatim: bool


def decode_body(raw: bytes | bytearray) -> Body:
    """Decode a request body as JSON; a lone surrogate in a string becomes U+FFFD.

    Raises:
        ValueError: it is not JSON.
        RecursionError: it nests too deep.
    """
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        text = ""
    else:
        try:
            value = _STRICT.decode(text)
        except NotStrictJSON:
            pass
        else:
            if may_hold_surrogates(raw, valid_utf8=True):
                value, changed = replace_surrogates(value)
                if changed:  # written again: the text as received spells the surrogates
                    return Body(value, json.dumps(value, ensure_ascii=False), True)
            return Body(value, text, True)
    # UTF-16/32, lone surrogates or NaN: json.loads reads them; the journal then keeps a
    # text of its own in a string field (see inbox_message).
    value, changed = replace_surrogates(json.loads(raw))
    if changed or not text:
        text = json.dumps(value, ensure_ascii=False)
    return Body(value, text, False)


def inbox_message(
    notification: Notification,
    body: Body | str,
    route_name: str | None,
    notification_id: str,
    size: int | None = None,
) -> NewMessage:
    """The inbox record of a received notification: its source, forced route and payload.

    The payload is kept as received: a strict JSON body is embedded in the record's JSON as
    its ``json`` field, verbatim (no encoding on the hot path); any other body is kept as text
    in its ``body`` field. ``size``: the body's bytes, which bound how many records the
    processor claims at once (see :class:`InboxProcessor`).
    """
    # No notification_id on the record itself: the messages it becomes carry it, and history
    # looks a notification up by those (one index write less on the request path).
    meta: dict[str, Any] = {
        "id": notification_id,
        "source": notification.source,
        "route": route_name,
    }
    if size is not None:
        meta["size"] = size
    if isinstance(body, Body) and body.verbatim:
        sized = "" if size is None else f'"size":{size},'
        text = (
            f'{{"msgtype":"{INBOX_KIND}","{INBOX_KIND}":{{"id":{json.dumps(notification_id)},'
            f'"source":{json.dumps(notification.source)},"route":{json.dumps(route_name)},'
            f'{sized}"json":{body.text}}}}}'
        )
        payload = {"msgtype": INBOX_KIND, INBOX_KIND: {**meta, "json": body.value}}
        return NewMessage(INBOX_BOT, payload, coalescible=False, payload_json=text)
    text_body = body.text if isinstance(body, Body) else body
    payload = {"msgtype": INBOX_KIND, INBOX_KIND: {**meta, "body": text_body}}
    return NewMessage(bot=INBOX_BOT, payload=payload, coalescible=False)


async def accept(
    runtime: Runtime,
    notification: Notification,
    body: Body | str,
    *,
    route_name: str | None = None,
    size: int | None = None,
) -> Accepted:
    """Store a validated notification in the journal (durably) for rendering behind.

    Args:
        runtime: the running gateway.
        notification: the payload, parsed and validated.
        body: the payload as received (decoded, or its JSON text), rendered from later.
        route_name: a forced route (``/alertmanager/{route}``) or ``webhook:{name}``.
        size: the body's bytes as received, when known.

    Raises:
        LookupError: ``route_name`` names no route.
        StoreUnavailableError: nothing was stored.
    """
    routes = runtime.routes_for(notification, route_name)
    dedup = notification.dedup_key()
    notification_id = dedup[:16]
    now = runtime.clock()
    metrics = runtime.metrics
    if metrics is not None:
        metrics.count_received(notification.source)
    record = inbox_message(notification, body, route_name, notification_id, size)
    stored = await runtime.store_required.enqueue_once(
        dedup, runtime.config.idempotency_window, [record], now=now
    )
    names = [route.name for route in routes]
    if stored is None:
        if metrics is not None:
            metrics.duplicates.labels(notification.source).inc()
        await note_duplicate(runtime, notification_id, now)
        return Accepted(notification_id, True, names)
    return Accepted(notification_id, False, names)


def parse_stored(data: dict[str, Any]) -> Notification:
    """The notification an inbox record holds, parsed again as on arrival.

    Raises:
        PayloadError: the stored payload does not parse (an older or foreign record).
    """
    source = data.get("source")
    if "json" in data:
        body = data["json"]
    else:
        text = data.get("body")
        try:
            body = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            raise PayloadError("body", "is not JSON text") from None
    route = data.get("route") or ""
    webhook = route[len(WEBHOOK_PREFIX) :] if route.startswith(WEBHOOK_PREFIX) else ""
    return parse_payload(str(source), body, webhook=webhook)


class InboxProcessor(BackgroundLoop):
    """Renders journaled notifications into outbox messages, in the background.

    Args:
        runtime: returns the current runtime (a reload swaps it; records claimed later
            render with the new config).
        clock: wall-clock time.
        batch: records claimed at a time (each is leased until it is settled).
        lease_seconds: how long a claimed record stays leased (the config's ``lease`` when
            ``None``); a process that dies holding some leaves them to whichever process
            claims after the lease ends. A lease that ends mid-batch costs only work: the
            settle of whoever comes second fails, so nothing is stored twice.
        poll: seconds between looks at the journal when nothing woke the processor (records
            accepted by another instance, leases that ended).
        busy: whether requests are being answered right now; while they are, the processor
            takes at most ``busy_share`` of the time, so a burst is accepted at full speed
            and rendered behind it.
        busy_share: the processor's share of the loop while ``busy`` (0 < share <= 1).
        budget: the budget request bodies are held in (``server.max_inflight_body_bytes``),
            shared with the requests; ``None``: claim ``batch`` at a time. Records hold their
            body's size: the processor holds a claimed batch's bytes in the budget while it
            renders them (room for the batch it expects is taken before it claims, waiting
            for requests ahead of it), and the next claim takes as many
            records of that size as fit, at most twice as many as the last, starting again
            from one after the journal ran empty, so a backlog of large bodies is decoded a
            few at a time while large requests are read.
    """

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        *,
        clock: Callable[[], float],
        batch: int = 32,
        lease_seconds: float | None = None,
        poll: float = 1.0,
        busy: Callable[[], bool] = lambda: False,
        busy_share: float = 0.25,
        budget: BodyBudget | None = None,
    ) -> None:
        super().__init__("inbox-processor")
        self._runtime = runtime
        self.clock = clock
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.poll = poll
        self.busy = busy
        self.busy_share = busy_share
        self.budget = budget
        self._limit = 1 if budget is not None else batch
        self._expected: int | None = None
        """The body size of the largest record of the last claim that found any."""
        self.processed = 0
        """Notifications this processor turned into their messages since it was built."""

    async def _loop(self) -> None:
        failing = ""  # the store's error, logged once while it lasts (not once a poll)
        while not self._stopping.is_set():
            try:
                worked = await self.process_once()
                failing = ""
            except StoreUnavailableError as exc:
                if str(exc) != failing:
                    logger.error("inbox: outbox unavailable (%s); retrying shortly", exc)
                    failing = str(exc)
                worked = False
            except Exception:  # the processor must outlive any one failure; the journal keeps
                logger.exception("inbox: processing failed; retrying shortly")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                self._wake.clear()

    async def process_once(self) -> bool:
        """Claim a batch of journaled notifications, render them, then store them together;
        whether there were any."""
        runtime = self._runtime()
        store = runtime.store_required
        lease = self.lease_seconds or runtime.config.lease
        held = Reservation(self.budget)
        try:
            # Room for what the claim is expected to load, before it loads it: a backlog of
            # large bodies is not decoded while large requests are being read.
            expected = self._expected
            if expected is None:  # nothing claimed yet: records may be as large as allowed
                expected = runtime.config.max_body_bytes
            await held.grow(self._limit * expected)
            records = await store.claim(
                INBOX_BOT, limit=self._limit, lease_seconds=lease, now=self.clock()
            )
            if self.budget is not None:
                self._limit = self._next_limit(records, self.budget.limit)
                await held.grow(sum(_size_of(record) for record in records))
            return await self._process(runtime, records)
        finally:
            held.close()

    async def _process(self, runtime: Runtime, records: list[OutboxRecord]) -> bool:
        store = runtime.store_required
        rendered: list[tuple[OutboxRecord, Plan | str]] = []
        stopping = False
        for index, record in enumerate(records):
            stopping = self._stopping.is_set()
            if not stopping:
                started = time.perf_counter()
                try:
                    rendered.append((record, await self._render(runtime, record)))
                except RenderPoolClosed:  # the gateway is stopping: its render was abandoned
                    stopping = True
            if stopping:
                await store.unclaim([r.id for r in records[index:]], now=self.clock())
                break
            await step_back(started, self.busy, self.busy_share, _MAX_PAUSE)
        # Alert groups first (escalation timers); a failure leaves the batch to be processed
        # again, which tracks them again to the same effect.
        try:
            await track_groups(runtime, [done for _, done in rendered if not isinstance(done, str)])
        except StoreUnavailableError:
            with contextlib.suppress(StoreUnavailableError):  # else their leases run out
                await store.unclaim([r.id for r, _ in rendered], now=self.clock())
            raise
        # Stored concurrently: the store commits them together (their messages keep FIFO
        # order, which follows each notification's receive time, not the commit order).
        started = time.perf_counter()
        await asyncio.gather(*(self._store(runtime, record, done) for record, done in rendered))
        if rendered:
            # Storing takes the store's time (and the interpreter's) from accepting as well.
            await step_back(started, self.busy, self.busy_share, _MAX_STORE_PAUSE)
        return bool(records) and not stopping

    def _next_limit(self, records: list[OutboxRecord], budget: int) -> int:
        """How many records the next claim takes (see ``budget``)."""
        if not records:
            return 1
        largest = self._expected = max(_size_of(record) for record in records)
        return max(1, min(self.batch, 2 * self._limit, budget // max(1, largest)))

    @staticmethod
    async def _render(runtime: Runtime, record: OutboxRecord) -> Plan | str:
        """The rendered plan of a journal record, or why it cannot be rendered."""
        data = record.payload.get(INBOX_KIND)
        try:
            if not isinstance(data, dict):
                raise PayloadError("", "is not an inbox record")
            notification = parse_stored(data)
            route_name = data.get("route")
            try:
                return await plan(runtime, notification, route_name, now=record.created_at)
            except LookupError:
                if route_name is None or route_name.startswith(WEBHOOK_PREFIX):
                    raise
                # The forced route was removed by a reload since: route it by its labels.
                logger.warning("inbox: route %r is gone; matching by labels instead", route_name)
                return await plan(runtime, notification, None, now=record.created_at)
        except (PayloadError, LookupError, TemplateError, MessageValidationError) as exc:
            return f"could not render the notification: {exc}"

    async def _store(self, runtime: Runtime, record: OutboxRecord, done: Plan | str) -> None:
        store = runtime.store_required
        if isinstance(done, str):
            logger.error("inbox: notification %s: %s", _id_of(record), done)
            await store.dead(record.id, done, now=self.clock())
            return
        try:
            ids = await store.settle(record.id, done.messages, now=self.clock())
        except LeaseLostError:
            # Its lease ended and another worker took it; that one stores the messages.
            logger.warning("inbox: lost the lease of notification %s", _id_of(record))
            return
        self.processed += 1
        await finish(runtime, done, ids)


def _size_of(record: OutboxRecord) -> int:
    """The bytes of the body a journal record holds (0 when unknown: an older record)."""
    data = record.payload.get(INBOX_KIND)
    size = data.get("size") if isinstance(data, dict) else None
    return size if type(size) is int and size > 0 else 0


def _id_of(record: OutboxRecord) -> str:
    data = record.payload.get(INBOX_KIND)
    return str(data.get("id", "?")) if isinstance(data, dict) else f"record {record.id}"
