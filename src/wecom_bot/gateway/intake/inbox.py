"""Journal first: a notification is stored as received, answered 200, and rendered behind.

The request path does only what the sender must hear about: it parses and validates the
payload (4xx with a reason when bad), picks the routes (404 for an unknown one), and stores
the payload in the outbox as one record of the internal bot :data:`INBOX_BOT`, keyed by the
notification's idempotency key. That write is durable before the 200, so a crash after it
loses nothing: the next start renders what is left.

:class:`InboxProcessor` claims those records in the background, in arrival order, renders
each for its routes (:func:`wecom_bot.gateway.intake.ingest.plan`) and swaps it for the rendered
messages in one transaction (:meth:`wecom_bot.store.Outbox.settle`), then writes history and
wakes the dispatcher. Muting is decided for the moment the notification was received, so a
backlog does not change what a mute interval does. A notification that cannot be rendered
(a template failing on this payload) becomes a dead letter with the reason: fix the
template, reload, and requeue it from the console.

Under a burst the journal absorbs what rendering cannot keep up with; the processor works
between requests, so accepting stays fast. Several gateways on one Redis share the journal:
any of them renders what any of them accepted. ``?wait=true`` on a request renders before
answering instead (see :func:`wecom_bot.gateway.intake.ingest.ingest`).
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

from ...errors import MessageValidationError
from ...masking import redact
from ...store import LeaseLostError, NewMessage, OutboxRecord, StoreUnavailableError
from ...store.history import HistoryEntry, HistoryEvent, label_pairs
from ...storm import cut_value
from ..actions.groups import group_of
from ..background import BackgroundLoop
from ..model import INBOX_BOT, Notification
from ..pacing import step_back
from ..runtime import Runtime
from ..surrogates import may_hold_surrogates, replace_surrogates
from ..templates.escaping import sanitize
from ..templates.render_pool import RenderPoolClosed
from ..templates.renderer import TemplateError
from .bodies import BodyBudget, Reservation
from .ingest import Plan, finish, note_duplicate, plan, title_of, track_group, track_groups
from .sources import PayloadError, parse_payload

__all__ = [
    "INBOX_BOT",
    "INBOX_KIND",
    "Accepted",
    "Body",
    "InboxProcessor",
    "accept",
    "dead_letter",
    "decode_body",
    "failed_entry",
    "inbox_message",
    "safe_reason",
]

logger = logging.getLogger("wecom_bot.gateway.intake.inbox")


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


@dataclass
class _Batch:
    """What the records of a batch that went on alone wait for: the batch's tracking of the
    alert groups (``lanes``) of the records rendered in it."""

    tracked: asyncio.Future[None]
    lanes: set[str] = field(default_factory=set)


class InboxProcessor(BackgroundLoop):
    """Renders journaled notifications into outbox messages, in the background.

    Every claimed record ends settled (its messages stored), a dead letter with the reason
    (anything that goes wrong with that one record, whatever the exception), or back in the
    journal (the store did not answer, or the gateway is stopping). A render that has not
    answered within ``detach_after`` (a configured template in the render pool, slow on this
    payload) is finished on its own task, so the journal moves on without it; the records of
    its alert group wait for it, to keep their order.

    Args:
        runtime: returns the current runtime (a reload swaps it; records claimed later
            render with the new config).
        clock: wall-clock time.
        batch: records claimed at a time (each is leased until it is settled); also the most
            slow renders finished on their own tasks at once.
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
        detach_after: seconds a render may take before the batch goes on without it.
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
        detach_after: float = 0.5,
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
        self.detach_after = detach_after
        self.processed = 0
        """Notifications this processor turned into their messages since it was built."""
        self.dead_lettered = 0
        """Notifications this processor made dead letters since it was built."""
        # Records whose slow render finishes on its own task, by record id; and per alert
        # group, the last of those tasks (a later record of the group waits for it).
        self._detached: dict[int, asyncio.Task[None]] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}

    async def stop(self) -> None:
        """Stop claiming; give back the records whose slow render was still running."""
        await super().stop()
        if not self._detached:
            return
        # The render pool is closed first when the gateway stops: those renders end at once.
        _, pending = await asyncio.wait(list(self._detached.values()), timeout=5.0)
        for task in pending:
            task.cancel()
        held = list(self._detached)
        await asyncio.gather(*pending, return_exceptions=True)
        if held:
            with contextlib.suppress(StoreUnavailableError):
                await self._runtime().store_required.unclaim(held, now=self.clock())
        self._detached.clear()
        self._lanes.clear()

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
        batch = _Batch(asyncio.get_running_loop().create_future())
        stopping = False
        try:
            for index, record in enumerate(records):
                stopping = self._stopping.is_set()
                if not stopping:
                    started = time.perf_counter()
                    try:
                        done = await self._render_or_detach(runtime, record, batch)
                    except RenderPoolClosed:  # the gateway is stopping: render abandoned
                        stopping = True
                    else:
                        if done is not None:
                            rendered.append((record, done))
                if stopping:
                    await store.unclaim([r.id for r in records[index:]], now=self.clock())
                    break
                await step_back(started, self.busy, self.busy_share, _MAX_PAUSE)
            rendered = await self._track(runtime, rendered)
        finally:
            batch.tracked.set_result(None)
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

    async def _track(
        self, runtime: Runtime, rendered: list[tuple[OutboxRecord, Plan | str]]
    ) -> list[tuple[OutboxRecord, Plan | str]]:
        """Open or forget the alert groups of a rendered batch (escalation timers) before its
        messages are stored; a record whose group cannot be tracked becomes a dead letter.

        Raises:
            StoreUnavailableError: the store did not answer; the batch went back to the
                journal (processed again, it tracks the same groups to the same effect).
        """
        plans = [done for _, done in rendered if not isinstance(done, str)]
        try:
            await track_groups(runtime, plans)
        except StoreUnavailableError:
            with contextlib.suppress(StoreUnavailableError):  # else their leases run out
                await self.unclaim(runtime, [r for r, _ in rendered])
            raise
        except Exception:
            # One group's failure stops the others in its gather: track one by one instead,
            # to learn which record it was (tracking again changes nothing).
            checked: list[tuple[OutboxRecord, Plan | str]] = []
            for record, done in rendered:
                if not isinstance(done, str):
                    try:
                        await track_group(runtime, done)
                    except StoreUnavailableError:
                        with contextlib.suppress(StoreUnavailableError):
                            await self.unclaim(runtime, [r for r, _ in rendered])
                        raise
                    except Exception as exc:
                        done = f"could not track its alert group: {_describe(exc)}"
                checked.append((record, done))
            return checked
        return rendered

    async def unclaim(self, runtime: Runtime, records: list[OutboxRecord]) -> None:
        """Give records back to the journal, due now."""
        await runtime.store_required.unclaim([r.id for r in records], now=self.clock())

    async def _render_or_detach(
        self, runtime: Runtime, record: OutboxRecord, batch: _Batch | None = None
    ) -> Plan | str | None:
        """The record's plan or why it has none; ``None`` when its render goes on without the
        batch (it is slow, or an earlier record of its alert group is)."""
        if batch is None:  # a record rendered alone
            batch = _Batch(asyncio.get_running_loop().create_future())
            batch.tracked.set_result(None)
        parsed = _parse(record)
        if isinstance(parsed, str):
            return parsed
        notification, route_name = parsed
        if not self._lanes and (runtime.render_pool is None or not runtime.config.templates):
            # Nothing renders in a worker, nothing goes on alone: no render here can be slow.
            return await _render(runtime, notification, route_name, record.created_at)
        try:
            lane = group_of(notification)
        except Exception as exc:
            return f"could not render the notification: {_describe(exc)}"
        before: asyncio.Future[None] | None = self._lanes.get(lane) if lane is not None else None
        rendering = asyncio.ensure_future(
            _render(runtime, notification, route_name, record.created_at)
        )
        if before is None or before.done():
            # Enough running alone already: this one is waited for, however long it takes.
            patience = None if len(self._detached) >= self.batch else self.detach_after
            finished, _ = await asyncio.wait({rendering}, timeout=patience)
            if finished:
                if lane is not None:
                    batch.lanes.add(lane)
                return rendering.result()
            # An earlier record of its group in this batch is tracked when the batch is.
            before = batch.tracked if lane in batch.lanes else None
        task = asyncio.create_task(self._finish_alone(runtime, record, rendering, before))
        self._detached[record.id] = task
        if lane is not None:
            self._lanes[lane] = task
            task.add_done_callback(lambda t: self._end_lane(lane, t))
        logger.info("inbox: notification %s renders slowly; the journal goes on", _id_of(record))
        return None

    def _end_lane(self, lane: str, task: asyncio.Task[None]) -> None:
        if self._lanes.get(lane) is task:
            del self._lanes[lane]

    async def _finish_alone(
        self,
        runtime: Runtime,
        record: OutboxRecord,
        rendering: asyncio.Future[Plan | str],
        before: asyncio.Future[None] | None,
    ) -> None:
        """Settle one record whose render was slow, after the one before it in its group."""
        try:
            if before is not None:
                await asyncio.wait({before})
            try:
                done = await rendering
            except RenderPoolClosed:  # the gateway is stopping: back to the journal
                await self.unclaim(runtime, [record])
                return
            [(record, done)] = await self._track(runtime, [(record, done)])
            await self._store(runtime, record, done)
        except StoreUnavailableError as exc:  # its lease ends and it is processed again
            logger.error("inbox: notification %s left for later: %s", _id_of(record), exc)
        except Exception:  # not expected (failures end as dead letters): leave it to the lease
            logger.exception("inbox: notification %s left for later", _id_of(record))
        finally:
            self._detached.pop(record.id, None)

    async def _store(self, runtime: Runtime, record: OutboxRecord, done: Plan | str) -> None:
        store = runtime.store_required
        if not isinstance(done, str):
            try:
                ids = await store.settle(record.id, done.messages, now=self.clock())
            except LeaseLostError:
                # Its lease ended and another worker took it; that one stores the messages.
                logger.warning("inbox: lost the lease of notification %s", _id_of(record))
                return
            except StoreUnavailableError:
                raise
            except Exception as exc:  # messages the store cannot keep: nothing was stored
                done = f"could not store its messages: {_describe(exc)}"
            else:
                self.processed += 1
                try:
                    await finish(runtime, done, ids)
                except StoreUnavailableError:
                    raise
                except Exception as exc:  # stored already: delivered, only history lacks
                    logger.error(
                        "inbox: notification %s: queued, but its history was not written: %s",
                        _id_of(record), safe_reason(runtime, _describe(exc)),
                    )  # fmt: skip
                return
        await dead_letter(runtime, record, done, now=self.clock())
        self.dead_lettered += 1


