"""Heartbeats on an injected clock: configuration errors that name the field, which alerts are
taken (only the matching ones, never routed), the scheduling (armed at start, a beat re-arms,
one miss after expect_every + grace, one recovery with the gap), a wall-clock step that moves
neither, and the messages (escaped sender text, the configured time zone, templates)."""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wecom_bot.clock import SteadyClock
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.actions.escalation import Escalator
from wecom_bot.gateway.check import check_config, notification_for_labels, trace_routes
from wecom_bot.gateway.config import GatewayConfig, load_config
from wecom_bot.gateway.heartbeats import switch, take
from wecom_bot.gateway.intake.ingest import plan
from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic
from wecom_bot.gateway.metrics import GatewayMetrics
from wecom_bot.gateway.recording import HistoryRecorder
from wecom_bot.gateway.runtime import Runtime, build_runtime
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.store import MemoryOutbox
from wecom_bot.store.history import HistoryQuery, MemoryHistory

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
BASE = (
    "bots: {ops: {key: k1}, lead: {key: k2, msgtype: text}}\n"
    "webhooks: {cron: {bots: [ops]}}\n"
    "heartbeats:\n  - name: prod\n    expect_every: 4m\n    bots: [ops]\n"
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    grace: 5m\n",
         "heartbeats.0: grace (5m) must be shorter than expect_every (4m)"),
        ("    bots: [opz]\n", "heartbeats[0].bots: no bot named 'opz' (did you mean 'ops'?)"),
        ("    expect_evry: 1m\n", "heartbeats.0.expect_evry: unknown key; did you mean "
                                  "'expect_every'?"),
        ("    sources: [alertmanger]\n", "unknown source 'alertmanger' (did you mean "
                                         "'alertmanager'?)"),
        ("    sources: ['webhook:crn']\n",
         "heartbeats[0].sources: no webhook named 'crn' under webhooks (did you mean 'cron'?)"),
        ("    sources: []\n", "heartbeats.0.sources: list at least one source"),
        ("    matchers: ['alertname=~\"(\"']\n", "invalid regular expression"),
        # none at all would match, and take, every alert Alertmanager sends: nothing routed
        ("    matchers: []\n",
         "heartbeats[0].matchers: list at least one matcher for alertmanager"),
        ("    template: '{title} {last_sen}'\n",
         "heartbeats.0.template: unknown placeholder {last_sen} (did you mean 'last_seen'?)"),
        ("    recovery_template: ' '\n", "heartbeats.0.recovery_template: must not be empty"),
        ("  - name: prod\n    expect_every: 1m\n    bots: [ops]\n",
         "heartbeats[1].name: 'prod' is given twice"),
        ("  - name: 'a b'\n    expect_every: 1m\n    bots: [ops]\n", "'a b' is not a heartbeat"),
    ],
)  # fmt: skip
def test_config_errors_name_the_field(extra: str, expected: str) -> None:
    text = BASE.replace("    expect_every: 4m\n    bots: [ops]\n", "    expect_every: 4m\n")
    if not extra.startswith("    bots"):
        text += "    bots: [ops]\n"
    with pytest.raises(ConfigError) as caught:
        load_config(text=text + extra)
    assert expected in str(caught.value)


def test_defaults() -> None:
    [beat] = load_config(text=BASE).heartbeats
    assert beat.matchers == ['alertname="Watchdog"'] and beat.sources == ["alertmanager"]
    assert (beat.expect_every, beat.grace) == (240.0, 60.0)
    assert beat.group_id == "heartbeat:prod" and beat.display == "Alertmanager prod"


# --------------------------------------------------------------------------- taking


def _watchdog(at: datetime | None = None, *, also: bool = False, status: str = "firing"
              ) -> dict[str, Any]:  # fmt: skip
    payload = alertmanager_firing(at or datetime.fromtimestamp(NOW, UTC))
    dog = copy.deepcopy(payload["alerts"][0])
    dog["labels"] = {"alertname": "Watchdog", "severity": "none"}
    dog["fingerprint"] = "00000000000000aa"
    dog["status"] = status
    payload["alerts"] = [dog, *payload["alerts"]] if also else [dog]
    payload["status"] = "firing" if also or status == "firing" else "resolved"
    payload["groupLabels"] = {} if also else {"alertname": "Watchdog"}
    payload["commonLabels"] = {} if also else dict(dog["labels"])
    return payload


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _config(**beat: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "base_url": "http://127.0.0.1:9",
            "store": "memory://",
            "timezone": "Asia/Shanghai",
            "bots": {"ops": {"key": "k1"}, "lead": {"key": "k2", "msgtype": "text"}},
            "webhooks": {"cron": {"bots": ["ops"]}},
            "heartbeats": [
                {"name": "prod", "expect_every": "4m", "grace": "1m", "bots": ["ops", "lead"],
                 **beat},
                {"name": "cron", "sources": ["webhook:cron"], "matchers": [],
                 "expect_every": "1d", "bots": ["ops"]},
            ],
        }
    )  # fmt: skip


