"""The dispatcher: drains the outbox to WeCom under the rate limit, without losing anything.

One worker task per bot takes due records from the outbox in FIFO order, waits for a free
send slot on one of the bot's keys (several robots in one group form a pool), sends, and
then acks the record. A failure is handed to the retry policy: retryable errors come back
later (``release`` with the next attempt time, the worker never sleeps on them), permanent
ones become dead letters with their reason. A 45009 answer also blocks the key in the
limiter until the window frees.

A worker holds leases only while it sends: it claims no more records than there are free
slots, renews the leases of what it holds every third of a lease (a slow answer, a long fold),
and when a slot it counted on is gone (a 45009 blocked the key, another instance took it) it
gives the rest of its batch back unleased rather than wait holding them. So a record whose
owner lives never reaches another worker or instance.

When a bot's backlog cannot drain within ``coalesce_after`` seconds at the allowed rate, the
worker folds pending text/markdown/markdown_v2 records into digests (see
:mod:`wecom_bot.digest`) in one store transaction, so a storm of alerts arrives as a few
full messages instead of an hour-long trickle. Messages are packed whole only when each is a
whole message written per alert; a batch holding storm summaries or parts of split
notifications is written anew from the alerts the messages carry (the ``summarize`` hook), so
a digest never nests a summary nor cuts an entry in two. Each summary is told the storm's
running total (:mod:`wecom_bot.tally`): the distinct alerts the bot has delivered since its
storm began, per status.

The outbox hands records out by class (:class:`~wecom_bot.store.Priority`): alerts first,
then acknowledgements, escalations and reminders. Escalations and reminders ("notices") are
never mixed into an alert digest: whenever a worker claims one, it takes every notice of that
class queued for the bot and folds them into one message (``12 组告警仍未认领 …``, written by the
gateway's :class:`NoticeFolder`), so thousands of groups escalating at once cost a few sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .client import AsyncBot
from .digest import Syntax, item_content, mention_lines, mentions_in, packable, plan_digest
from .errors import DeliveryError, MessageValidationError, WeComAPIError
from .limits import CONTENT_LIMITS, ERRCODE_RATE_LIMITED, utf8_len
from .masking import mask_key, redact
from .messages import parse_message
from .ratelimit import SlidingWindowLimiter
from .repeats import marked_repeat, may_have_been_processed
from .retry import RetryPolicy
from .store import NewMessage, Outbox, OutboxRecord, Priority, StoreUnavailableError
from .storm import STORM_GRAPH_KEY, AlertBrief, briefs_of, detach, unique_briefs
from .tally import StormTally

logger = logging.getLogger("wecom_bot.dispatcher")

_DIGEST_KINDS: tuple[Syntax, ...] = ("text", "markdown", "markdown_v2")


class SendLimiter(Protocol):
    """What the dispatcher needs of a rate limiter (local, or shared through Redis)."""

    async def try_acquire(self, key: str) -> float:
        """Take a slot now and return 0.0, or return the seconds until one frees."""

    async def record_rejection(self, key: str) -> float:
        """The server answered 45009: block the key until its window frees."""

    async def eta(self, key: str, count: int) -> float:
        """Seconds until ``count`` more sends for ``key`` could all have been made."""

    async def capacity(self, key: str, within: float, *, cap: int) -> int:
        """How many sends for ``key`` fit between now and ``within`` seconds from now."""

    async def used(self, key: str) -> int:
        """How many sends for ``key`` the current window holds."""

    async def answered(self, key: str, after: float, *, later: float = 0.0) -> None:
        """The send whose slot was taken ``after`` seconds ago got its answer only now, or none
        (a timeout): it counts from now, or from ``later`` seconds after now when no answer
        came (the server counts a send when it processes it)."""


class Summarizer(Protocol):
    """Writes alerts as storm summary contents (the gateway's ``summary`` template)."""

    async def __call__(
        self,
        briefs: Sequence[AlertBrief],
        *,
        syntax: Syntax,
        max_messages: int,
        notifications: int,
        running_total: Mapping[str, int] | None = None,
    ) -> list[str]:
        """The contents of the summary messages, each within the byte limit of ``syntax``
        (a configured template renders away from the event loop).

        ``running_total``: when the summary is a later part of a storm, the distinct alerts
        the bot has delivered since the storm began, per status (``"firing"``,
        ``"resolved"``), for each status whose running total exceeds the summary's own count
        of it; ``None`` when none does (see :mod:`wecom_bot.tally`)."""


@dataclass(frozen=True)
class NoticeFold:
    """What becomes of queued notices (see :class:`NoticeFolder`).

    Attributes:
        payloads: the messages that replace the notices still worth sending (one message,
            maybe in parts); ``None``: send them as they are.
        obsolete: the indices of the notices no longer worth sending (their groups were
            acknowledged, resolved or forgotten since they were queued): never sent.
        kept: the indices of messages sent as they are, whatever ``payloads`` says (not
            written as notices: nothing to fold them by).
    """

    payloads: list[dict[str, Any]] | None
    obsolete: frozenset[int] = frozenset()
    kept: frozenset[int] = frozenset()


class NoticeFolder(Protocol):
    """Writes queued escalation or reminder messages of several groups as one (the gateway's
    :func:`~wecom_bot.gateway.actions.notices.fold`)."""

    async def __call__(
        self, payloads: Sequence[Mapping[str, Any]], *, syntax: Syntax
    ) -> NoticeFold:
        """What becomes of ``payloads``, queued notices of one bot in one msgtype."""


def is_notice(record: OutboxRecord) -> bool:
    """Whether ``record`` is an escalation or reminder that may be folded with others."""
    return (
        record.priority in (Priority.ESCALATION, Priority.REMINDER)
        and record.kind in _DIGEST_KINDS
    )


class LocalLimiter:
    """Adapts the in-process :class:`~wecom_bot.ratelimit.SlidingWindowLimiter` to
    :class:`SendLimiter`."""

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        self.limiter = limiter

    async def try_acquire(self, key: str) -> float:
        """See :meth:`SendLimiter.try_acquire`."""
        return self.limiter.try_acquire(key)

    async def record_rejection(self, key: str) -> float:
        """See :meth:`SendLimiter.record_rejection`."""
        return self.limiter.record_rejection(key)

    async def eta(self, key: str, count: int) -> float:
        """See :meth:`SendLimiter.eta`."""
        return self.limiter.eta(key, count)

    async def capacity(self, key: str, within: float, *, cap: int) -> int:
        """See :meth:`SendLimiter.capacity`."""
        return self.limiter.capacity(key, within, cap=cap)

    async def used(self, key: str) -> int:
        """See :meth:`SendLimiter.used`."""
        return self.limiter.used(key)

    async def answered(self, key: str, after: float, *, later: float = 0.0) -> None:
        """See :meth:`SendLimiter.answered`."""
        self.limiter.answered(key, after, later=later)


class DispatchObserver:
    """Hooks for metrics and history; the default does nothing. Never receives a key."""

    def sent(self, bot: str, record: OutboxRecord, seconds_since_created: float) -> None:
        """A record was delivered (errcode 0)."""

    def retried(self, bot: str, record: OutboxRecord, error: DeliveryError, delay: float) -> None:
        """A delivery attempt failed and will be retried after ``delay`` seconds."""

    def dead_lettered(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """A record became a dead letter."""

    def rate_limit_wait(self, bot: str, seconds: float) -> None:
        """The worker waited for a send slot."""

    def digested(self, bot: str, items: int, messages: int, compact: bool) -> None:
        """``items`` records were folded into ``messages`` digests."""

    def dropped(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """A queued notice was not sent: it no longer needed saying (``reason`` says why)."""


@dataclass(frozen=True)
class BotTarget:
    """Where a bot's messages go.

    Attributes:
        name: the bot's configured name (what the outbox records carry).
        keys: one key, or several robots of the same group used as a pool.
        base_url: the API base URL (WeCom's, a proxy, or the emulator).
        timeout: seconds per request.
        http: extra ``httpx.AsyncClient`` options (proxy, verify) for this bot.
    """

    name: str
    keys: tuple[str, ...]
    base_url: str | None = None
    timeout: float = 10.0
    http: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        keys = ", ".join(mask_key(k) for k in self.keys)
        return f"BotTarget(name={self.name!r}, keys=[{keys}], base_url={self.base_url!r})"


@dataclass
class DispatcherSettings:
    """Tunables of the dispatcher.

    Attributes:
        coalesce_after: the longest a backlog may take to drain before it is digested (s).
        lease_seconds: how long a claimed record stays ours; longer than a send can take
            (records are claimed only when they can be sent at once).
        batch: records claimed at a time per bot.
        digest_batch: records considered for one round of digests (a round's swap is one
            store operation: larger rounds hold the store longer, and the gateway's request
            path waits behind them).
        digest_claim: records claimed per store operation while a round gathers its
            ``digest_batch`` (other work of the store runs between those claims).
        idle_poll: how often an idle worker looks for work it was not told about (s).
        storm_burst: sends per key and window that leave at once; past them the window is in
            a storm.
        storm_interval: in a storm, the least time between two sends of a bot (s); what
            arrives meanwhile is folded into the next one. ``0`` turns pacing off.
    """

    coalesce_after: float = 30.0
    lease_seconds: float = 30.0
    batch: int = 20
    digest_batch: int = 500
    digest_claim: int = 100
    idle_poll: float = 1.0
    storm_burst: int = 3
    storm_interval: float = 0.0


class Dispatcher:
    """Drains the outbox for a set of bots.

    Args:
        store: the outbox.
        targets: the bots, by name.
        limiter: the rate limiter (a :class:`LocalLimiter` or a shared one).
        retry: decides retry-or-give-up per error; its attempt count is the record's.
        settings: tunables.
        observer: metrics/history hooks.
        clock: wall-clock time, shared with the store (records outlive the process); the
            gateway passes a :class:`~wecom_bot.clock.SteadyClock` (steps of the system clock
            absorbed). Waits inside the process (lease renewal, polls) are monotonic.
        summarize: writes the alerts that queued messages carry (:mod:`wecom_bot.storm`) as
            summaries when a backlog is folded; without it, digests are built from the
            messages' text alone.
        fold_notices: writes queued notices of many groups as one message; without it they
            are folded line by line like any digest.
    """

    def __init__(
        self,
        store: Outbox,
        targets: Mapping[str, BotTarget],
        *,
        limiter: SendLimiter,
        retry: RetryPolicy | None = None,
        settings: DispatcherSettings | None = None,
        observer: DispatchObserver | None = None,
        clock: Callable[[], float] = time.time,
        summarize: Summarizer | None = None,
        fold_notices: NoticeFolder | None = None,
    ) -> None:
        self.store = store
        self.summarize = summarize
        self.fold_notices = fold_notices
        self._last_send: dict[str, float] = {}
        self._tallies: dict[str, StormTally] = {}
        self.targets = dict(targets)
        self.limiter = limiter
        self.retry = retry or RetryPolicy(max_attempts=10)
        self.settings = settings or DispatcherSettings()
        self.observer = observer or DispatchObserver()
        self.clock = clock
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._stopping = asyncio.Event()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._bots: dict[str, list[AsyncBot]] = {}
        self._next_key: dict[str, int] = {}
        # One digest round at a time across bots: a round holds up to digest_batch decoded
        # records, and many bots folding at once multiplied the gateway's memory.
        self._digest_gate = asyncio.Semaphore(1)

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Recover leases left by a previous run and start one worker per bot."""
        try:
            recovered = await self.store.recover_expired_leases(now=self.clock())
        except StoreUnavailableError as exc:
            # The workers keep trying; claim recovers expired leases per bot as well.
            logger.error("outbox unavailable at start (%s); delivery resumes when it answers", exc)
        else:
            if recovered:
                logger.warning("recovered %d messages whose worker stopped mid-send", recovered)
        for name, target in self.targets.items():
            client = httpx.AsyncClient(timeout=target.timeout, **dict(target.http))
            self._clients[name] = client
            self._bots[name] = [
                AsyncBot(
                    key, base_url=target.base_url, retry=False, http_client=client,
                    timeout=target.timeout,  # per request: the bot's own default is not ours
                )  # fmt: skip
                for key in target.keys
            ]
            self._next_key[name] = 0
            self._wake[name] = asyncio.Event()
            self._tasks[name] = asyncio.create_task(self._worker(name), name=f"dispatch-{name}")
        self._started = True

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers after their in-flight send; what is left stays in the outbox."""
        self._stopping.set()
        for event in self._wake.values():
            event.set()
        tasks = list(self._tasks.values())
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for client in self._clients.values():
            await client.aclose()
        self._tasks.clear()
        self._clients.clear()

    def notify(self, bot: str | None = None) -> None:
        """Tell the worker(s) new work was enqueued, so they need not wait for the next poll."""
        events = [self._wake[bot]] if bot in self._wake else list(self._wake.values())
        for event in events:
            event.set()

    @property
    def running(self) -> bool:
        """Whether every bot's worker is running (readiness)."""
        return (
            self._started
            and not self._stopping.is_set()
            and not any(task.done() for task in self._tasks.values())
        )

    # -- the worker -----------------------------------------------------------------------
    async def _worker(self, bot: str) -> None:
        failing = ""  # the store's error, logged once while it lasts (not once a poll)
        while not self._stopping.is_set():
            try:
                worked = await self.drain_once(bot)
                failing = ""
            except StoreUnavailableError as exc:
                if str(exc) != failing:
                    logger.error("bot %r: outbox unavailable (%s); retrying shortly", bot, exc)
                    failing = str(exc)
                worked = False
            except Exception:  # the worker must outlive any one failure; the store keeps data
                logger.exception("dispatcher worker for bot %r failed; retrying shortly", bot)
                worked = False
            if not worked:
                await self._idle(bot)

    async def _idle(self, bot: str) -> None:
        event = self._wake[bot]
        timeout = self.settings.idle_poll
        try:
            due = await self.store.next_due_at(bot)
        except StoreUnavailableError:
            due = None
        if due is not None:
            timeout = min(timeout, max(due - self.clock(), 0.01))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    async def drain_once(self, bot: str) -> bool:
        """Claim what the bot can send now, digest it if the backlog is too long, send it.

        Records are claimed only when a send slot is free, and no more than the free slots,
        so a lease is never held while waiting for the rate limit: a worker that dies leaves
        at most the messages it was sending at that moment.

        Returns:
            Whether there was anything to do.
        """
        slots = await self._slots_within(bot, 0.0)
        if slots == 0:
            keys = self.targets[bot].keys
            wait = min([await self.limiter.eta(key, 1) for key in keys])
            self.observer.rate_limit_wait(bot, min(wait, self.settings.idle_poll))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(wait, self.settings.idle_poll))
            return True
        room = await self._burst_room(bot)
        storm = room == 0
        await self._maybe_quiet(bot, room)
        now = self.clock()
        if storm:
            wait = self._last_send.get(bot, 0.0) + self.settings.storm_interval - now
            if wait > 0 and await self.store.next_due_at(bot) is not None:
                # Let the storm gather: what arrives meanwhile is folded into the next send.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(), min(wait, self.settings.idle_poll)
                    )
                return True
        records = await self.store.claim(
            bot,
            limit=min(self.settings.batch, slots, room or slots),
            lease_seconds=self.settings.lease_seconds,
            now=now,
        )
        if not records:
            return False
        if storm:
            records = await self._drop_storm_graphs(bot, records)
            if not records:
                return True
        held = [r.id for r in records]
        async with self._leases_kept(held):
            records = await self._maybe_digest(bot, records, storm=storm, free=slots)
            held[:] = [r.id for r in records]
            if len(records) > slots:  # digests beyond the free slots wait their turn, unleased
                await self.store.unclaim([r.id for r in records[slots:]], now=self.clock())
                records = records[:slots]
            for index, record in enumerate(records):
                if self._stopping.is_set() or not await self._deliver(bot, record):
                    # Stopping, or no key has a slot any more (a 45009 blocked it, another
                    # instance took the slots): the rest go back unleased rather than wait
                    # held, and are claimed again (here or elsewhere) once a slot frees.
                    await self.store.unclaim([r.id for r in records[index:]], now=self.clock())
                    break
        return True

    async def _drop_storm_graphs(
        self, bot: str, records: list[OutboxRecord]
    ) -> list[OutboxRecord]:
        """``records`` without the graphs queued at rest: a storm began since, and an image
        would take a send the storm's summaries need (one let through a storm is kept)."""
        graphs = [
            r for r in records
            if r.priority == Priority.GRAPH and not r.payload.get(STORM_GRAPH_KEY)
        ]  # fmt: skip
        if not graphs:
            return records
        await self.store.ack([r.id for r in graphs], now=self.clock())
        for record in graphs:
            self.observer.dropped(bot, record, _STORM_GRAPH)
        logger.info("bot %r: %d queued graph(s) dropped: a storm began", bot, len(graphs))
        dropped = {r.id for r in graphs}
        return [r for r in records if r.id not in dropped]

    @contextlib.asynccontextmanager
    async def _leases_kept(self, held: list[int]) -> AsyncIterator[None]:
        """Renew the leases of ``held`` (the ids this worker holds, updated in place) every
        third of a lease while the block runs, so that a live owner's records never reach
        another worker or instance however long a send or a fold takes."""
        task = asyncio.create_task(self._renew_leases(held))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew_leases(self, held: list[int]) -> None:
        lease = self.settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)  # the event loop's monotonic clock
            try:
                await self.store.renew(list(held), lease_seconds=lease, now=self.clock())
            except StoreUnavailableError as exc:
                logger.warning("could not renew the leases of %d messages: %s", len(held), exc)

    async def _burst_room(self, bot: str) -> int | None:
        """Sends the bot may still make at once in this window (0: it is in a storm, so sends
        are paced and folded); ``None`` when pacing is off."""
        if self.settings.storm_interval <= 0:
            return None
        keys = self.targets[bot].keys
        return max(self.settings.storm_burst * len(keys) - await self._window_used(bot), 0)

    async def _window_used(self, bot: str) -> int:
        """How many sends the bot's keys have in their current windows."""
        used = 0
        for key in self.targets[bot].keys:
            used += await self.limiter.used(key)
        return used

    def _tally(self, bot: str) -> StormTally:
        tally = self._tallies.get(bot)
        if tally is None:
            seed = max(self.settings.storm_burst, 1) * len(self.targets[bot].keys)
            tally = self._tallies[bot] = StormTally(seed=seed)
        return tally

    async def _maybe_quiet(self, bot: str, room: int | None) -> None:
        """End the bot's storm tally once its window holds no send (idle for a window)."""
        tally = self._tally(bot)
        if not tally.busy:
            return
        full = self.settings.storm_burst * len(self.targets[bot].keys)
        if room is not None and full > 0:
            idle = room == full  # no send in the window; spares asking the limiter again
        else:
            idle = await self._window_used(bot) == 0
        if idle:
            tally.quiet()

    async def _maybe_digest(
        self, bot: str, records: list[OutboxRecord], *, storm: bool = False, free: int = 0
    ) -> list[OutboxRecord]:
        if any(is_notice(r) for r in records):
            # Notices always fold; alerts only as they would without them.
            records = await self._fold_all_notices(bot, records)
        if not any(r.coalescible for r in records):
            return records
        backlog = await self.store.pending_count(bot)
        if storm and backlog + len(records) > 1:
            # A paced send carries everything pending; a quarter of the free slots is its
            # share, so the window keeps room for the storm's later rounds.
            async with self._digest_gate:
                return await self._digest(bot, records, backlog, 0, budget=max(free // 4, 1))
        slots = await self._slots_within(bot, self.settings.coalesce_after)
        if backlog <= slots:
            return records
        async with self._digest_gate:
            return await self._digest(bot, records, backlog, slots)

    async def _fold_all_notices(
        self, bot: str, records: list[OutboxRecord]
    ) -> list[OutboxRecord]:
        """``records`` with every notice among them, and every other one queued for the bot
        (up to a round's ``digest_batch``), folded into one message per class and msgtype."""
        async with self._digest_gate:
            claimed = records + await self._claim_round(bot, notices_only=True)
        return await self._fold_notices_in(bot, claimed)

    async def _fold_notices_in(
        self, bot: str, claimed: list[OutboxRecord]
    ) -> list[OutboxRecord]:
        """``claimed`` with its notices folded into one message per class and msgtype, in
        claim order."""
        keep: list[OutboxRecord] = []
        groups: dict[tuple[int, Syntax], list[OutboxRecord]] = {}
        for record in claimed:
            if is_notice(record):
                groups.setdefault((record.priority, record.kind), []).append(record)  # type: ignore[arg-type]
            else:
                keep.append(record)
        for (priority, kind), group in groups.items():
            fold = await self._fold_notice_group(kind, group)
            if fold.obsolete:
                dropped = [r for i, r in enumerate(group) if i in fold.obsolete]
                await self.store.ack([r.id for r in dropped], now=self.clock())
                for record in dropped:
                    self.observer.dropped(bot, record, _OBSOLETE)
                logger.info(
                    "bot %r: %d queued notices dropped: their groups were acknowledged, "
                    "resolved or forgotten meanwhile", bot, len(dropped),
                )  # fmt: skip
            keep.extend(r for i, r in enumerate(group) if i in fold.kept)
            group = [
                r for i, r in enumerate(group) if i not in fold.obsolete and i not in fold.kept
            ]
            payloads = fold.payloads
            ids = [r.id for r in group]
            if not group:
                continue
            if not payloads:
                keep.extend(group)
            else:
                new = [
                    NewMessage(bot=bot, payload=p, coalescible=False, priority=Priority(priority))
                    for p in payloads
                ]
                keep.extend(await self.store.replace(ids, new, now=self.clock()))
                self.observer.digested(bot, len(group), len(new), True)
                logger.info(
                    "bot %r: %d notices folded into %d message(s)", bot, len(group), len(new)
                )
        keep.sort(key=lambda r: (r.rank, r.id))
        return keep

    async def _fold_notice_group(self, kind: Syntax, group: list[OutboxRecord]) -> NoticeFold:
        payloads = [r.payload for r in group]
        if self.fold_notices is not None:
            try:
                return await self.fold_notices(payloads, syntax=kind)
            except Exception as exc:  # a fold that fails must not hold the notices back
                logger.warning(
                    "folding %d notices failed (%s); folded line by line", len(group), exc
                )
        if len(group) == 1:
            return NoticeFold(None)
        bodies = [p[kind] for p in payloads]
        return NoticeFold(plan_digest(
            [item_content(p) for p in payloads], syntax=kind, max_messages=1,
            mentioned=[b.get("mentioned_list") or [] for b in bodies],
            mentioned_mobiles=[b.get("mentioned_mobile_list") or [] for b in bodies],
        ).payloads(kind))  # fmt: skip

    async def _digest(
        self,
        bot: str,
        records: list[OutboxRecord],
        backlog: int,
        slots: int,
        *,
        budget: int | None = None,
    ) -> list[OutboxRecord]:
        claimed = records + await self._claim_round(bot)
        if any(is_notice(r) for r in claimed):
            claimed = await self._fold_notices_in(bot, claimed)
        # Only text kinds fold; any other message (news, a card) leaves as it is.
        keep: list[OutboxRecord] = []
        groups: dict[Syntax, list[OutboxRecord]] = {}
        for record in claimed:
            if record.coalescible and record.kind in _DIGEST_KINDS:
                groups.setdefault(record.kind, []).append(record)
            else:
                keep.append(record)
        out: list[OutboxRecord] = []
        if budget is None:
            # This round folds part of the backlog; it gets that part's share of the sends
            # available in time, so the result does not depend on how much one round claims.
            budget = max((slots - len(keep)) * len(claimed) // max(backlog, len(claimed)), 1)
        for kind, group in groups.items():
            if len(group) == 1:
                keep.append(group[0])
                continue
            share = max(budget * len(group) // sum(len(g) for g in groups.values()), 1)
            payloads, form = await self._fold(bot, kind, group, share)
            new = [NewMessage(bot=bot, payload=payload, coalescible=False) for payload in payloads]
            out.extend(await self.store.replace([r.id for r in group], new, now=self.clock()))
            self.observer.digested(bot, len(group), len(new), form != "full")
            logger.info(
                "bot %r: %d messages folded into %d digest(s) (%s)", bot, len(group), len(new), form
            )
        merged = keep + out
        merged.sort(key=lambda r: (r.rank, r.id))
        return merged

    async def _fold(
        self, bot: str, kind: Syntax, group: list[OutboxRecord], share: int
    ) -> tuple[list[dict[str, Any]], str]:
        """The digest payloads of ``group`` and the form used.

        ``full`` (the messages themselves, packed) only when every message is a whole message
        written per alert (:func:`~wecom_bot.digest.packable`), each fits one digest whole, and
        packing needs no more messages than a summary; else ``summary``, written from the
        alerts the messages carry (a line for any message that carries none). A batch that
        carries no alerts is packed whole when that fits ``share`` messages, else ``compact``
        (a line per message)."""
        bodies = [r.payload[kind] for r in group]
        mentioned = [b.get("mentioned_list") or [] for b in bodies]
        mobiles = [b.get("mentioned_mobile_list") or [] for b in bodies]
        contents = [item_content(r.payload) for r in group]
        carried = [briefs_of(r.payload) for r in group]
        briefs = unique_briefs(b for b in carried if b is not None)
        running = self._tally(bot).written(briefs) if briefs else None
        plan = plan_digest(
            contents, syntax=kind, max_messages=share, mentioned=mentioned,
            mentioned_mobiles=mobiles, notifications=_notification_count(group),
            running_total=running,
        )  # fmt: skip
        if all(b is None for b in carried) or self.summarize is None:
            return plan.payloads(kind), "compact" if plan.compact else "full"
        # Messages rendered from alerts are written from the alerts; the others keep a line.
        plain = [i for i, b in enumerate(carried) if b is None]
        try:
            summary = await self.summarize(
                briefs,
                syntax=kind,
                max_messages=max(share - (1 if plain else 0), 1),
                notifications=_notification_count(
                    r for r, b in zip(group, carried, strict=True) if b is not None
                ),
                running_total=running,
            )
        except Exception as exc:  # a configured summary template must not hold a storm back
            logger.warning(
                "the summary template failed (%s); %d messages folded line by line instead",
                exc,
                len(group),
            )
            return plan.payloads(kind), "compact" if plan.compact else "full"
        rest: list[str] = []
        if plain:
            rest = plan_digest(
                [contents[i] for i in plain], syntax=kind, max_messages=1
            ).contents
        parts = summary + rest
        if kind == "markdown":
            for line in mention_lines(mentions_in(contents), CONTENT_LIMITS[kind]):
                parts = _with_line(parts, line, kind)
        whole = plan.whole and all(packable(r.payload) for r in group)
        if whole and len(plan.contents) <= len(parts):
            return plan.payloads(kind), "full"  # the messages themselves, in as few sends
        payloads = dataclasses.replace(plan, contents=parts, compact=True).payloads(kind)
        return payloads, "summary"

    async def _claim_round(self, bot: str, *, notices_only: bool = False) -> list[OutboxRecord]:
        """Up to ``digest_batch`` more records of the bot, in claim order, claimed in steps of
        ``digest_claim``; with ``notices_only``, the claim stops at the first record that is
        not a notice (given back: it waits for its own turn)."""
        wanted = self.settings.digest_batch
        step = max(self.settings.digest_claim, 1)
        more: list[OutboxRecord] = []
        while len(more) < wanted:
            ask = min(step, wanted - len(more))
            got = await self.store.claim(
                bot, limit=ask, lease_seconds=self.settings.lease_seconds, now=self.clock()
            )
            if notices_only and not all(is_notice(r) for r in got):
                others = [r for r in got if not is_notice(r)]
                await self.store.unclaim([r.id for r in others], now=self.clock())
                more += [r for r in got if is_notice(r)]
                break
            more += got
            if len(got) < ask:
                break
        return more

    async def _slots_within(self, bot: str, seconds: float) -> int:
        """How many sends the bot's keys can make within ``seconds`` from now."""
        cap = self.settings.digest_batch
        total = 0
        for key in self.targets[bot].keys:
            total += await self.limiter.capacity(key, seconds, cap=cap)
        return total

    async def _acquire_key(self, bot: str) -> int | None:
        """Take a free send slot on one of the bot's keys and return the key's index;
        ``None`` when none is free now (nothing is taken: the caller does not wait holding
        leases, it gives its records back)."""
        keys = self.targets[bot].keys
        start = self._next_key[bot]
        for offset in range(len(keys)):
            index = (start + offset) % len(keys)
            if await self.limiter.try_acquire(keys[index]) == 0.0:
                self._next_key[bot] = (index + 1) % len(keys)
                return index
        return None

    async def _deliver(self, bot: str, record: OutboxRecord) -> bool:
        """Send ``record`` and settle it (ack, retry later or dead letter); ``False`` when no
        key had a free slot, the record untouched."""
        payload = detach(record.payload)
        if _may_repeat(record):
            payload = marked_repeat(payload)
        try:
            message = parse_message(payload)
        except MessageValidationError as exc:
            await self._dead(bot, record, f"invalid message: {exc}")
            return True
        index = await self._acquire_key(bot)
        if index is None:
            return False
        sender = self._bots[bot][index]
        started = time.monotonic()
        try:
            await sender.send(message)
        except DeliveryError as error:
            # No answer: WeCom may still process it, up to about another timeout from now.
            late = self.targets[bot].timeout if may_have_been_processed(error) else 0.0
            await self._answered(self.targets[bot].keys[index], started, late)
            await self._failed(bot, record, error, self.targets[bot].keys[index])
            return True
        await self._answered(self.targets[bot].keys[index], started)
        self._last_send[bot] = self.clock()
        await self.store.ack([record.id], now=self.clock())
        carried = briefs_of(record.payload)
        if carried:
            self._tally(bot).delivered(carried)
        self.observer.sent(bot, record, self.clock() - record.created_at)
        key = self.targets[bot].keys[index]
        logger.info(
            "bot %r: message %d delivered (%s, attempt %d, key %s)%s",
            bot, record.id, record.kind, record.attempts + 1, mask_key(key),
            _for_notifications(record),
            extra=_event("delivered", bot, record, key=mask_key(key)),
        )  # fmt: skip
        return True

    async def _answered(self, key: str, started: float, later: float = 0.0) -> None:
        """Tell the limiter when the send that began at ``started`` (monotonic) ended."""
        try:
            await self.limiter.answered(key, time.monotonic() - started, later=later)
        except StoreUnavailableError as exc:  # the send's outcome must still be stored
            logger.warning("could not move a slow send's mark in the rate window: %s", exc)

    async def _failed(self, bot: str, record: OutboxRecord, error: DeliveryError, key: str) -> None:
        retry_after = None
        if isinstance(error, WeComAPIError) and error.errcode == ERRCODE_RATE_LIMITED:
            retry_after = await self.limiter.record_rejection(key)
        delay = self.retry.decide(record.attempts + 1, error, retry_after=retry_after)
        reason = _describe(error, key)
        if may_have_been_processed(error) or _may_repeat(record):
            # Kept from attempt to attempt: every later send of it is marked as a repeat.
            reason = f"{_MAY_HAVE_ARRIVED} {reason}"  # first: a long error is cut at its end
        if delay is None:
            await self._dead(bot, record, reason)
            return
        now = self.clock()
        await self.store.release(record.id, next_attempt_at=now + delay, error=reason, now=now)
        self.observer.retried(bot, record, error, delay)
        logger.info(
            "bot %r: message %d attempt %d failed, retry in %.2fs: %s",
            bot, record.id, record.attempts + 1, delay, reason,
            extra=_event("retry", bot, record, reason=reason, retry_in=round(delay, 3)),
        )  # fmt: skip

    async def _dead(self, bot: str, record: OutboxRecord, reason: str) -> None:
        await self.store.dead(record.id, reason, now=self.clock())
        self.observer.dead_lettered(bot, record, reason)
        logger.warning(
            "bot %r: message %d dead-lettered after %d attempt(s): %s%s",
            bot, record.id, record.attempts + 1, reason, _for_notifications(record),
            extra=_event("dead_lettered", bot, record, reason=reason),
        )  # fmt: skip


_OBSOLETE = "not sent: its group was acknowledged, resolved or forgotten before its turn came"

_STORM_GRAPH = "not sent: a storm began before its turn came (graphs go only at rest)"

_MAY_HAVE_ARRIVED = "(no answer came: it may have arrived)"
"""Put before the error of a send that may have been processed (:mod:`wecom_bot.repeats`)."""


def _may_repeat(record: OutboxRecord) -> bool:
    """Whether an earlier attempt of ``record`` got no answer (so may have reached the group).

    A lease that ran out does not count: its worker died holding a batch of which at most one
    was being sent, and marking the whole batch would call new messages repeats."""
    return _MAY_HAVE_ARRIVED in (record.last_error or "")


def _notification_count(records: Iterable[OutboxRecord]) -> int:
    """How many notifications ``records`` carry: the parts of one split notification count
    once, a digest counts every notification it folded (a record without ids counts one)."""
    ids: set[str] = set()
    anonymous = 0
    for record in records:
        if record.notification_ids:
            ids.update(record.notification_ids)
        else:
            anonymous += 1
    return len(ids) + anonymous


def _with_line(parts: list[str], line: str, kind: Syntax) -> list[str]:
    """``line`` appended to the first part where it fits, else as a part of its own."""
    limit = CONTENT_LIMITS[kind]
    if utf8_len(parts[0]) + 2 + utf8_len(line) <= limit:
        return [parts[0] + "\n\n" + line, *parts[1:]]
    return [*parts, line]


def _describe(error: DeliveryError, key: str) -> str:
    """A one-line reason for history and dead letters, naming the key masked (``693a…5aaa``)."""
    text = " ".join(redact(str(error), key).split())
    return f"{text} [key {mask_key(key)}]"


def _for_notifications(record: OutboxRecord, shown: int = 5) -> str:
    ids = record.notification_ids
    if not ids:
        return ""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f" for notification {', '.join(ids[:shown])}{more}"


def _event(name: str, bot: str, record: OutboxRecord, **facts: Any) -> dict[str, Any]:
    """The ``extra`` fields of a delivery log line (keys of the JSON log format)."""
    return {
        "event": name,
        "bot": bot,
        "message_id": record.id,
        "attempt": record.attempts + 1,
        "notification_ids": list(record.notification_ids),
        **facts,
    }


def local_limiter(rate: str | None = None) -> LocalLimiter:
    """A :class:`LocalLimiter` for one process, at ``rate`` (default 20/60s)."""
    return LocalLimiter(SlidingWindowLimiter(rate))


__all__: Sequence[str] = [
    "BotTarget",
    "DispatchObserver",
    "Dispatcher",
    "DispatcherSettings",
    "LocalLimiter",
    "NoticeFold",
    "NoticeFolder",
    "SendLimiter",
    "Summarizer",
    "local_limiter",
]