def _parse(record: OutboxRecord) -> tuple[Notification, str | None] | str:
    """The notification a journal record holds and its forced route, or why there is none."""
    data = record.payload.get(INBOX_KIND)
    try:
        if not isinstance(data, dict):
            raise PayloadError("", "is not an inbox record")
        route_name = data.get("route")
        return parse_stored(data), route_name if isinstance(route_name, str) else None
    except Exception as exc:  # an older, foreign or damaged record: nothing can render it
        return f"could not render the notification: {_describe(exc)}"


async def _render(
    runtime: Runtime, notification: Notification, route_name: str | None, received: float
) -> Plan | str:
    """The rendered plan of a journaled notification, or why it cannot be rendered.

    Raises:
        RenderPoolClosed: the gateway is stopping (the record goes back to the journal).
        StoreUnavailableError: the store did not answer (the same).
    """
    try:
        try:
            return await plan(runtime, notification, route_name, now=received)
        except LookupError as exc:
            # Only a plain LookupError names a missing route (a KeyError is some bug's).
            if type(exc) is not LookupError or not route_name:
                raise
            if route_name.startswith(WEBHOOK_PREFIX):
                raise
            # The forced route was removed by a reload since: route it by its labels.
            logger.warning("inbox: route %r is gone; matching by labels instead", route_name)
            return await plan(runtime, notification, None, now=received)
    except (RenderPoolClosed, StoreUnavailableError):
        raise
    except Exception as exc:  # whatever it is, it is this notification's, not the journal's
        return f"could not render the notification: {_describe(exc)}"


