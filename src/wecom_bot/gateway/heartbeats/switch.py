"""The dead man's switch: a heartbeat's state in the store, its miss and its recovery.

Each heartbeat is a standing group ``heartbeat:<name>`` in the outbox
(:data:`~wecom_bot.store.STANDING_PREFIX`) with one timer, ``miss``, due ``expect_every +
grace`` after the last beat: the escalation timers' machinery, so the same guarantees hold.

* A beat (:func:`beat`) arms the group again in one atomic step
  (:meth:`~wecom_bot.store.Outbox.arm_group`): the last-seen time and where it came from go into
  the group's info, the timer moves. A gateway that dies between the beat and the answer leaves
  the sender to retry, and arming twice changes nothing.
* The timer firing is the miss: the escalator (:mod:`~wecom_bot.gateway.actions.escalation`)
  claims it with a lease like any timer, and :func:`fire` stores the miss message and removes
  the timer in one step, only while it holds it. One instance fires it, once; one that dies
  holding it leaves it to the next claim after the lease; a beat arriving meanwhile takes the
  timer from under it, and no message is stored.
* A group open with no timer is missing. The next beat arms it again and, in the same step,
  stores the recovery message: of several instances receiving beats at once, one does.
* At start (and after a reload) every configured heartbeat not yet in the store is armed
  from now (:func:`arm_all`), so a heartbeat configured but never received is reported too.

Times are the gateway's :class:`~wecom_bot.clock.SteadyClock`: a step of the wall clock moves
neither the last-seen time nor the time the timer is compared with, so it cannot fire a miss
early (a step forward) or hold one back (a step back).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ...errors import MessageValidationError
from ...store import Armed, GroupRecord, NewMessage, NewTimer, TimerLostError, TimerRecord
from ...store.history import HistoryEntry
from ..config import HeartbeatConfig
from ..model import Notification
from ..recording import queued_parts
from ..runtime import Runtime
from ..templates.renderer import TemplateError
from .match import Heartbeat
from .messages import Moment, miss_text, recovery_text, source_of

__all__ = ["MISS_KEY", "HeartbeatState", "arm_all", "beat", "fire", "observe", "states"]

logger = logging.getLogger("wecom_bot.gateway.heartbeats")

MISS_KEY = "miss"
"""The key of a heartbeat's one timer."""

Kind = Literal["miss", "recovery"]


def _timer(config: HeartbeatConfig, due: float) -> NewTimer:
    return NewTimer(MISS_KEY, due, {"kind": "heartbeat", "name": config.name})


def _info(config: HeartbeatConfig, last_seen: float | None, armed_at: float, source: str,
          due: float) -> dict[str, Any]:  # fmt: skip
    return {
        "heartbeat": config.name,
        "last_seen": last_seen,
        "armed_at": armed_at,
        "source": source,
        "expected_by": due,
    }


