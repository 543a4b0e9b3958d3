"""Recording delivery history: what each notification became, and what happened to it.

Recording is the delivery core's job (the dispatcher's hooks and ingest feed it); the console
only reads what is recorded.

:class:`HistoryRecorder` is a :class:`~wecom_bot.dispatcher.DispatchObserver`: the dispatcher's
hooks (sent, retried, dead-lettered) are turned into :class:`~wecom_bot.store.history.HistoryEvent`
objects and written, in order, by one background task, so a slow store never slows delivery.
After each event the notification's state is recomputed from its outbox records
(:func:`state_of`), which also covers digests: a digest record carries the notification ids of
every message it folded. The recorder also keeps, per bot, the last success and the last
failure (with its errcode) for the status view, and purges history past its retention.

Every text written here passes :func:`wecom_bot.masking.redact` with the bots' keys first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..dispatcher import _OBSOLETE, _STORM_GRAPH, DispatchObserver
from ..errors import DeliveryError
from ..limits import CONTENT_LIMITS, utf8_len
from ..masking import redact
from ..store import Outbox, OutboxRecord, Status, StoreUnavailableError
from ..store.history import HistoryEntry, HistoryEvent, HistoryStore
from ..storm import detach
from .model import INBOX_BOT
from .pacing import step_back

__all__ = [
    "BotActivity",
    "HistoryRecorder",
    "delivery_records",
    "errcode_of",
    "queued_parts",
    "state_of",
]

logger = logging.getLogger("wecom_bot.gateway.history")

_ERRCODE = re.compile(r"(?:API error|errcode)[ =:]*(-?\d+)")

_EVENTS_PER_WRITE = 100

#: States an entry keeps until an operator acts; dispatcher events do not change them.
FINAL_STATES = frozenset({"muted", "dropped", "skipped", "failed"})


def errcode_of(text: str | None) -> int | None:
    """The WeCom errcode quoted in an error text (``WeCom API error 93000: ...``), if any."""
    found = _ERRCODE.search(text or "")
    return int(found.group(1)) if found else None


def queued_parts(
    entry_id: str,
    route: str,
    planned: Sequence[tuple[str, dict[str, Any]]],
    ids: Sequence[int],
    now: float,
) -> tuple[list[dict[str, Any]], list[HistoryEvent]]:
    """The ``messages`` of a history entry whose (bot, payload) parts of ``route`` were queued
    as the outbox records ``ids``, in order, and one ``queued`` event per part."""
    messages = []
    for index, ((bot, payload), rid) in enumerate(zip(planned, ids, strict=True)):
        msgtype = str(payload.get("msgtype", ""))
        body = payload.get(msgtype, {})
        text = body.get("content", "") if isinstance(body, dict) else ""
        messages.append(
            {"record_id": rid, "route": route, "bot": bot, "msgtype": msgtype,
             "part": index + 1, "parts": len(planned), "size": utf8_len(str(text)),
             "limit": CONTENT_LIMITS.get(msgtype), "payload": detach(payload)}
        )  # fmt: skip
    events = [
        HistoryEvent(entry_id, now, "queued", rid, bot)
        for (bot, _), rid in zip(planned, ids, strict=True)
    ]
    return messages, events


def delivery_records(records: Sequence[OutboxRecord]) -> list[OutboxRecord]:
    """The records that deliver a notification: its journal record is not one of them."""
    return [r for r in records if r.bot != INBOX_BOT]


def state_of(records: Sequence[OutboxRecord], current: str, now: float) -> str:
    """A notification's state from its outbox records.

    Records folded into a digest are left out (the digest carries the notification). Dead
    wins over everything, then ``delivered`` when every message is, ``retrying`` when one has
    failed at least once, ``deferred`` while a deferred message waits for its time.
    """
    live = [r for r in records if r.replaced_by is None]
    if not live:
        return current
    if any(r.status is Status.DEAD for r in live):
        return "dead"
    if all(r.status is Status.SENT for r in live):
        return "delivered"
    if any(r.attempts > 0 for r in live):
        return "retrying"
    if current == "deferred" and any(r.next_attempt_at > now for r in live):
        return "deferred"
    return "pending"


@dataclass
class BotActivity:
    """What one gateway process saw of a bot's deliveries (for the status view).

    Attributes:
        sent: deliveries since start.
        failed: failed attempts since start (retried or dead-lettered).
        last_success_at: time of the last errcode 0.
        last_failure_at: time of the last failed attempt.
        last_errcode: the errcode of the last failure, when WeCom answered one.
        last_error: the last failure's reason (keys masked).
    """

    sent: int = 0
    failed: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_errcode: int | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


class HistoryRecorder(DispatchObserver):
    """Writes history from ingest and from the dispatcher; one per running gateway.

    Args:
        history: where entries and events go.
        outbox: the outbox (states are recomputed from its records).
        clock: wall-clock time.
        secrets: returns every webhook key currently configured (masked out of any text).
        busy: whether inbound requests are being answered; while they are, recomputing
            states takes at most ``busy_share`` of the time (they are the console's view,
            not the delivery: they may lag behind a storm and catch up after).
        busy_share: that share (0 < share <= 1).
    """

    def __init__(
        self,
        history: HistoryStore,
        outbox: Outbox,
        *,
        clock: Callable[[], float],
        secrets: Callable[[], Iterable[str]],
        busy: Callable[[], bool] = lambda: False,
        busy_share: float = 0.1,
    ) -> None:
        self.busy = busy
        self.busy_share = busy_share
        # Entries whose state to recompute, oldest request first; asking twice is once.
        self._stale: dict[str, None] = {}
        self._stale_wake = asyncio.Event()
        self._stale_done = asyncio.Event()
        self._stale_done.set()
        self._refresher: asyncio.Task[None] | None = None
        self.history = history
        self.outbox = outbox
        self.clock = clock
        self.secrets = secrets
        self.activity: dict[str, BotActivity] = {}
        # (events to write, entries whose state to recompute afterwards), written in order.
        self._queue: asyncio.Queue[tuple[list[HistoryEvent], list[str]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # Notifications whose events came before their entry (see record); bounded by the
        # history of a burst, emptied as entries arrive.
        self._orphans: set[str] = set()
        # Notices the dispatcher dropped, per entry: an entry all of whose messages were
        # dropped ends "dropped" at its next refresh (in memory: a restart shows "delivered").
        self._dropped: dict[str, int] = {}
        self._purger: asyncio.Task[None] | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, *, retention: float, purge_every: float) -> None:
        """Start the writer and the periodic purge (history and delivered outbox records)."""
        self._writer = asyncio.create_task(self._write_loop(), name="history-writer")
        self._refresher = asyncio.create_task(self._refresh_loop(), name="history-refresh")
        self._purger = asyncio.create_task(
            self._purge_loop(retention, purge_every), name="history-purge"
        )

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        await self.flush()
        for task in (self._writer, self._refresher, self._purger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._writer = self._refresher = self._purger = None

    async def flush(self) -> None:
        """Wait until every event recorded so far is written and its states recomputed."""
        if self._writer is not None and not self._writer.done():
            await self._queue.join()
        if self._refresher is not None and not self._refresher.done():
            await self._stale_done.wait()

    def _redact(self, text: str) -> str:
        return redact(text, *self.secrets())

    def _activity(self, bot: str) -> BotActivity:
        return self.activity.setdefault(bot, BotActivity())

    def _emit(self, record: OutboxRecord, kind: str, bot: str, detail: str = "",
              errcode: int | None = None, code: str | None = None,
              params: dict[str, Any] | None = None) -> None:  # fmt: skip
        # ``code`` and ``params``: what ``detail`` says, for the pages to say it in their
        # language (see HistoryEvent); ``detail`` stays the English line logs and clients read.
        now = self.clock()
        events = [
            HistoryEvent(nid, now, kind, record.id, bot, detail, errcode, code, params or {})
            for nid in record.notification_ids
        ]
        if events:
            self._queue.put_nowait((events, list(record.notification_ids)))

    # -- the dispatcher's hooks -----------------------------------------------------------------
    def sent(self, bot: str, record: OutboxRecord, seconds_since_created: float) -> None:
        """A message was delivered."""
        activity = self._activity(bot)
        activity.sent += 1
        activity.last_success_at = self.clock()
        seconds = f"{max(seconds_since_created, 0.0):.1f}"
        note = f"delivered after {seconds}s"
        count = len(record.notification_ids)
        if count > 1:
            note += f" in a digest of {count} notifications"
            self._emit(record, "sent", bot, note, None, "event.delivered_digest",
                       {"seconds": seconds, "count": count})  # fmt: skip
        else:
            self._emit(record, "sent", bot, note, None, "event.delivered", {"seconds": seconds})

    def retried(self, bot: str, record: OutboxRecord, error: DeliveryError, delay: float) -> None:
        """An attempt failed and will be retried."""
        reason = self._redact(str(error))
        code = getattr(error, "errcode", None)
        self._failure(bot, reason, code if isinstance(code, int) else None)
        self._emit(
            record, "retried", bot, f"{reason} (retry in {delay:.1f}s)",
            code if isinstance(code, int) else None, "event.retry",
            {"seconds": f"{delay:.1f}", "detail": reason},
        )  # fmt: skip

    def dead_lettered(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """A message became a dead letter."""
        text = self._redact(reason)
        self._failure(bot, text, errcode_of(text))
        self._emit(record, "dead_lettered", bot, text, errcode_of(text), "event.dead",
                   {"detail": text})  # fmt: skip

    def dropped(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """A queued notice was not sent: its entry ends ``dropped``."""
        for nid in record.notification_ids:
            self._dropped[nid] = self._dropped.get(nid, 0) + 1
        known = {_OBSOLETE: "event.obsolete", _STORM_GRAPH: "event.storm_graph"}
        if reason in known:
            self._emit(record, "dropped", bot, reason, None, known[reason])
        else:
            self._emit(record, "dropped", bot, reason, None, "event.dropped", {"detail": reason})

    def _failure(self, bot: str, reason: str, errcode: int | None) -> None:
        activity = self._activity(bot)
        activity.failed += 1
        activity.last_failure_at = self.clock()
        activity.last_errcode = errcode
        activity.last_error = reason

    # -- ingest and the console -------------------------------------------------------------------
    async def record(self, entry: HistoryEntry, events: Sequence[HistoryEvent] = ()) -> None:
        """Store a received notification (and its first events); failures are logged only:
        the messages are in the outbox already, history must not fail the request."""
        try:
            await self.history.record(entry, events)
        except StoreUnavailableError as exc:
            logger.error("history: could not record notification %s: %s", entry.id, exc)
            return
        if entry.id in self._orphans and self._writer is not None:
            # The dispatcher sent (or failed) one of its messages before the entry existed:
            # the state those events left behind has to be recomputed now.
            self._orphans.discard(entry.id)
            self._queue.put_nowait(([], [entry.id]))

    async def record_events(self, events: Sequence[HistoryEvent]) -> None:
        """Store events about an entry (a duplicate ...); failures are logged only."""
        try:
            await self.history.add_events(list(events))
        except StoreUnavailableError as exc:
            logger.error("history: could not record %d events: %s", len(events), exc)

    def note(
        self, records: Iterable[OutboxRecord], kind: str, detail: str = "", code: str | None = None
    ) -> None:
        """An operator acted on records (``requeued``, ``discarded``, ``sent_now`` ...);
        ``code`` names what ``detail`` says (see :class:`HistoryEvent`)."""
        for record in records:
            self._emit(record, kind, record.bot, detail, None, code)

    # -- background work ---------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Under load, take what else is waiting: one write and one refresh per entry.
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            events = [e for item in batch for e in item[0]]
            refresh = [nid for item in batch for nid in item[1]]
            try:
                await self._write(events, refresh)
            except StoreUnavailableError as exc:
                logger.error("history: %d events not written: %s", len(events), exc)
            except Exception:  # the writer must outlive a bug in one event
                logger.exception("history: writing events failed")
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, events: list[HistoryEvent], refresh: list[str]) -> None:
        # In slices: a digest of a long backlog brings thousands of events at once, and one
        # write of them all would hold the store while requests wait behind it.
        for start in range(0, len(events), _EVENTS_PER_WRITE):
            await self.history.add_events(events[start : start + _EVENTS_PER_WRITE])
        if refresh and self._refresher is not None and not self._refresher.done():
            self._stale.update(dict.fromkeys(refresh))
            self._stale_done.clear()
            self._stale_wake.set()
        else:
            for nid in dict.fromkeys(refresh):
                await self.refresh(nid)

    async def _refresh_loop(self) -> None:
        while True:
            if not self._stale:
                self._stale_done.set()
                await self._stale_wake.wait()
                self._stale_wake.clear()
                continue
            nid = next(iter(self._stale))
            del self._stale[nid]
            started = time.perf_counter()
            try:
                await self.refresh(nid)
            except StoreUnavailableError as exc:
                logger.error("history: state of %s not recomputed: %s", nid, exc)
            except Exception:  # the refresher must outlive a bug in one entry
                logger.exception("history: recomputing the state of %s failed", nid)
            await step_back(started, self.busy, self.busy_share, 0.05)

    async def refresh(self, notification_id: str) -> str | None:
        """Recompute one entry's state from the outbox. Returns the state, if the entry exists."""
        entry = await self.history.get(notification_id)
        if entry is None:
            self._orphans.add(notification_id)
            self._dropped.pop(notification_id, None)
            return None
        if entry.state in FINAL_STATES:
            return entry.state
        # delivery_states: a digest of a long backlog carries the ids of everything it
        # folded, and full records made thousands of large reads here, one per notification.
        records = delivery_records(await self.outbox.delivery_states(notification_id))
        dropped = self._dropped.get(notification_id, 0)
        if dropped and dropped >= sum(1 for r in records if r.replaced_by is None):
            del self._dropped[notification_id]
            await self.history.set_state(notification_id, "dropped", now=self.clock())
            return "dropped"
        if not records and entry.state == "dead":
            state = "discarded"  # dead letters leave the outbox only by an operator's discard
        else:
            state = state_of(records, entry.state, self.clock())
        if state != "pending":
            self._dropped.pop(notification_id, None)  # some of its messages went out
        if state != entry.state:
            await self.history.set_state(notification_id, state, now=self.clock())
        return state

    async def purge(self, retention: float) -> tuple[int, int]:
        """Remove history entries and delivered outbox records older than ``retention``.

        Returns:
            (history entries removed, outbox records removed).
        """
        before = self.clock() - retention
        return await self.history.purge(before=before), await self.outbox.purge_sent(before=before)

    async def _purge_loop(self, retention: float, every: float) -> None:
        while True:
            try:
                entries, records = await self.purge(retention)
            except StoreUnavailableError as exc:
                logger.error("history: purge failed: %s", exc)
            else:
                if entries or records:
                    logger.info(
                        "history: purged %d entries and %d delivered messages", entries, records
                    )
            await asyncio.sleep(every)