_EXPECTED = (PayloadError, TemplateError, MessageValidationError)
"""Failures a notification is expected to have, which say what they are (as does a plain
:class:`LookupError`: a route or webhook a reload removed)."""
_MAX_REASON_BYTES = 2000
"""A dead letter's reason is cut to this (an exception can quote a whole label value)."""


def _describe(exc: BaseException) -> str:
    """An exception as one line of a dead letter's reason: its text, with its type when it is
    not one of the failures a notification is expected to have."""
    if isinstance(exc, TemplateError):
        return exc.in_words
    text = str(exc)
    if isinstance(exc, _EXPECTED) or type(exc) is LookupError:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _secrets(runtime: Runtime) -> list[str]:
    return [key for target in runtime.targets.values() for key in target.keys]


def safe_reason(runtime: Runtime, reason: str) -> str:
    """A reason as it may be stored, shown and logged: keys masked, valid UTF-8 on one line
    (lone surrogates and control characters gone), within :data:`_MAX_REASON_BYTES`."""
    text = " ".join(sanitize(redact(reason, *_secrets(runtime))).split())
    return cut_value(text, _MAX_REASON_BYTES)


def failed_entry(
    record: OutboxRecord, notification: Notification | None, reason: str, now: float
) -> HistoryEntry:
    """The history entry of a journaled notification that became a dead letter (``failed``)."""
    data = record.payload.get(INBOX_KIND)
    data = data if isinstance(data, dict) else {}
    notification_id = str(data.get("id") or f"record-{record.id}")
    detail: dict[str, Any] = {"error": reason, "record_id": record.id}
    if notification is None:
        return HistoryEntry(
            id=notification_id, received_at=record.created_at, updated_at=now,
            source=str(data.get("source", "?")), status="firing", state="failed",
            title=f"unreadable journal record {record.id}", bots=(INBOX_BOT,), detail=detail,
        )  # fmt: skip
    return HistoryEntry(
        id=notification_id, received_at=record.created_at, updated_at=now,
        source=notification.source, status=notification.status, state="failed",
        title=title_of(notification),
        labels=label_pairs(
            [notification.group_labels, notification.common_labels]
            + [a.labels for a in notification.alerts[:_FAILED_LABEL_ALERTS]]
        ),
        bots=(INBOX_BOT,), alerts=notification.total_alerts, detail=detail,
    )  # fmt: skip


