"""Escalation and reminders: scheduling them while an alert group fires unacknowledged.

A route may say::

    escalate: [{after: 15m, mention: [lead]}, {after: 30m, bots: [managers]}]
    remind_every: 1h

:func:`track` runs for every processed notification, before its messages are stored (so a
notification processed twice after a crash changes nothing the second time). A firing one
opens its alert group in the store with a timer per step and a reminder timer, for each route
it took that escalates; a group already open keeps its timers. A resolved one forgets the
group and its timers. Acknowledging or silencing the group (an ``/act/`` page or the console,
:mod:`~wecom_bot.gateway.actions.acting`) cancels them.

:class:`Escalator` runs in every gateway process: it claims due timers from the store (one
holder at a time, whatever the number of processes), writes the short message
(:mod:`~wecom_bot.gateway.actions.notices`) and fires the timer, which stores the messages
in the outbox and removes the timer (or moves a reminder one period on) in one step. The
dispatcher then delivers them like any message: rate limit, retries, dead letters. Each
firing is one history entry (source ``escalation``).

Due times are wall-clock times read from the gateway's
:class:`~wecom_bot.clock.SteadyClock`: when the system clock steps forward, the timers of the
coming hour do not all come due at once (they come due as the time they wait for passes);
when it steps back, due timers stay due.

Heartbeats (:mod:`~wecom_bot.gateway.heartbeats`) use the same timers: a standing group's
timer firing is a heartbeat's miss, written by :func:`~wecom_bot.gateway.heartbeats.switch.
fire`; this loop also arms the configured heartbeats at start and after a reload.

Timers keep what their route said when the group opened (mentions, bots); a reload changes
groups opened after it. At the time a timer fires, a route muted by its time intervals sends
nothing: an escalation step is then dropped, a reminder waits for its next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import MessageValidationError
from ...ratelimit import parse_rate
from ...store import (
    NewMessage,
    NewTimer,
    Priority,
    StoreUnavailableError,
    TimerLostError,
    TimerRecord,
    is_standing,
)
from ...store.history import HistoryEntry, HistoryEvent
from ..background import BackgroundLoop
from ..config import GatewayConfig, RouteConfig
from ..heartbeats import switch as heartbeats
from ..model import Notification
from ..recording import queued_parts
from ..routing import Mentions, mention_list
from ..runtime import Runtime
from ..templates.renderer import TemplateError
from .groups import GroupInfo
from .notices import NoticeBrief, NoticeKind, attach_notices, notice, notice_title

__all__ = ["Escalator", "route_timers", "track"]

logger = logging.getLogger("wecom_bot.gateway.escalation")

GROUP_PURGE_EVERY = 60.0
"""Seconds between purges of stale groups and of groups whose silence ended."""

MAX_NOTICE_SLOT = 5.0
"""The longest slot (s), whatever the rate window: an escalation never waits longer to fold."""

HEARTBEAT_OBSERVE_EVERY = 5.0
"""Seconds between reads of the heartbeats' state for the gauges (another instance may have
received the beat or fired the miss)."""

NOTICE_SLOTS = 12
"""Notices fired within one slot, a twelfth of the rate window (5 s of WeCom's 60 s), become
due together at its end, so that the notices of groups that fire together are folded into one
message (see :mod:`wecom_bot.dispatcher`)."""


def notice_due(now: float, window: float) -> float:
    """When a notice fired at ``now`` becomes due: the end of its slot (a twelfth of the rate
    ``window``, 5 s at most)."""
    slot = min(window / NOTICE_SLOTS, MAX_NOTICE_SLOT)
    return (math.floor(now / slot) + 1) * slot


def _route_configs(config: GatewayConfig) -> dict[str, RouteConfig]:
    return {r.name: r for r in [*config.routes, config.effective_default_route()]}


def _mentions_json(mentions: Mentions) -> dict[str, list[str]]:
    return {"users": list(mentions.userids), "mobiles": list(mentions.mobiles)}


def route_timers(route: RouteConfig, now: float) -> list[NewTimer]:
    """The timers a route schedules for a group it sent at ``now``: one per escalation step,
    and a reminder."""
    timers: list[NewTimer] = []
    for i, step in enumerate(route.escalate):
        mentions = mention_list(step.mention, f"routes[{route.name}].escalate[{i}].mention")
        payload = {
            "kind": "escalate",
            "route": route.name,
            "step": i,
            "after": step.after,
            "bots": list(dict.fromkeys([*route.bots, *step.bots])),
            "mention": _mentions_json(mentions),
        }
        timers.append(NewTimer(f"escalate:{i}:{route.name}", now + step.after, payload))
    if route.remind_every is not None:
        payload = {
            "kind": "remind",
            "route": route.name,
            "every": route.remind_every,
            "bots": list(route.bots),
        }
        timers.append(NewTimer(f"remind:0:{route.name}", now + route.remind_every, payload))
    return timers


async def track(
    runtime: Runtime,
    notification: Notification,
    routes: Sequence[str],
    *,
    notification_id: str,
    now: float,
) -> None:
    """Open (with its timers) or forget the alert group of a processed notification.

    Args:
        runtime: the running gateway.
        notification: the notification.
        routes: the routes it took.
        notification_id: its id in the history.
        now: when it was received (timers count from then).

    Raises:
        StoreUnavailableError: nothing was changed (the caller leaves the notification to be
            processed again).
    """
    info = GroupInfo.of(notification, routes, notification_id=notification_id, now=now)
    if info is None:
        return
    store = runtime.store_required
    if notification.status == "resolved":
        await store.resolve_group(info.id)
        return
    if not routes:
        return
    configs = _route_configs(runtime.config)
    timers = [
        timer
        for name in dict.fromkeys(routes)
        if name in configs
        for timer in route_timers(configs[name], now)
    ]
    if await store.open_group(info.id, info.to_json(), timers, now=now) and timers:
        logger.info("group %s (%s): %d timers scheduled", info.id, info.name, len(timers))


def _next_period(due_at: float, every: float, now: float) -> float:
    """The first time after ``now`` on the reminder's beat (periods missed while no gateway ran
    are skipped, not sent in a burst)."""
    return due_at + every * (math.floor(max(now - due_at, 0.0) / every) + 1)


class Escalator(BackgroundLoop):
    """Fires due escalation and reminder timers (one per gateway process).

    Args:
        runtime: returns the current runtime (a reload swaps it).
        clock: wall-clock time (the gateway's :class:`~wecom_bot.clock.SteadyClock`).
        poll: the longest wait between two looks at the store (timers another process
            scheduled, leases that ran out).
        batch: timers claimed at a time.
    """

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        *,
        clock: Callable[[], float],
        poll: float = 1.0,
        batch: int = 16,
    ) -> None:
        super().__init__("escalator")
        self._runtime = runtime
        self.clock = clock
        self.poll = poll
        self.batch = batch
        self._purged_at = float("-inf")
        self._armed: Runtime | None = None
        self._observed_at = float("-inf")
        self.fired = 0
        """Timers this process fired since it started."""

    async def _loop(self) -> None:
        failing = ""
        while not self._stopping.is_set():
            wait = self.poll
            try:
                if await self.run_once():
                    continue
                wait = await self._idle_wait()
                failing = ""
            except StoreUnavailableError as exc:
                if str(exc) != failing:
                    logger.error("escalation: store unavailable (%s); retrying shortly", exc)
                    failing = str(exc)
            except Exception:  # the loop must outlive any one failure; the store keeps the timers
                logger.exception("escalation: firing timers failed; retrying shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def _idle_wait(self) -> float:
        nxt = await self._runtime().store_required.next_timer_at()
        if nxt is None:
            return self.poll
        return min(max(nxt - self.clock(), 0.01), self.poll)

    async def run_once(self) -> int:
        """Claim due timers and fire them; returns how many were claimed."""
        runtime = self._runtime()
        store = runtime.store_required
        now = self.clock()
        if self._armed is not runtime:  # at start and after a reload: new heartbeats wait
            await heartbeats.arm_all(runtime, now=now)
            self._armed = runtime
        if runtime.config.heartbeats and not 0 <= now - self._observed_at < HEARTBEAT_OBSERVE_EVERY:
            self._observed_at = now  # other instances' beats and misses, for the gauges
            heartbeats.observe(runtime, await heartbeats.states(runtime))
        # Also when the wall clock stepped back: the bound on open groups must not wait for it.
        if not 0 <= now - self._purged_at < GROUP_PURGE_EVERY:
            self._purged_at = now
            purged = await store.purge_groups(
                before=now - runtime.config.history_retention, now=now
            )
            if purged:
                logger.info("escalation: forgot %d stale or unsilenced groups", purged)
            cap = runtime.config.max_open_groups
            trimmed = await store.trim_groups(keep=cap)
            if trimmed:
                logger.warning(
                    "escalation: more than max_open_groups (%d) unacknowledged alert groups "
                    "were open; the %d no notification mentioned for longest were forgotten: "
                    "they neither escalate nor remind until their alerts notify again "
                    "(acknowledge or silence groups, or raise max_open_groups)", cap, trimmed,
                )  # fmt: skip
                if runtime.metrics is not None:
                    runtime.metrics.groups_trimmed.inc(trimmed)
        timers = await store.claim_timers(
            limit=self.batch, lease_seconds=runtime.config.lease, now=now
        )
        for timer in timers:
            if self._stopping.is_set():
                break  # the lease runs out and any process fires it then
            await self.fire(runtime, timer)
        return len(timers)

    async def fire(self, runtime: Runtime, timer: TimerRecord) -> None:
        """Fire one claimed timer: its messages into the outbox and the timer gone (or moved
        on), in one step; then the history and the dispatcher hear of it."""
        store = runtime.store_required
        now = self.clock()
        if is_standing(timer.group_id):
            if await heartbeats.fire(runtime, timer, now=now):
                self.fired += 1
            return
        payload = timer.payload
        kind: NoticeKind = "remind" if payload.get("kind") == "remind" else "escalate"
        next_due = None
        if kind == "remind":
            next_due = _next_period(timer.due_at, float(payload.get("every", 3600.0)), now)
        group = await store.get_group(timer.group_id)
        info = GroupInfo.from_json(group.info) if group is not None else None
        route = str(payload.get("route", ""))
        muting = runtime.muting(route, now) if route in runtime.schedules else None
        entry_id = f"{kind}-{int(now * 1000):x}-{secrets.token_hex(3)}"
        planned: list[tuple[str, dict[str, Any]]] = []
        if info is not None and muting is None:
            planned = self._payloads(runtime, kind, info, payload, now, entry_id)
        priority = Priority.REMINDER if kind == "remind" else Priority.ESCALATION
        due = notice_due(now, parse_rate(runtime.config.rate).window)
        messages = [
            NewMessage(
                bot=bot, payload=p, notification_id=entry_id, coalescible=False,
                priority=priority, not_before=due,
            )  # fmt: skip
            for bot, p in planned
        ]  # not mixed into alert digests: the dispatcher folds notices of many groups apart
        try:
            ids = await store.fire_timer(timer, messages, next_due_at=next_due, now=now)
        except TimerLostError:
            logger.info("escalation: %s of group %s was cancelled meanwhile", timer.key,
                        timer.group_id)  # fmt: skip
            return
        self.fired += 1
        if info is None:
            return
        logger.info(
            "escalation: %s for group %s (%s): %d messages%s", kind, timer.group_id, info.name,
            len(ids), f", route muted ({muting.reason})" if muting else "",
        )  # fmt: skip
        if runtime.history is not None:
            entry, events = self._history(
                entry_id, kind, info, timer, planned, ids, now, muting.reason if muting else None
            )
            await runtime.history.record(entry, events)
        runtime.notify({bot for bot, _ in planned})

    @staticmethod
    def _payloads(
        runtime: Runtime,
        kind: NoticeKind,
        info: GroupInfo,
        payload: dict[str, Any],
        now: float,
        fire: str,
    ) -> list[tuple[str, dict[str, Any]]]:
        """(bot, API payload) for every bot the timer names that is still configured."""
        try:
            route = runtime.router.route(str(payload.get("route", "")))
        except LookupError:
            route = None
        mention = payload.get("mention") or {}
        mentions = Mentions(tuple(mention.get("users", ())), tuple(mention.get("mobiles", ())))
        links = None
        if runtime.actions is not None:
            links = runtime.actions.for_group(dict(info.labels), info.external_url)
        brief = NoticeBrief.of(kind, info, links, mentions, fire)
        out: list[tuple[str, dict[str, Any]]] = []
        rendered: dict[str, list[dict[str, Any]]] = {}
        for bot in payload.get("bots", ()):
            if bot not in runtime.config.bots:
                logger.warning("escalation: bot %r is no longer configured; skipped", bot)
                continue
            msgtype = runtime.msgtype_for(route, bot) if route else runtime.config.bots[bot].msgtype
            if msgtype not in rendered:
                body = notice(kind, info, now=now, syntax=msgtype, links=links)
                try:
                    report = runtime.renderer.compose(
                        kind, body, msgtype=msgtype, mentions=mentions
                    )
                except (TemplateError, MessageValidationError) as exc:
                    logger.error("escalation: cannot write the %s message: %s", kind, exc)
                    return []
                rendered[msgtype] = [attach_notices(p, [brief]) for p in report.payloads]
            out += [(bot, p) for p in rendered[msgtype]]
        return out

    @staticmethod
    def _history(
        entry_id: str,
        kind: NoticeKind,
        info: GroupInfo,
        timer: TimerRecord,
        planned: list[tuple[str, dict[str, Any]]],
        ids: list[int],
        now: float,
        muted: str | None,
    ) -> tuple[HistoryEntry, list[HistoryEvent]]:
        route = str(timer.payload.get("route", ""))
        messages, events = queued_parts(entry_id, route, planned, ids, now)
        detail: dict[str, Any] = {
            "group": timer.group_id,
            "timer": timer.key,
            "kind": kind,
            "step": timer.payload.get("step"),
            "mention": timer.payload.get("mention"),
            "due_at": timer.due_at,
            "fired": timer.fired + 1,
        }
        if muted:
            detail["muted"] = muted
        entry = HistoryEntry(
            id=entry_id, received_at=now, updated_at=now, source="escalation", status="firing",
            state="pending" if planned else ("muted" if muted else "skipped"),
            title=notice_title(kind, info, now=now), labels=info.labels, routes=(route,),
            bots=tuple(dict.fromkeys(bot for bot, _ in planned)), alerts=info.alerts,
            messages=tuple(messages), detail=detail,
        )  # fmt: skip
        return entry, events