def _runtime(config: GatewayConfig, clock: Any) -> tuple[Runtime, MemoryOutbox]:
    store = MemoryOutbox(clock=clock)
    history = HistoryRecorder(MemoryHistory(), store, clock=clock, secrets=lambda: ["k1", "k2"])
    runtime = build_runtime(
        config, store=store, metrics=GatewayMetrics(), clock=clock, history=history
    )
    return runtime, store


def test_only_matching_alerts_are_taken_and_only_firing_ones_beat() -> None:
    runtime, _ = _runtime(_config(), Clock())
    mixed = parse_alertmanager(_watchdog(also=True))
    taken = take(runtime.heartbeats, mixed)
    assert [h.name for h in taken.beats] == ["prod"] and taken.taken == {"prod": 1}
    assert taken.rest is not None
    assert [a.labels["alertname"] for a in taken.rest.alerts] == ["HighCPU", "HighCPU"]
    alone = take(runtime.heartbeats, parse_alertmanager(_watchdog()))
    assert alone.rest is None and [h.name for h in alone.beats] == ["prod"]
    resolved = take(runtime.heartbeats, parse_alertmanager(_watchdog(status="resolved")))
    assert resolved.rest is None and resolved.beats == () and resolved.taken == {"prod": 1}
    other = parse_alertmanager(alertmanager_firing())
    assert take(runtime.heartbeats, other).rest is other
    # A webhook heartbeat takes the whole call, of its webhook only.
    call = parse_generic("cron", {"job": "backup"})
    assert [h.name for h in take(runtime.heartbeats, call).beats] == ["cron"]
    assert take(runtime.heartbeats, parse_generic("other", {})).taken == {}


async def test_a_watchdog_beside_alerts_is_not_routed() -> None:
    runtime, _ = _runtime(_config(), Clock())
    planned = await plan(runtime, parse_alertmanager(_watchdog(also=True)), None, now=NOW)
    assert planned.taken == ["default"]
    assert len(planned.notification.alerts) == 2
    payload = planned.planned[0].payload["markdown"]["content"]
    assert "Watchdog" not in payload and "HighCPU" in payload
    alone = await plan(runtime, parse_alertmanager(_watchdog()), None, now=NOW)
    assert alone.planned == [] and alone.taken == []


# --------------------------------------------------------------------------- scheduling


async def _drain(store: MemoryOutbox, bot: str) -> list[str]:
    records = await store.claim(bot, limit=100, lease_seconds=30)
    await store.ack([r.id for r in records])
    out = []
    for r in records:
        body = r.payload[r.payload["msgtype"]]
        out.append(body["content"])
    return out


