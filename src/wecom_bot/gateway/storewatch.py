"""The store watch: notice, every few seconds, when the outbox can no longer keep what it holds.

Three faults answer every call happily and lose alerts silently: the SQLite file deleted or
replaced under the open connection, and a Redis that came back without its data. Each check
asks the store (:meth:`~wecom_bot.store.base.Outbox.check_identity` with ``repair``): a deleted
file is written back and reopened (nothing lost), a replaced one is saved beside its path and
the store refuses everything after, a Redis that lost its data gets a new epoch. Each incident
is logged once at ERROR and counted (``wecom_bot_store_incidents_total{kind}``); ``/readyz``
asks the store itself between checks, so it is 503 from the moment of the fault until the
repair, and for good when there is none.

The fourth is delivery that does not move: ``wecom_bot_oldest_due_seconds{bot}`` is how long
the oldest message due for a bot has waited to be claimed. A bot is *stuck* when that is over
:data:`STUCK_AFTER` and this gateway has sent nothing for it (no delivery, retry or dead letter)
for as long, timed on the monotonic clock: a storm paced at 20 a minute, or reminders waiting
behind alerts, move and are not stuck; a wall clock stepped forward makes the age jump but not
the stillness. A stuck bot makes ``/readyz`` 503 and logs one ERROR until it moves again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from ..store import Outbox, StoreUnavailableError
from .background import BackgroundLoop
from .metrics import GatewayMetrics

__all__ = ["CHECK_EVERY", "STUCK_AFTER", "StoreWatch"]

logger = logging.getLogger("wecom_bot.gateway")

CHECK_EVERY = 2.0
"""Seconds between two checks of the store."""

STUCK_AFTER = 600.0
"""Seconds the oldest due message of a bot may wait, with no send for that bot meanwhile,
before delivery counts as stuck (ten minutes: far beyond the pacing of any storm, which sends
20 messages a minute per key and folds the rest into summaries)."""

_ACTIVITY = ("wecom_bot_messages_sent_total", "wecom_bot_messages_retried_total",
             "wecom_bot_messages_dead_lettered_total")  # fmt: skip


class StoreWatch(BackgroundLoop):
    """Checks the store's identity and the age of due work every :attr:`check_every` seconds.

    Args:
        store: the outbox.
        metrics: where the gauges and the incident counter live.
        bots: the names of the configured bots (read at each check: reloads change them).
        clock: wall-clock time, the store's time base.
        monotonic: the clock of stillness (a test seam).
    """

    def __init__(
        self,
        store: Outbox,
        metrics: GatewayMetrics,
        bots: Callable[[], Iterable[str]],
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("store-watch")
        self.store = store
        self.metrics = metrics
        self.bots = bots
        self.clock = clock
        self.monotonic = monotonic
        self.check_every = CHECK_EVERY
        self.stuck_after = STUCK_AFTER
        self.stuck: dict[str, str] = {}
        """Why each stuck bot is stuck (readiness)."""
        self.incident: str | None = None
        """The last incident reported (logged once)."""
        self._moved: dict[str, tuple[float, float]] = {}  # bot -> (activity, when it changed)

    async def prime(self) -> None:
        """At start: fix the store's identity, and warn when its backend does not persist."""
        try:
            await self.store.check_identity()
            warning = await self.store.durability_warning()
        except StoreUnavailableError as exc:
            logger.error("store watch: cannot check the store at start: %s", exc)
            return
        if warning is not None:
            logger.warning("%s", warning)

    async def check_once(self) -> None:
        """One check: the store's identity, then the age of every bot's due work."""
        problem = await self.store.check_identity(repair=True)
        if problem is None:
            self.incident = None
        elif problem != self.incident:
            self.incident = problem
            self.metrics.store_incidents.labels(_kind(problem)).inc()
            logger.error("%s", problem, extra={"event": "store_incident", "kind": _kind(problem)})
        await self._check_delivery()

    async def _check_delivery(self) -> None:
        now, still = self.clock(), self.monotonic()
        bots = sorted(set(self.bots()))
        activities = self._activity()
        for bot in bots:
            due = await self.store.next_due_at(bot)
            age = 0.0 if due is None else max(0.0, now - due)
            self.metrics.oldest_due.labels(bot).set(age)
            activity = activities.get(bot, 0.0)
            seen, since = self._moved.get(bot, (-1.0, still))
            if activity != seen:
                since = still
            self._moved[bot] = (activity, since)
            quiet = still - since
            if age > self.stuck_after and quiet > self.stuck_after:
                if bot not in self.stuck:
                    self.stuck[bot] = (
                        f"delivery of bot {bot!r} is stuck: its oldest due message has waited "
                        f"{age:.0f} s and nothing was sent for it for {quiet:.0f} s"
                    )
                    logger.error(
                        "%s; look at the log above for why (a key blocked, WeCom or the "
                        "network down, a dispatcher wedged), restart the gateway if nothing says",
                        self.stuck[bot],
                        extra={"event": "delivery_stuck", "bot": bot},
                    )
            elif bot in self.stuck:
                del self.stuck[bot]
                logger.info("delivery of bot %r moves again", bot)
        for gone in set(self._moved) - set(bots):
            del self._moved[gone]
            self.stuck.pop(gone, None)

    def _activity(self) -> dict[str, float]:
        """Sends, retries and dead letters so far, per bot (from the metrics, one pass)."""
        totals: dict[str, float] = {}
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name in _ACTIVITY:
                    bot = sample.labels.get("bot", "")
                    totals[bot] = totals.get(bot, 0.0) + sample.value
        return totals

    async def _loop(self) -> None:
        failing = ""
        while not self._stopping.is_set():
            try:
                await self.check_once()
                failing = ""
            except StoreUnavailableError as exc:
                if str(exc) != failing:  # readiness says so too; the log once per cause
                    logger.warning("store watch: %s", exc)
                    failing = str(exc)
            except Exception as exc:  # the watch must outlive any one failure
                if repr(exc) != failing:  # once per cause, not every few seconds
                    logger.exception("store watch: the check failed; trying again")
                    failing = repr(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.check_every)
            self._wake.clear()


def _kind(problem: str) -> str:
    if problem.startswith("Redis"):
        return "redis_emptied"
    return "file_deleted" if "was deleted" in problem else "file_replaced"