_FAILED_LABEL_ALERTS = 50
"""Alerts whose labels a failed entry indexes (enough to find it; history keeps 200 pairs)."""


async def dead_letter(runtime: Runtime, record: OutboxRecord, reason: str, *, now: float) -> None:
    """Make a journal record a dead letter with ``reason``: in the store (the console's dead
    letters, requeued from there), in history as ``failed``, and once in the log at ERROR.

    Raises:
        StoreUnavailableError: the store did not answer (the record stays claimed until its
            lease ends, then it is processed again).
    """
    text = safe_reason(runtime, reason)
    nid = _id_of(record)
    logger.error(
        "inbox: notification %s is a dead letter: %s", nid, text,
        extra={"event": "dead_lettered", "bot": INBOX_BOT, "notification_id": nid},
    )  # fmt: skip
    await runtime.store_required.dead(record.id, text, now=now)
    if runtime.history is None:
        return
    parsed = _parse(record)
    notification = None if isinstance(parsed, str) else parsed[0]
    try:
        entry = failed_entry(record, notification, text, now)
    except Exception:  # history is the console's view; the dead letter is stored already
        entry = failed_entry(record, None, text, now)
    event = HistoryEvent(
        entry.id, now, "dead_lettered", record.id, INBOX_BOT, text,
        code="event.dead", params={"detail": text},
    )  # fmt: skip
    await runtime.history.record(entry, [event])


def _size_of(record: OutboxRecord) -> int:
    """The bytes of the body a journal record holds (0 when unknown: an older record)."""
    data = record.payload.get(INBOX_KIND)
    size = data.get("size") if isinstance(data, dict) else None
    return size if type(size) is int and size > 0 else 0


def _id_of(record: OutboxRecord) -> str:
    data = record.payload.get(INBOX_KIND)
    return str(data.get("id", "?")) if isinstance(data, dict) else f"record {record.id}"