async def test_armed_at_start_beats_rearm_one_miss_then_one_recovery() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    assert await escalator.run_once() == 0  # arms both heartbeats, from now
    [prod, cron] = await switch.states(runtime)
    assert (prod.state, prod.expected_by, cron.state) == ("waiting", NOW + 300, "waiting")
    watchdog = parse_alertmanager(_watchdog())
    for step in (100, 200, 300, 400):  # beats every 100 s: never missing
        clock.now = NOW + step
        await switch.beat(runtime, runtime.heartbeats[0], watchdog, now=clock.now)
        assert await escalator.run_once() == 0
    [prod, _] = await switch.states(runtime)
    assert (prod.state, prod.last_seen, prod.expected_by) == ("ok", NOW + 400, NOW + 700)
    clock.now = NOW + 699.9
    assert await escalator.run_once() == 0
    clock.now = NOW + 700
    assert await escalator.run_once() == 1
    for later in (701, 2000, 9000):  # missing stays one message
        clock.now = NOW + later
        assert await escalator.run_once() == 0
    [miss] = await _drain(store, "ops")
    [miss_text] = await _drain(store, "lead")
    assert miss.startswith("**⚠️ 告警链路中断：Alertmanager prod 已 5m 未发送心跳**")
    assert "最后一次心跳：2027-01-15 16:06:40 CST" in miss  # NOW + 400 s, in Asia/Shanghai
    assert "来自 alertmanager · receiver wecom-bot · http://alertmanager.example.com:9093" in miss
    assert miss_text.startswith("⚠️ 告警链路中断") and "**" not in miss_text
    assert runtime.metrics is not None
    assert runtime.metrics.heartbeat_missing.labels("prod")._value.get() == 1.0
    [prod, _] = await switch.states(runtime)
    assert (prod.state, prod.expected_by) == ("missing", NOW + 700)
    # It comes back: one recovery, with the gap; the next beats say nothing.
    clock.now = NOW + 9400
    watchdog_back = parse_alertmanager(_watchdog())
    assert (
        await switch.beat(runtime, runtime.heartbeats[0], watchdog_back, now=clock.now)
    ).name == "RESUMED"
    for later in (9500, 9600):
        clock.now = NOW + later
        await switch.beat(runtime, runtime.heartbeats[0], watchdog_back, now=clock.now)
    [back] = await _drain(store, "ops")
    assert back.startswith("**✅ 告警链路恢复：Alertmanager prod 的心跳又来了，中断了 2h 30m**")
    assert await _drain(store, "ops") == []
    assert runtime.metrics.heartbeat_missing.labels("prod")._value.get() == 0.0
    assert runtime.metrics.heartbeat_last_seen.labels("prod")._value.get() == NOW + 9600
    assert runtime.history is not None
    entries = await runtime.history.history.search(HistoryQuery(source="heartbeat"))
    assert sorted(e.title for e in entries) == ["heartbeat prod back", "heartbeat prod missing"]


async def test_never_seen_is_reported_once_too() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    await escalator.run_once()
    clock.now = NOW + 300
    assert await escalator.run_once() == 1  # prod; cron waits a day
    [miss] = await _drain(store, "ops")
    assert "最后一次心跳：从未收到（自 2027-01-15 16:00:00 CST 起等待）" in miss
    # A restarted gateway (a new escalator, the same store) does not arm it again.
    again = Escalator(lambda: runtime, clock=clock)
    clock.now = NOW + 3000
    assert await again.run_once() == 0
    [prod, _] = await switch.states(runtime)
    assert prod.state == "missing"


@pytest.mark.parametrize("step", [3600.0, -3600.0])
async def test_a_wall_clock_step_neither_fires_a_false_miss_nor_hides_a_real_one(
    step: float,
) -> None:
    wall = [NOW]
    mono = [1000.0]
    steady = SteadyClock(wall=lambda: wall[0], monotonic=lambda: mono[0])
    runtime, store = _runtime(_config(), steady)
    escalator = Escalator(lambda: runtime, clock=steady)
    await escalator.run_once()
    watchdog = parse_alertmanager(_watchdog())
    await switch.beat(runtime, runtime.heartbeats[0], watchdog, now=steady())
    wall[0] += step  # right after the beat; expect_every + grace is 300 s
    fired_after = None
    for elapsed in range(1, 400):
        mono[0] += 1
        wall[0] += 1
        if await escalator.run_once():
            fired_after = elapsed
            break
    # The clock only slews toward the stepped wall clock (10 % at most): the miss comes
    # after 300 s of real time, give or take that, not at once (forward) nor an hour late (back).
    assert fired_after is not None and 300 / 1.1 <= fired_after <= 300 / 0.9 + 1
    assert len(await _drain(store, "ops")) == 1


