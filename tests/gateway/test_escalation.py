"""Escalation and reminders, on an injected clock: configuration errors that name the field,
the message (hostile labels escaped, mentions, links), and the scheduling — a step fires once
at its time, a reminder keeps its beat, acknowledging or resolving stops both, a repeated
notification changes nothing, a muted route sends nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wecom_bot.errors import ConfigError
from wecom_bot.gateway.actions.escalation import Escalator, track
from wecom_bot.gateway.actions.groups import GroupInfo, group_id
from wecom_bot.gateway.actions.links import ActionLinker
from wecom_bot.gateway.actions.notices import fired_for, notice
from wecom_bot.gateway.config import GatewayConfig, load_config
from wecom_bot.gateway.intake.ingest import plan, track_groups
from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic
from wecom_bot.gateway.recording import HistoryRecorder
from wecom_bot.gateway.runtime import Runtime, build_runtime
from wecom_bot.gateway.samples import alertmanager_firing, alertmanager_resolved
from wecom_bot.store import MemoryOutbox, Status
from wecom_bot.store.history import HistoryQuery, MemoryHistory

NOW = 1_800_000_000.0
SECRET = "0123456789abcdef-test-secret"
BASE = (
    "bots: {ops: {key: k1}, lead: {key: k2, msgtype: text}}\n"
    "routes:\n  - name: crit\n    bots: [ops]\n"
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    escalate: [{after: 15x}]\n", "routes.0.escalate.0.after: must be a duration"),
        ("    escalate: [{after: -5m}]\n", "routes.0.escalate.0.after: must be a duration"),
        ("    escalate: [{after: 0}]\n",
         "routes.0.escalate.0.after: must be between 1s and 30d, got 0"),
        ("    escalate: [{aftr: 15m}]\n", "escalate.0.aftr: unknown key; did you mean 'after'?"),
        ("    escalate: [{after: 1m, mentions: [a]}]\n", "did you mean 'mention'?"),
        ("    escalate: [{after: 1m, mention: ['x y']}]\n", "escalate.0.mention: [0]: 'x y' is"),
        ("    escalate: [{after: 1m, mention: {user: [a]}}]\n", "mention: unknown key 'user'"),
        ("    escalate: [{after: 1m, bots: [leed]}]\n",
         "routes[crit].escalate[0].bots: no bot named 'leed' (did you mean 'lead'?)"),
        ("    escalate: [{after: 30m}, {after: 15m}]\n", "routes.0.escalate: step 1 fires after"),
        ("    remind_every: 0s\n", "routes.0.remind_every: must be between 1m and 30d, got '0s'"),
        ("    remind_every: 30s\n", "routes.0.remind_every: must be between 1m and 30d, got '30s'"),
        ("    remind_every: hourly\n", "routes.0.remind_every: must be a duration"),
        ("    remind_evry: 1h\n", "remind_evry: unknown key; did you mean 'remind_every'?"),
    ],
)  # fmt: skip
def test_config_errors_name_the_field(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text=BASE + extra)
    assert expected in str(caught.value)


def test_a_good_config_reads_durations_and_mentions() -> None:
    config = load_config(
        text=BASE + "    escalate: [{after: 15m, mention: [alice, '@all']},\n"
        "               {after: 30m, mention: {users: [bob], mobiles: ['13800000000']},"
        " bots: [lead]}]\n    remind_every: 1h\n"
    )
    route = config.routes[0]
    assert [s.after for s in route.escalate] == [900.0, 1800.0]
    assert route.escalate[1].bots == ["lead"] and route.remind_every == 3600.0


def test_durations_read_short() -> None:
    assert [fired_for(s) for s in (0, 45, 900, 3900, 3600, 2 * 86400 + 7200)] == [
        "0s", "45s", "15m", "1h 5m", "1h", "2d 2h",
    ]  # fmt: skip


@pytest.mark.parametrize("syntax", ["markdown", "markdown_v2", "text"])
def test_the_message_names_the_group_escapes_its_labels_and_carries_links(syntax: Any) -> None:
    payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
    payload["groupLabels"] = {"alertname": "HighCPU", "team": "@all <font>[x](http://e)</font>"}
    info = GroupInfo.of(parse_alertmanager(payload), ["crit"], notification_id="n", now=NOW)
    assert info is not None
    linker = ActionLinker("https://gw.example.com", SECRET.encode(), clock=lambda: NOW)
    links = linker.for_group(dict(info.labels), info.external_url)
    assert links is not None
    text = notice("escalate", info, now=NOW + 900, syntax=syntax, links=links)
    assert "升级 Escalation · HighCPU" in text and "firing for 27m" in text  # since 12 min ago
    assert "2 alerts" in text and "team=" in text
    assert "@all" not in text and "<font>" not in text and "[x]" not in text
    assert links.ack in text and links.silence in text
    plain = notice("remind", info, now=NOW, syntax=syntax)
    assert "提醒 Reminder" in plain and "/act/" not in plain


# --------------------------------------------------------------------------- scheduling


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _config(**route: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "base_url": "http://127.0.0.1:9",
            "store": "memory://",
            "timezone": "UTC",
            "external_url": "https://gw.example.com",
            "actions": {"secret": SECRET},
            "bots": {"ops": {"key": "k1"}, "lead": {"key": "k2", "msgtype": "text"}},
            "routes": [{"name": "crit", "bots": ["ops"], **route}],
            "time_intervals": {
                "night": [{"times": [{"start_time": "00:00", "end_time": "06:00"}]}]
            },
        }
    )


def _runtime(config: GatewayConfig, clock: Clock) -> tuple[Runtime, MemoryOutbox]:
    store = MemoryOutbox(clock=clock)
    history = HistoryRecorder(MemoryHistory(), store, clock=clock, secrets=lambda: ["k1", "k2"])
    return build_runtime(config, store=store, metrics=None, clock=clock, history=history), store


async def _process(runtime: Runtime, payload: dict[str, Any], now: float) -> None:
    notification = parse_alertmanager(payload)
    routes = [r.name for r in runtime.routes_for(notification, None)]
    await track(runtime, notification, routes, notification_id="n1", now=now)


async def _queued(store: MemoryOutbox, bot: str) -> list[dict[str, Any]]:
    """What is queued for ``bot`` (a notice waits for the end of its slot, 5 s at most)."""
    due = store.clock() + 5
    records = await store.claim(bot, limit=100, lease_seconds=30, now=due)
    await store.ack([r.id for r in records])
    return [r.payload for r in records]


async def test_a_step_fires_once_at_its_time_with_its_mentions_and_bots() -> None:
    clock = Clock()
    runtime, store = _runtime(
        _config(escalate=[{"after": "15m", "mention": ["alice"], "bots": ["lead"]},
                          {"after": "30m", "mention": {"users": ["boss"]}}]),
        clock,
    )  # fmt: skip
    escalator = Escalator(lambda: runtime, clock=clock)
    await _process(runtime, alertmanager_firing(datetime.fromtimestamp(NOW, UTC)), NOW)
    clock.now = NOW + 899
    assert await escalator.run_once() == 0
    clock.now = NOW + 900
    assert await escalator.run_once() == 1
    assert await escalator.run_once() == 0
    [markdown] = await _queued(store, "ops")
    [text] = await _queued(store, "lead")
    assert markdown["msgtype"] == "markdown" and text["msgtype"] == "text"
    assert "升级 Escalation · HighCPU" in markdown["markdown"]["content"]
    assert markdown["markdown"]["content"].endswith("<@alice>")
    assert text["text"]["mentioned_list"] == ["alice"] and "/act/" in text["text"]["content"]
    clock.now = NOW + 1800
    assert await escalator.run_once() == 1
    [second] = await _queued(store, "ops")
    assert second["markdown"]["content"].endswith("<@boss>")
    assert await _queued(store, "lead") == []  # the second step names no extra bot
    # Each firing is a history entry of its own, its messages queued there.
    assert runtime.history is not None
    entries = await runtime.history.history.search(HistoryQuery(source="escalation"))
    assert [e.title for e in entries] == [
        "⏫ 升级 Escalation · HighCPU · 42m",  # the alerts started 12 min before NOW
        "⏫ 升级 Escalation · HighCPU · 27m",
    ]
    assert entries[1].bots == ("ops", "lead") and entries[1].state == "pending"
    assert all(m["record_id"] for m in entries[1].messages)


async def test_reminders_keep_their_beat_and_skip_what_no_gateway_was_up_for() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(remind_every="1h"), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    await _process(runtime, alertmanager_firing(), NOW)
    for hour in (1, 2):
        clock.now = NOW + hour * 3600 + 5
        assert await escalator.run_once() == 1 and await escalator.run_once() == 0
        assert len(await _queued(store, "ops")) == 1
    clock.now = NOW + 5.5 * 3600  # nobody ran for hours: one reminder, not three
    assert await escalator.run_once() == 1 and await escalator.run_once() == 0
    [timer] = (await store.get_group(_group())).timers  # type: ignore[union-attr]
    assert timer.due_at == NOW + 6 * 3600 and timer.fired == 3


def _group() -> str:
    return group_id([("alertname", "HighCPU")])


async def test_acknowledging_or_resolving_stops_them_and_a_repeat_changes_nothing() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m"}], remind_every="2m"), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    await _process(runtime, alertmanager_firing(), NOW)
    clock.now = NOW + 50
    await _process(runtime, alertmanager_firing(), clock.now)  # Alertmanager repeats itself
    group = await store.get_group(_group())
    assert group is not None and group.opened_at == NOW
    assert [t.due_at for t in group.timers] == [NOW + 60, NOW + 120]
    assert await store.acknowledge_group(_group(), by="王五", now=clock.now)
    clock.now = NOW + 600
    assert await escalator.run_once() == 0 and await store.pending_count() == 0
    listed = await store.list_groups()
    assert [(g.acknowledged_by, g.timers) for g in listed] == [("王五", ())]
    # Resolved: forgotten; firing again later is a new episode with new timers.
    await _process(runtime, alertmanager_resolved(), clock.now)
    assert await store.list_groups() == []
    await _process(runtime, alertmanager_firing(), clock.now)
    await _process(runtime, alertmanager_resolved(), clock.now + 1)
    clock.now += 3600
    assert await escalator.run_once() == 0 and await store.pending_count() == 0


async def test_a_group_without_labels_or_from_a_generic_webhook_is_not_tracked() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m"}]), clock)
    await track(runtime, parse_generic("deploy", {"text": "hi"}), ["crit"],
                notification_id="g", now=NOW)  # fmt: skip
    payload = alertmanager_firing()
    payload["groupLabels"] = payload["commonLabels"] = {}
    await _process(runtime, payload, NOW)
    assert await store.list_groups() == []


async def test_a_route_muted_when_its_timer_fires_sends_nothing() -> None:
    clock = Clock()
    config = _config(escalate=[{"after": "1m"}], remind_every="1h",
                     mute_time_intervals=["night"])  # fmt: skip
    runtime, store = _runtime(config, clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    midnight = datetime(2027, 1, 1, 0, 30, tzinfo=UTC).timestamp()
    await _process(runtime, alertmanager_firing(), midnight)
    clock.now = midnight + 60
    assert await escalator.run_once() == 1
    assert await store.pending_count() == 0
    [reminder] = (await store.get_group(_group())).timers  # type: ignore[union-attr]
    assert reminder.key.startswith("remind") and reminder.due_at == midnight + 3600
    assert runtime.history is not None
    [entry] = await runtime.history.history.search(HistoryQuery(source="escalation"))
    assert entry.state == "muted" and "night" in entry.detail["muted"]
    clock.now = datetime(2027, 1, 1, 7, 0, tzinfo=UTC).timestamp()  # the night is over
    assert await escalator.run_once() == 1
    [record] = await store.claim("ops", limit=5, lease_seconds=5, now=clock.now + 5)
    assert (
        record.status is Status.LEASED and "提醒 Reminder" in record.payload["markdown"]["content"]
    )


async def test_a_batch_tracks_each_group_in_arrival_order() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m"}]), clock)
    other = alertmanager_firing()
    other["groupLabels"] = {"alertname": "Other"}
    payloads = [alertmanager_firing(), other, alertmanager_resolved()]
    plans = [await plan(runtime, parse_alertmanager(p), None, now=NOW) for p in payloads]
    await track_groups(runtime, plans)  # HighCPU fired and resolved within one batch
    assert [g.info["name"] for g in await store.list_groups()] == ["Other"]


async def test_a_route_without_group_by_leaves_no_group_open_behind_it() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m"}], remind_every="1h"), clock)
    first = alertmanager_firing()
    first["groupLabels"] = {}  # Alertmanager's route has no group_by
    first["alerts"] = first["alerts"][:1]
    first["commonLabels"] = dict(first["alerts"][0]["labels"])  # one alert: all its labels
    both = alertmanager_firing()
    both["groupLabels"] = {}  # a second alert joined: fewer labels in common
    resolved = alertmanager_firing()
    resolved["groupLabels"] = {}
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    for payload in (first, both, resolved):
        await _process(runtime, payload, NOW)
    assert await store.list_groups() == []  # nothing left to escalate or remind for days


async def test_open_groups_are_bounded_oldest_first_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    config = _config(escalate=[{"after": "15m"}], remind_every="1h")
    config = config.model_copy(update={"max_open_groups": 3})
    runtime, store = _runtime(config, clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    for i in range(5):
        payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
        payload["groupLabels"] = {"alertname": "HighCPU", "instance": f"db-{i}"}
        await _process(runtime, payload, NOW + i)
    assert len(await store.list_groups()) == 5
    clock.now = NOW + 10
    with caplog.at_level("WARNING", logger="wecom_bot.gateway.escalation"):
        assert await escalator.run_once() == 0
    kept = [dict(GroupInfo.from_json(g.info).labels)["instance"] for g in await store.list_groups()]
    assert kept == ["db-2", "db-3", "db-4"]
    assert "more than max_open_groups (3)" in caplog.text and "the 2 no notification" in caplog.text


async def test_the_bound_on_open_groups_holds_after_the_wall_clock_steps_back() -> None:
    clock = Clock()
    config = _config(escalate=[{"after": "15m"}]).model_copy(update={"max_open_groups": 2})
    runtime, store = _runtime(config, clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    await escalator.run_once()  # the first look purges and trims (nothing open yet)
    clock.now -= 3600  # the wall clock steps back an hour
    for i in range(4):
        payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
        payload["groupLabels"] = {"alertname": "HighCPU", "instance": f"db-{i}"}
        await _process(runtime, payload, clock.now + i)
    await escalator.run_once()
    assert len(await store.list_groups()) == 2  # not an hour later
