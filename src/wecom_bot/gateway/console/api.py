"""The console's JSON API under ``/api/v1``: one endpoint per view of ``/ui``.

Everything here sits behind the gateway's authentication (the app's middleware) and never
answers a webhook key: bots are shown by name, their keys masked (``693a…5aaa``), errors pass
:func:`wecom_bot.masking.redact`. State-changing calls are ``POST`` with a JSON body; the
gateway refuses such a call from another site, or with another body, before it gets here
(:mod:`wecom_bot.exposure`).

Views: ``/status``, ``/alerts`` (open alert groups, + ``/alerts/{group}/acknowledge``,
``/silence``), ``/history`` (+ ``/history/{id}``), ``/dead-letters`` (+ ``/requeue``,
``/discard``), ``/playground`` (+ ``/render``, ``/send``, ``/samples/{name}``), ``/config``
(+ ``/config/reload``). See ``docs/console.md`` and ``docs/actions.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ConfigError, MessageValidationError
from ...masking import mask_key, redact
from ...preview import render_message_html
from ...store import (
    Acknowledged,
    GroupRecord,
    NewMessage,
    OutboxRecord,
    StoreUnavailableError,
    TimerRecord,
    is_standing,
)
from ...store.history import HistoryEntry, HistoryEvent, HistoryQuery
from ..actions import acting
from ..actions.alertmanager import SilenceError
from ..actions.groups import GroupInfo
from ..actions.links import SILENCE_CHOICES
from ..heartbeats.switch import states as heartbeat_states
from ..intake.inbox import INBOX_BOT, INBOX_KIND
from ..intake.ingest import title_of
from ..intake.sources import PayloadError, parse_alertmanager, parse_generic, parse_grafana
from ..model import Notification
from ..recording import delivery_records
from ..samples import SAMPLES
from ..templates.render_pool import RenderPoolClosed
from ..templates.renderer import CodedWarning, MsgType, RenderReport, TemplateError
from .testsend import MARKER, marked_messages

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["console"])

MAX_IDS = 1000
"""Dead letters one requeue or discard call may name."""

_ASPECT_STYLE = re.compile(r' style="aspect-ratio: ([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"')
_STATES = (
    "pending", "deferred", "retrying", "delivered", "dead", "discarded", "muted", "dropped",
    "skipped", "acknowledged",
)  # fmt: skip


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _html(payload: Any) -> str:
    """A message drawn by the preview; the card aspect ratio becomes a data attribute (the
    page's policy refuses inline styles; console.js applies it)."""
    html = render_message_html(payload if isinstance(payload, dict) else {})
    return _ASPECT_STYLE.sub(r' data-wb-aspect-ratio="\1"', html)


def _error(
    status: int,
    message: str,
    code: str | None = None,
    params: Mapping[str, Any] | None = None,
    **fields: Any,
) -> JSONResponse:
    """An error answer: ``error`` (English, for API clients and logs) and, beside it, ``code``
    and ``params`` naming what it says, which the console says in its language (the catalogue's
    ``console.server.<code>``); ``params["detail"]``, when there, is free text (an exception's
    or a third party's words) the page quotes as it is."""
    named = {"code": code, "params": dict(params or {})} if code else {}
    return JSONResponse({"error": message, **named, **fields}, status_code=status)


def _reload_json(gateway: Gateway) -> dict[str, Any]:
    """The last reload's result, its texts redacted (a config error may quote a key)."""
    result = dict(gateway.last_reload)
    keys = _keys(gateway)
    result["message"] = redact(str(result.get("message", "")), *keys)
    params = dict(result.get("params") or {})
    if "detail" in params:
        params["detail"] = redact(str(params["detail"]), *keys)
    result["params"] = params
    return result


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- status


@router.get(
    "/status",
    summary="Each bot: queue, rate window, last delivery, dead letters; each heartbeat's state",
)
async def status(request: Request) -> Response:
    """The status view; the page polls it."""
    gateway = _gateway(request)
    runtime = gateway.runtime
    now = gateway.clock()
    try:
        depth = await gateway.store.depth_by_bot()
        dead = {
            bot: await gateway.store.dead_count(bot) for bot in [*gateway.config.bots, INBOX_BOT]
        }
        store_ok = True
    except StoreUnavailableError:
        depth, dead, store_ok = {}, {}, False
    rate = runtime.config.rate
    limit, window = _rate(rate)
    bots = []
    for name, target in runtime.targets.items():
        used = [await _used(runtime.limiter, key) for key in target.keys]
        activity = gateway.history.activity.get(name)
        bots.append(
            {
                "name": name,
                "keys": [mask_key(k) for k in target.keys],
                "queue_depth": depth.get(name, 0),
                "dead_letters": dead.get(name, 0),
                "window": {
                    "used": sum(used),
                    "limit": limit * len(target.keys),
                    "seconds": window,
                },  # fmt: skip
                "msgtype": runtime.config.bots[name].msgtype,
                **(activity.to_json() if activity else {}),
            }
        )
    routes = []
    for route in [*runtime.router.routes, runtime.router.default_route]:
        muting = runtime.muting(route.name, now)
        routes.append(
            {
                "name": route.name,
                "state": "muted" if muting else "active",
                "muted": muting.to_json() if muting else None,
                "bots": list(route.bots),
                "oncall": _oncall_now(gateway, route.name, now),
            }
        )
    heartbeats = []
    if store_ok and runtime.config.heartbeats:
        try:
            heartbeats = [state.to_json() for state in await heartbeat_states(runtime)]
        except StoreUnavailableError:
            store_ok = False
    return JSONResponse(
        {
            "now": now,
            "timezone": runtime.config.timezone,
            "accepting": gateway.accepting,
            "store": {"location": _store_location(gateway), "ok": store_ok},
            "rate": rate,
            "inbox": {
                "depth": depth.get(INBOX_BOT, 0),
                "dead_letters": dead.get(INBOX_BOT, 0),
            },
            "bots": bots,
            "routes": routes,
            "heartbeats": heartbeats,
            "last_reload": _reload_json(gateway),
        }
    )


def _store_location(gateway: Gateway) -> str:
    from ..config import _mask_url_secrets

    return _mask_url_secrets(str(getattr(gateway.store, "location", "")))


def _rate(text: str) -> tuple[int, float]:
    from ...ratelimit import parse_rate

    parsed = parse_rate(text)
    return parsed.limit, parsed.window


async def _used(limiter: Any, key: str) -> int:
    inner = getattr(limiter, "limiter", None)
    if inner is None or not hasattr(inner, "used"):
        return 0
    value = inner.used(key)
    if hasattr(value, "__await__"):
        value = await value
    return int(value)


def _oncall_now(gateway: Gateway, route: str, now: float) -> str | None:
    runtime = gateway.runtime
    rotation = runtime.rotations.get(runtime.route_oncall.get(route, ""))
    return rotation.current(datetime.fromtimestamp(now, UTC)) if rotation else None


# --------------------------------------------------------------------------- history


def _labels(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, wanted = value.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"label {value!r}: write name=value")
        pairs.append((name.strip(), wanted.strip().strip('"')))
    return tuple(pairs)


def _summary(entry: HistoryEntry) -> dict[str, Any]:
    data = entry.to_json()
    data["messages"] = len(entry.messages)
    data["received"] = _iso(entry.received_at)
    return data


@router.get("/history", summary="Search received notifications")
async def history(
    request: Request,
    label: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI reads the default
    bot: str | None = None,
    route: str | None = None,
    state: Annotated[list[str], Query()] = [],  # noqa: B006
    source: str | None = None,
    since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    until: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """History entries, newest first. ``label=name=value`` may repeat (all must hold);
    ``state`` may repeat or be comma-separated; ``until`` is the cursor of the next page."""
    gateway = _gateway(request)
    states = tuple(s for value in state for s in value.split(",") if s)
    unknown = [s for s in states if s not in _STATES]
    if unknown:
        return _error(
            422, f"state {unknown[0]!r}: one of {', '.join(_STATES)}", "history.bad_state",
            {"state": unknown[0], "states": ", ".join(_STATES)},
        )  # fmt: skip
    try:
        labels = _labels(label)
    except ValueError as exc:
        return _error(422, str(exc), "history.bad_label", {"detail": str(exc)})
    query = HistoryQuery(
        since=since, until=until, states=states, source=source or None, bot=bot or None,
        route=route or None, labels=labels, text=q or None, limit=limit,
    )  # fmt: skip
    try:
        entries = await gateway.history.history.search(query)
    except StoreUnavailableError as exc:
        return _error(
            503, f"history unavailable: {exc}", "store.history", {"detail": str(exc)}
        )
    return JSONResponse(
        {
            "entries": [_summary(e) for e in entries],
            "next_until": entries[-1].received_at if len(entries) == limit else None,
            "retention_seconds": gateway.config.history_retention,
        }
    )


def _record_json(record: OutboxRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "bot": record.bot,
        "kind": record.kind,
        "status": record.status.value,
        "attempts": record.attempts,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "next_attempt_at": record.next_attempt_at,
        "last_error": record.last_error,
        "replaced_by": record.replaced_by,
        "notification_ids": list(record.notification_ids),
    }


def _event_json(event: HistoryEvent) -> dict[str, Any]:
    return {**event.to_json(), "time": _iso(event.at)}


@router.get("/history/{notification_id}", summary="One notification: messages and events")
async def history_entry(request: Request, notification_id: str) -> Response:
    """An entry with each message drawn as WeCom shows it, its outbox records (digests
    included) and every event."""
    gateway = _gateway(request)
    try:
        entry = await gateway.history.history.get(notification_id)
        events = await gateway.history.history.events(notification_id)
        records = delivery_records(await gateway.store.find_by_notification(notification_id))
    except StoreUnavailableError as exc:
        return _error(
            503, f"history unavailable: {exc}", "store.history", {"detail": str(exc)}
        )
    if entry is None:
        return _error(404, "no such notification in the history", "history.not_found")
    data = entry.to_json()
    data["received"] = _iso(entry.received_at)
    data["messages"] = [{**m, "html": _html(m.get("payload"))} for m in entry.messages]
    known = {m.get("record_id") for m in entry.messages}
    data["records"] = [_record_json(r) for r in records]
    data["digests"] = [
        {**_record_json(r), "html": _html(r.payload)} for r in records if r.id not in known
    ]
    data["events"] = [_event_json(e) for e in events]
    return JSONResponse(data)


# --------------------------------------------------------------------------- dead letters


def _dead_json(record: OutboxRecord) -> dict[str, Any]:
    from ..recording import errcode_of

    return {
        **_record_json(record),
        "errcode": errcode_of(record.last_error),
        "dead_at": _iso(record.updated_at),
        "html": _html(_journal_view(record.payload) if record.bot == INBOX_BOT else record.payload),
    }


_JOURNAL_EXCERPT = 1500
"""Characters of a journaled notification shown in its dead letter."""


def _journal_view(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a journal dead letter is, as a text message for the preview to draw: it holds a
    notification as received, not a WeCom message."""
    data = payload.get(INBOX_KIND)
    data = data if isinstance(data, dict) else {}
    if "json" in data:
        received = json.dumps(data["json"], ensure_ascii=False, indent=1)
    else:
        received = str(data.get("body", ""))
    if len(received) > _JOURNAL_EXCERPT:
        received = received[:_JOURNAL_EXCERPT] + "…"
    route = data.get("route")
    head = f"{data.get('source', '?')} notification {data.get('id', '?')}"
    head += f" (route {route})" if route else ""
    content = f"{head}, not rendered: fix the cause, reload, then requeue it.\n{received}"
    return {"msgtype": "text", "text": {"content": content}}


@router.get("/dead-letters", summary="Dead letters, oldest first")
async def dead_letters(
    request: Request,
    bot: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_IDS)] = 100,
) -> Response:
    """Dead letters with their reason, errcode and the message drawn."""
    gateway = _gateway(request)
    try:
        records = await gateway.store.list_dead(bot or None, limit=limit)
        total = await gateway.store.dead_count(bot or None)
    except StoreUnavailableError as exc:
        return _error(503, f"outbox unavailable: {exc}", "store.outbox", {"detail": str(exc)})
    return JSONResponse({"dead_letters": [_dead_json(r) for r in records], "total": total})


class DeadLetterAction(BaseModel):
    """Which dead letters: by id, or every one (of a bot)."""

    model_config = ConfigDict(extra="forbid")

    # Record ids are 64-bit in every store: a larger one names nothing (and SQLite cannot
    # even compare it), so it is refused as invalid.
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=MAX_IDS
    )
    all: bool = False
    bot: str | None = None


async def _select_dead(gateway: Gateway, action: DeadLetterAction) -> list[OutboxRecord]:
    if action.all:
        return await gateway.store.list_dead(action.bot, limit=MAX_IDS)
    found = [await gateway.store.get(i) for i in dict.fromkeys(action.ids)]
    return [r for r in found if r is not None and r.status.value == "dead"]


async def _act(request: Request, body: DeadLetterAction, kind: str) -> Response:
    gateway = _gateway(request)
    if not body.all and not body.ids:
        return _error(422, "name dead letters by ids, or set all", "dead.none_named")
    try:
        records = await _select_dead(gateway, body)
        ids = [r.id for r in records]
        if kind == "requeued":
            count = await gateway.store.requeue_dead(ids, now=gateway.clock())
        else:
            count = await gateway.store.discard_dead(ids)
    except StoreUnavailableError as exc:
        return _error(503, f"outbox unavailable: {exc}", "store.outbox", {"detail": str(exc)})
    counters = gateway.console_metrics
    counter = counters.requeued if kind == "requeued" else counters.discarded
    for record in records:
        counter.labels(record.bot).inc()
    gateway.history.note(records, kind, "by an operator in the console", "event.by_operator")
    if kind == "requeued":
        bots = {r.bot for r in records}
        if INBOX_BOT in bots:  # notifications that failed to render: the journal's processor
            bots.discard(INBOX_BOT)
            gateway.inbox.wake()
        gateway.runtime.notify(bots)
    return JSONResponse({kind: count, "ids": ids})


@router.post("/dead-letters/requeue", summary="Send dead letters again")
async def requeue(request: Request, body: DeadLetterAction) -> Response:
    """Make the dead letters pending again (attempts reset); the dispatcher sends them."""
    return await _act(request, body, "requeued")


@router.post("/dead-letters/discard", summary="Delete dead letters for good")
async def discard(request: Request, body: DeadLetterAction) -> Response:
    """Delete the dead letters (history keeps the record of them)."""
    return await _act(request, body, "discarded")


# --------------------------------------------------------------------------- open alerts


def _timer_json(timer: TimerRecord) -> dict[str, Any]:
    payload = timer.payload
    return {
        "kind": payload.get("kind"),
        "route": payload.get("route"),
        "step": payload.get("step"),
        "at": timer.due_at,
        "time": _iso(timer.due_at),
        "fired": timer.fired,
        "mention": payload.get("mention"),
        "bots": payload.get("bots", []),
    }


_QUIET = {"muted": "muted", "dropped": "muted", "deferred": "deferred"}
"""History states of a group's last notification that kept it from the group, as shown."""


def _group_json(
    gateway: Gateway,
    group: GroupRecord,
    now: float,
    last: HistoryEntry | None,
    acked: Sequence[tuple[str, float]] = (),
) -> dict[str, Any]:
    """One open group and its real state: ``silenced``, ``acknowledged``, ``muted`` or
    ``deferred`` (its last notification was held by a time interval: the group never saw
    it), else ``open``. Only ``open`` needs a human (``needs_human``: what the badge counts)."""
    info = GroupInfo.from_json(group.info)
    silenced = group.silenced_until is not None and group.silenced_until > now
    quiet = _QUIET.get(last.state) if last is not None else None
    state = (
        "silenced" if silenced
        else "acknowledged" if group.acknowledged_by
        else quiet or "open"
    )  # fmt: skip
    held = None
    if quiet is not None and last is not None:
        muting: Mapping[str, Any] = next((m["muted"] for m in last.messages if m.get("muted")), {})
        held = {
            "action": muting.get("action", last.state),
            "intervals": muting.get("reason", ""),
            "until": muting.get("resumes_at"),
            "inside": muting.get("inside", []),
            "outside": muting.get("outside", []),
            "endless": muting.get("endless", False),
        }
    nxt = group.next_timer
    return {
        "id": group.id,
        "name": info.name,
        "labels": [list(p) for p in info.labels],
        "source": info.source,
        "routes": list(info.routes),
        "alerts": info.alerts,
        "firing_since": info.firing_since,
        "opened_at": group.opened_at,
        "updated_at": group.updated_at,
        "state": state,
        "needs_human": state == "open",
        "held": held,
        "acknowledged_by": group.acknowledged_by,
        "acknowledged_at": group.acknowledged_at,
        "acknowledgers": [{"by": n, "at": t} for n, t in acked]
        or [{"by": n, "at": group.acknowledged_at} for n in _acknowledgers(group)],
        "silenced_until": group.silenced_until,
        "next": _timer_json(nxt) if nxt is not None else None,
        "timers": [_timer_json(t) for t in group.timers],
        "notification_id": info.notification_id,
        # Whether a silence can be made here (the Alertmanager's address stays unshown).
        "can_silence": acting.alertmanager_for(gateway, info.external_url) is not None,
    }


def _acknowledgers(group: GroupRecord) -> list[str]:
    """Everyone who acknowledged ``group``, the first first (the store keeps them joined)."""
    return [n for n in (group.acknowledged_by or "").split(", ") if n]


@router.get("/alerts", summary="Open alert groups: firing since, acknowledged, silenced, next")
async def alerts(request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Response:
    """The open alert groups, the longest firing first, with who acknowledged them, until when
    they are silenced (a silence made from a link or here), whether a time interval holds
    them (muted or deferred: the group has not seen them), and their next escalation or
    reminder. ``needs_human`` counts: the groups open, unacknowledged, and seen."""
    gateway = _gateway(request)
    now = gateway.clock()
    try:
        groups = await gateway.store.list_groups(limit=limit)
        history = gateway.history.history
        lasts = [
            await history.get(GroupInfo.from_json(g.info).notification_id) for g in groups
        ]
        acks = [
            await acting.acknowledgers(gateway, GroupInfo.from_json(g.info).labels, g.opened_at)
            if g.acknowledged_by
            else ()
            for g in groups
        ]
    except StoreUnavailableError as exc:
        return _error(503, f"outbox unavailable: {exc}", "store.outbox", {"detail": str(exc)})
    listed = [
        _group_json(gateway, g, now, last, acked)
        for g, last, acked in zip(groups, lasts, acks, strict=True)
    ]
    return JSONResponse(
        {"now": now, "groups": listed, "needs_human": sum(g["needs_human"] for g in listed)}
    )


class AlertAction(BaseModel):
    """Who acts on an open group, and for a silence how long (``1h``, ``4h``, ``24h``);
    ``post``: a later acknowledgement tells the group too (the first always does)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    duration: str = "1h"
    post: bool = False


async def _open_group(
    gateway: Gateway, group: str, body: AlertAction
) -> tuple[GroupInfo, str] | JSONResponse:
    name = " ".join(body.name.split())[: acting.MAX_NAME_CHARS]
    if not name:
        return _error(
            422, "name: give your name, so the group knows who acted", "alerts.need_name"
        )
    try:
        found = await gateway.store.get_group(group)
    except StoreUnavailableError as exc:
        return _error(503, f"outbox unavailable: {exc}", "store.outbox", {"detail": str(exc)})
    if found is None or is_standing(group):  # a heartbeat's state is not an alert group
        return _error(
            404, "no such open alert group (it resolved, or was never seen)", "alerts.not_open"
        )
    return GroupInfo.from_json(found.info), name


@router.post("/alerts/{group}/acknowledge", summary="Acknowledge an open alert group")
async def acknowledge_group(request: Request, group: str, body: AlertAction) -> Response:
    """As the acknowledge link does: its escalation and reminders stop, the history and the
    ``ack_bots`` hear of it."""
    gateway = _gateway(request)
    found = await _open_group(gateway, group, body)
    if isinstance(found, JSONResponse):
        return found
    info, name = found
    try:
        done = await acting.acknowledge(gateway, info.labels, name, via="console", post=body.post)
    except StoreUnavailableError as exc:
        return _error(503, f"outbox unavailable: {exc}", "store.outbox", {"detail": str(exc)})
    if done.entry is None:
        return _error(
            404, "no such open alert group (it resolved, or was never seen)", "alerts.not_open"
        )
    acked = [{"by": n, "at": t} for n, t in done.acknowledgers]
    return JSONResponse({"acknowledged": True, "by": name, "history_id": done.entry.id,
                         "first": done.outcome is Acknowledged.FIRST, "posted": done.posted,
                         "acknowledgers": acked})  # fmt: skip


@router.post("/alerts/{group}/silence", summary="Silence an open alert group in Alertmanager")
async def silence_group(request: Request, group: str, body: AlertAction) -> Response:
    """As the silence link does: a silence in Alertmanager for 1h, 4h or 24h; its escalation
    and reminders stop."""
    gateway = _gateway(request)
    found = await _open_group(gateway, group, body)
    if isinstance(found, JSONResponse):
        return found
    info, name = found
    if body.duration not in SILENCE_CHOICES:
        return _error(
            422, f"duration: one of {', '.join(SILENCE_CHOICES)}", "alerts.bad_duration",
            {"choices": ", ".join(SILENCE_CHOICES)},
        )  # fmt: skip
    am = acting.alertmanager_for(gateway, info.external_url)
    if am is None:
        return _error(409, "the Alertmanager this group came from is not configured "
                      "(alertmanagers, or actions.alertmanager_url)",
                      "alerts.no_alertmanager")  # fmt: skip
    try:
        made = await acting.silence(gateway, info.labels, am, name, body.duration, via="console")
    except SilenceError as exc:  # logged with its details; the answer quotes none of them
        return _error(502, redact(str(exc), *_keys(gateway), *am.secrets), *_silence_code(exc))
    except StoreUnavailableError as exc:
        return _error(
            503, f"the silence was made, but the outbox does not answer: {exc}",
            "store.after_silence", {"detail": str(exc)},
        )  # fmt: skip
    return JSONResponse({"silence_id": made.id, "ends_at": made.ends_at.timestamp(), "by": name})


def _silence_code(exc: SilenceError) -> tuple[str, dict[str, Any]]:
    """What went wrong with Alertmanager, as a code (as the /act/ page says it: never its
    answer's text; for no answer, the error's kind, as the API's message ends)."""
    if exc.status is None:
        return "silence.no_answer", {"error": str(exc).rpartition(": ")[2]}
    if exc.status == 200:
        return "silence.no_id", {}
    return "silence.refused", {"status": exc.status}


# --------------------------------------------------------------------------- playground


@router.get("/playground", summary="What the playground can pick from")
async def playground(request: Request) -> Response:
    """Routes, templates, bots, samples and msgtypes."""
    runtime = _gateway(request).runtime
    router_ = runtime.router
    routes = [*router_.routes, router_.default_route, *runtime.webhook_routes.values()]
    return JSONResponse(
        {
            "routes": [
                {
                    "name": r.name,
                    "template": r.template,
                    "msgtype": r.msgtype,
                    "bots": list(r.bots),
                }  # fmt: skip
                for r in routes
            ],
            "templates": runtime.renderer.template_names(),
            "bots": list(runtime.targets),
            "samples": [{"name": n, "source": s} for n, (s, _) in SAMPLES.items()],
            "msgtypes": ["markdown", "markdown_v2", "text"],
        }
    )


@router.get("/playground/samples/{name}", summary="A sample payload")
async def sample(name: str) -> Response:
    """The sample payload ``name`` (Alertmanager, Grafana, generic), to paste and edit."""
    if name not in SAMPLES:
        return _error(404, f"no sample named {name!r}", "playground.no_sample", {"name": name})
    source, factory = SAMPLES[name]
    return JSONResponse({"name": name, "source": source, "payload": factory(None)})


class PlaygroundRequest(BaseModel):
    """What to render: a payload (or a sample) through a route (or a template).

    Attributes:
        source: how to parse ``payload``: alertmanager, grafana or generic.
        payload: the inbound JSON; or ``sample`` names one.
        sample: a sample name (see ``GET /api/v1/playground``).
        route: render as this route does (its template, msgtype and mentions).
        template: or this template name.
        template_source: or this Jinja2 text (sandboxed, like configured templates).
        msgtype: overrides the route's (or the bot's) msgtype.
        bot: the bot whose msgtype applies, and where ``/send`` sends.
    """

    model_config = ConfigDict(extra="forbid")

    source: str = "alertmanager"
    payload: Any = None
    sample: str | None = None
    route: str | None = None
    template: str | None = None
    template_source: str | None = Field(default=None, max_length=64 * 1024)
    msgtype: MsgType | None = None
    bot: str | None = None


_PLAYGROUND = "playground"
"""The name the template text typed in the playground renders under."""


class _PlaygroundError(Exception):
    def __init__(self, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.fields = fields

    def answer(self) -> JSONResponse:
        return _error(self.status, str(self), **self.fields)


def _template_error(exc: TemplateError, *, typed: bool) -> _PlaygroundError:
    """A template's error as the playground answers it: where it is as fields (so the page
    marks the line without reading the text) and what is wrong in plain words."""
    in_source = typed and exc.template == _PLAYGROUND
    where = "template text" if in_source else f"template {exc.template!r}"
    if exc.line is not None:
        where += f", line {exc.line}"
    if exc.column is not None:
        where += f", column {exc.column}"
    detail = {
        "template": None if in_source else exc.template,
        "in_template_source": in_source,
        "line": exc.line,
        "column": exc.column,
        "message": exc.reason,
    }
    return _PlaygroundError(
        422, f"{where}: {exc.reason}", code="playground.template", params={}, template_error=detail
    )


def _parse(body: PlaygroundRequest) -> Notification:
    source, payload = body.source, body.payload
    if body.sample is not None:
        if body.sample not in SAMPLES:
            raise _PlaygroundError(
                404, f"no sample named {body.sample!r}", code="playground.no_sample",
                params={"name": body.sample},
            )  # fmt: skip
        source, factory = SAMPLES[body.sample]
        payload = factory(None)
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise _PlaygroundError(
                422, "the payload is not valid JSON", code="playground.bad_json"
            ) from None
    try:
        if source == "alertmanager":
            return parse_alertmanager(payload)
        if source == "grafana":
            return parse_grafana(payload)
        if source == "generic":
            return parse_generic("playground", payload)
    except PayloadError as exc:
        raise _PlaygroundError(
            422, f"payload: {exc}", code="playground.bad_payload", params={"detail": str(exc)}
        ) from None
    raise _PlaygroundError(
        422, "source: one of alertmanager, grafana, generic", code="playground.bad_source",
        params={"sources": "alertmanager, grafana, generic"},
    )  # fmt: skip


def _no_links(notification: Notification) -> None:
    """The action links of a test send: none (``None`` would mean the runtime's own)."""
    return None


async def _render(
    gateway: Gateway, body: PlaygroundRequest, *, test_send: bool = False
) -> tuple[RenderReport, str, str, tuple[str, ...]]:
    """Render ``body``: the report, the bot, the title and whom the route would mention.

    A test send (``test_send``) renders without mentions and without action links: whom the
    route would mention is returned, for :mod:`.testsend` to write plainly."""
    runtime = gateway.runtime
    notification = _parse(body)
    bot = body.bot or None
    if bot is not None and bot not in runtime.targets:
        raise _PlaygroundError(
            404, f"no bot named {bot!r}", code="playground.no_bot", params={"name": bot}
        )
    route = None
    if body.route:
        try:
            route = (
                runtime.webhook_routes[body.route.split(":", 1)[1]]
                if body.route.startswith("webhook:")
                else runtime.router.route(body.route)
            )
        except (LookupError, IndexError):
            raise _PlaygroundError(
                404, f"no route named {body.route!r}", code="playground.no_route",
                params={"name": body.route},
            ) from None  # fmt: skip
    bot = bot or (route.bots[0] if route else next(iter(runtime.targets)))
    msgtype: MsgType = (
        body.msgtype or (route.msgtype if route else None) or (runtime.config.bots[bot].msgtype)
    )
    template = body.template or (route.template if route else "default")
    settings = None
    if body.template_source is not None:  # compiled and rendered in the render pool
        settings = replace(
            runtime.renderer.settings,
            templates=(*runtime.renderer.settings.templates, (_PLAYGROUND, body.template_source)),
            limits=runtime.config.template_limits.limits(playground=True),
        )
        template = _PLAYGROUND
    try:
        mentions = None
        if route is not None:
            selected = route.select(notification)
            if selected is None:
                raise _PlaygroundError(
                    422, f"route {route.name!r} does not send resolved notifications",
                    code="playground.not_resolved", params={"route": route.name},
                )  # fmt: skip
            notification = selected
            mentions = route.mentions_for(notification)
            if runtime.global_mentions is not None:
                mentions = mentions | runtime.global_mentions.resolve(notification)
            mentions = mentions | runtime.oncall_mentions(route, notification)
        # Inert links: whatever labels are typed here, they must not act on a real group.
        preview: Callable[[Notification], Any] | None = (
            runtime.actions.preview() if runtime.actions is not None else None
        )
        would_mention = tuple(mentions.userids) if mentions is not None else ()
        if test_send:  # nobody paged, no link at all (see .testsend)
            mentions, preview = None, _no_links
        report = await runtime.render_report(
            template, notification, msgtype=msgtype, mentions=mentions, settings=settings,
            pool=gateway.playground_pool, actions=preview,
        )  # fmt: skip
    except TemplateError as exc:
        raise _template_error(exc, typed=body.template_source is not None) from None
    except (MessageValidationError, ConfigError) as exc:
        raise _PlaygroundError(
            422, str(exc), code="playground.invalid", params={"detail": str(exc)}
        ) from None
    except RenderPoolClosed as exc:
        raise _PlaygroundError(
            503, str(exc), code="playground.closed", params={"detail": str(exc)}
        ) from None
    return report, bot, title_of(notification), would_mention


def _report_json(report: RenderReport) -> dict[str, Any]:
    return {
        "template": report.template,
        "used_template": report.used_template,
        "msgtype": report.msgtype,
        "size": report.size,
        "limit": report.limit,
        "fits": report.fits,
        "warnings": report.warnings,
        # Beside each warning: its code and params, for the page's words (None: none known).
        "warning_codes": [
            {"code": w.code, "params": w.params} if isinstance(w, CodedWarning) else None
            for w in report.warnings
        ],
        "parts": [
            {"size": p.size, "limit": p.limit, "payload": p.payload, "html": _html(p.payload)}
            for p in report.parts
        ],
    }


@router.post("/playground/render", summary="Render a payload as a route or template would")
async def playground_render(request: Request, body: PlaygroundRequest) -> Response:
    """The rendered parts, each drawn as WeCom shows it, with sizes against the limit.

    A template's error answers 422 with ``template_error``: ``template``,
    ``in_template_source``, ``line``, ``column`` and ``message`` (plain words)."""
    try:
        report, bot, _, _ = await _render(_gateway(request), body)
    except _PlaygroundError as exc:
        return exc.answer()
    return JSONResponse({**_report_json(report), "bot": bot})


@router.post("/playground/graph", summary="Preview the graph a payload would get")
async def playground_graph(request: Request, body: PlaygroundRequest) -> Response:
    """The image the gateway would send after the alert's text: the chart of its
    ``generatorURL`` from a configured Prometheus, or its Grafana ``imageURL``, fetched and
    drawn exactly as for a real alert (the same allowlist and bounds); nothing is sent."""
    from ..graphs.sending import describe

    gateway = _gateway(request)
    graphs = gateway.runtime.graphs
    if graphs is None:
        return _error(
            409, "graphs are off: list a Prometheus (graphs.prometheus) or a Grafana", "graphs.off"
        )
    if body.route and not gateway.runtime.config.graphs.sends_for(body.route):
        return _error(
            422, f"route {body.route!r} sends no graphs (graphs.routes)", "graphs.not_route",
            {"route": body.route},
        )  # fmt: skip
    try:
        notification = _parse(body)
    except _PlaygroundError as exc:
        return exc.answer()
    why: list[str] = []
    image = await graphs.make(notification, why=why)
    if image is None:
        return _error(
            422, f"no graph: {'; '.join(why)}", "graphs.none", {"detail": "; ".join(why)}
        )
    return JSONResponse({
        "bytes": len(image.data), "from": image.origin, "html": _html(image.payload()),
        "chart": describe(image.request) if image.request is not None else None,
    })  # fmt: skip


@router.post("/playground/send", summary="Send the render to a bot as a marked test")
async def playground_send(request: Request, body: PlaygroundRequest) -> Response:
    """Queue the render for ``bot`` as a test (through the outbox, like any message).

    Every message opens with ``[测试 TEST]``, mentions nobody (the route's mentions are
    written plainly) and carries no action link; the history records it as a test."""
    if not body.bot:
        return _error(422, "bot: choose the bot to send to", "playground.need_bot")
    gateway = _gateway(request)
    try:
        report, bot, title, would_mention = await _render(gateway, body, test_send=True)
        parts = marked_messages(report.content, report.msgtype, would_mention)
    except _PlaygroundError as exc:
        return exc.answer()
    except (MessageValidationError, ValueError) as exc:
        return _error(
            422, f"cannot send as a test: {exc}", "playground.cannot_send", {"detail": str(exc)}
        )
    now = gateway.clock()
    notification_id = f"pg-{int(now * 1000):x}"
    try:
        ids = await gateway.store.enqueue(
            [NewMessage(bot=bot, payload=p.payload, notification_id=notification_id)
             for p in parts],
            now=now,
        )  # fmt: skip
    except StoreUnavailableError as exc:
        return _error(503, f"outbox unavailable: {exc}", "store.outbox", {"detail": str(exc)})
    entry = HistoryEntry(
        id=notification_id, received_at=now, updated_at=now, source="playground",
        status="firing", state="pending", title=f"{MARKER} playground: {title}", bots=(bot,),
        messages=tuple(
            {"record_id": rid, "bot": bot, "msgtype": report.msgtype, "part": i + 1,
             "parts": len(ids), "size": part.size, "limit": part.limit, "payload": part.payload}
            for i, (rid, part) in enumerate(zip(ids, parts, strict=True))
        ),
        detail={"test": True, "mentions_written_plainly": list(would_mention),
                "action_links": "none"},
    )  # fmt: skip
    await gateway.history.record(
        entry, [HistoryEvent(notification_id, now, "queued", rid, bot) for rid in ids]
    )
    gateway.runtime.notify([bot])
    return JSONResponse(
        {"notification_id": notification_id, "queued": ids, "bot": bot, "test": True,
         "mentions_written_plainly": list(would_mention)}
    )  # fmt: skip


# --------------------------------------------------------------------------- config


@router.get("/config", summary="The loaded configuration, secrets masked")
async def config(request: Request) -> Response:
    """The running configuration (every key, token and password masked) and the last reload."""
    gateway = _gateway(request)
    masked = gateway.config.masked()
    return JSONResponse(
        {
            "config": json.loads(redact(json.dumps(masked), *_keys(gateway))),
            "path": str(gateway.config_path) if gateway.config_path else None,
            "last_reload": _reload_json(gateway),
        }
    )


def _keys(gateway: Gateway) -> list[str]:
    return [k for target in gateway.runtime.targets.values() for k in target.keys]


@router.post("/config/reload", summary="Re-read the config file; a bad one keeps the old")
async def reload(request: Request) -> Response:
    """Reload and answer the result (``ok`` and a message naming the bad field, if any)."""
    gateway = _gateway(request)
    await gateway.reload()
    result = {k: v for k, v in _reload_json(gateway).items() if k != "at"}
    return JSONResponse(result, status_code=200 if result["ok"] else 400)