async def test_templates_fill_placeholders_with_escaped_values() -> None:
    clock = Clock()
    runtime, store = _runtime(
        _config(template="{title} down since {last_seen} via {source}",
                recovery_template="{name} back after {gap}"),
        clock,
    )  # fmt: skip
    escalator = Escalator(lambda: runtime, clock=clock)
    await escalator.run_once()
    hostile = _watchdog()
    hostile["receiver"] = "<@all>\n[x](http://evil)"
    await switch.beat(runtime, runtime.heartbeats[0], parse_alertmanager(hostile), now=NOW)
    clock.now = NOW + 300
    assert await escalator.run_once() == 1
    [miss] = await _drain(store, "ops")
    assert miss.startswith("Alertmanager prod down since 2027-01-15 16:00:00 CST via ")
    assert "\n" not in miss and "<@all>" not in miss and "[x](http://evil)" not in miss
    clock.now = NOW + 400
    await switch.beat(runtime, runtime.heartbeats[0], parse_alertmanager(_watchdog()),
                      now=clock.now)  # fmt: skip
    assert await _drain(store, "ops") == ["prod back after 6m"]


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
async def test_the_built_in_miss_message_escapes_a_hostile_sender_in_every_msgtype(
    msgtype: str,
) -> None:
    # The receiver is the sender's text: it must not add a line, mention anyone, link or style.
    async def miss_after(receiver: str) -> str:
        clock = Clock()
        config = GatewayConfig.model_validate({
            "base_url": "http://127.0.0.1:9", "store": "memory://", "timezone": "Asia/Shanghai",
            "bots": {"ops": {"key": "k1", "msgtype": msgtype}},
            "heartbeats": [{"name": "prod", "expect_every": "4m", "grace": "1m", "bots": ["ops"]}],
        })  # fmt: skip
        runtime, store = _runtime(config, clock)
        escalator = Escalator(lambda: runtime, clock=clock)
        await escalator.run_once()
        beat = _watchdog()
        beat["receiver"] = receiver
        await switch.beat(runtime, runtime.heartbeats[0], parse_alertmanager(beat), now=NOW)
        clock.now = NOW + 300
        assert await escalator.run_once() == 1
        [miss] = await _drain(store, "ops")
        return miss

    plain = await miss_after("wecom")
    hostile = await miss_after('<@all>\n[x](http://evil) **b** <font color="warning">r</font>')
    assert hostile.count("\n") == plain.count("\n")
    for raw in ("<@all>", "[x](http://evil)", "<font", "\n[x]"):
        assert raw not in hostile
    if msgtype != "text":
        assert "**b**" not in hostile


async def test_a_heartbeat_no_longer_configured_is_forgotten_when_it_fires() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    await escalator.run_once()
    config = runtime.config.model_copy(update={"heartbeats": runtime.config.heartbeats[1:]})
    reloaded = build_runtime(config, store=store, metrics=None, clock=clock)
    escalator = Escalator(lambda: reloaded, clock=clock)
    clock.now = NOW + 300
    assert await escalator.run_once() == 1
    assert await store.get_group("heartbeat:prod") is None
    assert await store.pending_count() == 0


# --------------------------------------------------------------------------- check, routes test

CHECKED = """\
bots: {ops: {key_env: HEARTBEAT_TEST_UNSET_KEY}}
routes:
  - name: watchdog
    matchers: ['alertname="Watchdog"']
    bots: [ops]
heartbeats:
  - name: prod
    expect_every: 5m
    bots: [ops]
"""


def test_check_writes_the_messages_and_says_a_route_never_sees_the_watchdog(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CHECKED, "utf-8")
    report = check_config(path)
    assert report["ok"] is True
    [beat] = report["heartbeats"]
    assert (beat["name"], beat["expect_every"], beat["grace"]) == ("prod", 300.0, 60.0)
    assert [(m["kind"], m["msgtype"]) for m in beat["messages"]] == [
        ("miss", "markdown"), ("recovery", "markdown"),
    ]  # fmt: skip
    assert "⚠️ 告警链路中断：Alertmanager prod 已 6m 未发送心跳" in beat["messages"][0]["preview"]
    assert any(
        'heartbeat prod: alerts matching alertname="Watchdog" are taken by the heartbeat '
        "before routing; route(s) watchdog" in note
        for note in report["notes"]
    )
    assert any("repeat it more often than every 5m" in note for note in report["notes"])


def test_routes_test_says_a_watchdog_is_taken_by_the_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CHECKED, "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "wecom_bot", "gateway", "routes", "test", "-c", str(path),
         "alertname=Watchdog"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "taken by heartbeat prod: 1 alert(s), not routed" in lines
    assert "alertmanager firing {alertname='Watchdog'}: 0 route(s)" in lines
    traced = trace_routes(path, notification_for_labels({"alertname": "Other"}, NOW), NOW)
    assert traced["heartbeats"] == [] and [r["route"] for r in traced["routes"]] == ["default"]