def _float(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


@dataclass(frozen=True)
class HeartbeatState:
    """What the store says about one configured heartbeat (the console, the metrics).

    Attributes:
        name: its name.
        title: what the messages call it.
        state: ``ok`` (beating), ``waiting`` (armed, never beat yet), ``missing`` (its miss
            message went out, it has not beaten since) or ``unknown`` (not in the store yet).
        last_seen: its last beat (Unix seconds), if any.
        source: where that came from (raw).
        expected_by: when the next beat is due at the latest (for ``missing``: when it was).
    """

    name: str
    title: str
    state: str
    last_seen: float | None
    source: str
    expected_by: float | None

    def to_json(self) -> dict[str, Any]:
        """For the console's API."""
        return asdict(self)

    @classmethod
    def of(cls, config: HeartbeatConfig, group: GroupRecord | None) -> HeartbeatState:
        """The state of ``config`` from its standing group (``None``: not stored yet)."""
        if group is None:
            return cls(config.name, config.display, "unknown", None, "", None)
        info = group.info
        last = info.get("last_seen")
        last_seen = float(last) if isinstance(last, int | float) else None
        timer = group.next_timer
        if timer is None:
            state = "missing"
            expected = _float(info.get("expected_by"), group.updated_at)
        else:
            state = "ok" if last_seen is not None else "waiting"
            expected = timer.due_at
        return cls(config.name, config.display, state, last_seen, str(info.get("source", "")),
                   expected)  # fmt: skip


async def states(runtime: Runtime) -> list[HeartbeatState]:
    """The state of every configured heartbeat, in configuration order (a read per heartbeat:
    there are few).

    Raises:
        StoreUnavailableError: the store did not answer.
    """
    store = runtime.store_required
    out = []
    for config in runtime.config.heartbeats:
        out.append(HeartbeatState.of(config, await store.get_group(config.group_id)))
    return out


def observe(runtime: Runtime, found: Sequence[HeartbeatState]) -> None:
    """Set the heartbeat gauges from ``found``."""
    metrics = runtime.metrics
    if metrics is None:
        return
    for state in found:
        metrics.heartbeat_last_seen.labels(state.name).set(state.last_seen or 0.0)
        metrics.heartbeat_missing.labels(state.name).set(1.0 if state.state == "missing" else 0.0)


async def arm_all(runtime: Runtime, *, now: float) -> int:
    """Arm, from ``now``, every configured heartbeat the store does not hold yet; returns how
    many were new.

    Raises:
        StoreUnavailableError: some were not armed (arming again changes nothing).
    """
    store = runtime.store_required
    armed = 0
    for config in runtime.config.heartbeats:
        due = now + config.expect_every + config.grace
        info = _info(config, None, now, "", due)
        state, _ = await store.arm_group(
            config.group_id, info, [_timer(config, due)], only_new=True, now=now
        )
        if state is Armed.OPENED:
            armed += 1
            logger.info("heartbeat %s: waiting for its first beat by %.0f", config.name, due)
    return armed


async def beat(
    runtime: Runtime, heartbeat: Heartbeat, notification: Notification, *, now: float
) -> Armed:
    """A beat of ``heartbeat`` arrived at ``now``: arm it again; if it was missing, store the
    recovery message in the same step.

    Raises:
        StoreUnavailableError: nothing was changed (the sender is answered 503 and retries).
    """
    config = heartbeat.config
    store = runtime.store_required
    source = source_of(notification)
    due = now + config.expect_every + config.grace
    before = await store.get_group(config.group_id)
    info = before.info if before is not None else {}
    moment = _moment(info, now, source, _float(info.get("expected_by"), now))
    # Written every time, used only when the store finds the group missing: whether it is
    # is decided inside the one atomic step, not on the read above.
    entry_id, planned, messages = _messages(runtime, config, "recovery", moment)
    armed_at = moment.armed_at if before is not None else now
    state, ids = await store.arm_group(
        config.group_id, _info(config, now, armed_at, source, due), [_timer(config, due)],
        resumed=messages, now=now,
    )  # fmt: skip
    metrics = runtime.metrics
    if metrics is not None:
        metrics.heartbeat_last_seen.labels(config.name).set(now)
        metrics.heartbeat_missing.labels(config.name).set(0.0)
    if state is Armed.RESUMED:
        logger.warning(
            "heartbeat %s: back after %.0fs; %d recovery message(s) queued", config.name,
            now - (moment.last_seen or moment.armed_at), len(ids),
            extra={"event": "heartbeat_recovered", "heartbeat": config.name},
        )  # fmt: skip
        await _record(runtime, entry_id, "recovery", config, planned, ids, now)
        runtime.notify({bot for bot, _ in planned})
    return state


async def fire(runtime: Runtime, timer: TimerRecord, *, now: float) -> bool:
    """Fire a claimed ``miss`` timer: store the miss message and remove the timer in one step.

    Returns:
        Whether it fired (``False``: a beat or another instance took it meanwhile).

    Raises:
        StoreUnavailableError: nothing was changed (the lease runs out, it is claimed again).
    """
    store = runtime.store_required
    name = str(timer.payload.get("name", ""))
    config = next((c for c in runtime.config.heartbeats if c.name == name), None)
    if config is None:  # no longer configured: forget it
        try:
            await store.fire_timer(timer, [], now=now)
        except TimerLostError:
            return False
        await store.resolve_group(timer.group_id)
        logger.info("heartbeat %s is no longer configured; forgotten", name)
        return True
    group = await store.get_group(timer.group_id)
    info = group.info if group is not None else {}
    moment = _moment(info, now, str(info.get("source", "")), timer.due_at)
    entry_id, planned, messages = _messages(runtime, config, "miss", moment)
    try:
        ids = await store.fire_timer(timer, messages, now=now)
    except TimerLostError:
        logger.info("heartbeat %s: it beat (or another instance fired) meanwhile", name)
        return False
    if runtime.metrics is not None:
        runtime.metrics.heartbeat_missing.labels(name).set(1.0)
    logger.error(
        "heartbeat %s: no beat since %s (due by %.0f); %d miss message(s) queued", name,
        "it was configured" if moment.last_seen is None else f"{moment.last_seen:.0f}",
        timer.due_at, len(ids), extra={"event": "heartbeat_missing", "heartbeat": name},
    )  # fmt: skip
    await _record(runtime, entry_id, "miss", config, planned, ids, now)
    runtime.notify({bot for bot, _ in planned})
    return True


def _moment(info: dict[str, Any], now: float, source: str, expected_by: float) -> Moment:
    """The moment of a miss or a recovery at ``now``, from the standing group's ``info``."""
    last = info.get("last_seen")
    return Moment(
        now=now,
        last_seen=float(last) if isinstance(last, int | float) else None,
        armed_at=_float(info.get("armed_at"), now),
        source=source,
        expected_by=expected_by,
    )


def _messages(
    runtime: Runtime, config: HeartbeatConfig, kind: Kind, moment: Moment
) -> tuple[str, list[tuple[str, dict[str, Any]]], list[NewMessage]]:
    """A new history entry id, the (bot, payload) parts of the ``kind`` message and the
    outbox messages to store for them."""
    entry_id = f"heartbeat-{int(moment.now * 1000):x}-{secrets.token_hex(3)}"
    planned = _payloads(runtime, config, kind, moment)
    messages = [
        NewMessage(bot=bot, payload=p, notification_id=entry_id, coalescible=False)
        for bot, p in planned
    ]
    return entry_id, planned, messages


def _payloads(
    runtime: Runtime, config: HeartbeatConfig, kind: Kind, moment: Moment
) -> list[tuple[str, dict[str, Any]]]:
    """(bot, API payload) for every bot of the heartbeat that is configured."""
    out: list[tuple[str, dict[str, Any]]] = []
    rendered: dict[str, list[dict[str, Any]]] = {}
    write = miss_text if kind == "miss" else recovery_text
    for bot in config.bots:
        bot_config = runtime.config.bots.get(bot)
        if bot_config is None:
            continue
        msgtype = bot_config.msgtype
        if msgtype not in rendered:
            body = write(config, moment, timezone=runtime.config.timezone, syntax=msgtype)
            try:
                report = runtime.renderer.compose(f"heartbeat-{kind}", body, msgtype=msgtype)
            except (TemplateError, MessageValidationError) as exc:
                logger.error("heartbeat %s: cannot write the %s message: %s", config.name,
                             kind, exc)  # fmt: skip
                return []
            rendered[msgtype] = report.payloads
        out += [(bot, p) for p in rendered[msgtype]]
    return out


async def _record(
    runtime: Runtime,
    entry_id: str,
    kind: Kind,
    config: HeartbeatConfig,
    planned: list[tuple[str, dict[str, Any]]],
    ids: list[int],
    now: float,
) -> None:
    """One history entry per miss and per recovery (source ``heartbeat``)."""
    if runtime.history is None:
        return
    route = f"heartbeat:{config.name}"
    messages, events = queued_parts(entry_id, route, planned, ids, now)
    word = "missing" if kind == "miss" else "back"
    entry = HistoryEntry(
        id=entry_id, received_at=now, updated_at=now, source="heartbeat",
        status="firing" if kind == "miss" else "resolved",
        state="pending" if planned else "skipped",
        title=f"heartbeat {config.name} {word}", labels=(("heartbeat", config.name),),
        routes=(route,), bots=tuple(dict.fromkeys(b for b, _ in planned)),
        messages=tuple(messages), detail={"heartbeat": config.name, "kind": kind},
    )  # fmt: skip
    await runtime.history.record(entry, events)
