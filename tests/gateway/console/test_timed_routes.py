"""Time-interval routing and on-call mentions, on an injected clock, through a served gateway."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.emulator.conftest import Emu
from tests.gateway.harness import emulator_contents, running_gateway, wait_for
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.config import load_config
from wecom_bot.gateway.samples import alertmanager_firing

from .support import BASIC, Console, canary_key, console_config, secrets_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday, 03:00 in Shanghai: outside business hours, inside the night.
NIGHT = datetime(2026, 11, 25, 3, 0, tzinfo=SHANGHAI).timestamp()
NINE = datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI).timestamp()

INTERVALS = {
    "business_hours": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "18:00"}]}
    ],
    "night": [{"times": [{"start_time": "22:00", "end_time": "06:00"}]}],
}


def route(name: str, team: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "matchers": [f'team="{team}"'], "bots": ["ops"], **extra}


def alert(team: str, severity: str = "warning") -> dict[str, Any]:
    payload = alertmanager_firing()
    payload["groupKey"] = f"{{}}:{{team={team}}}"
    payload["commonLabels"] = {"team": team, "severity": severity}
    for i, item in enumerate(payload["alerts"]):
        item["labels"] = {**item["labels"], "team": team, "severity": severity}
        item["fingerprint"] = f"{team}-{i}"
    return payload


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_muted_routes_keep_drop_or_defer_and_oncall_is_mentioned(emu: Emu) -> None:
    key = canary_key()
    clock = Clock(NIGHT)
    config = console_config(
        emu.url,
        key,
        "memory://",
        time_intervals=INTERVALS,
        oncall={"primary": {"users": ["alice", "bob"], "every": "day", "start": "2026-11-24"}},
        routes=[
            route("kept", "a", active_time_intervals=["business_hours"]),
            route("dropped", "b", mute_time_intervals=["night"], muted="drop"),
            route("deferred", "c", active_time_intervals=["business_hours"], muted="defer"),
            route("paging", "d", mute_time_intervals=["business_hours"], oncall="primary"),
        ],
    )
    with running_gateway(config, clock=clock) as gw:
        console = Console(gw, secrets_of(key))

        def send(payload: dict[str, Any]) -> dict[str, Any]:
            # wait: the answer reports what each route did with it.
            answer = gw.post("/alertmanager?wait=true", payload, headers={"Authorization": BASIC})
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        team_a = alert("a")
        kept, dropped, deferred = send(team_a), send(alert("b")), send(alert("c"))
        assert kept["muted"] == ["kept"] and kept["messages"] == 0
        assert dropped["muted"] == ["dropped"] and dropped["messages"] == 0
        assert deferred["messages"] == 1 and deferred["deferred"] == 1
        paging = send(alert("d", severity="critical"))
        assert paging["muted"] == [] and paging["messages"] == 1

        # Only the active route's message arrives, mentioning today's on-call (bob, day 2).
        wait_for(lambda: len(emulator_contents(emu, key)) == 1, what="the paging message")
        [first] = emulator_contents(emu, key)
        assert "<@bob>" in first["markdown"]["content"]

        def entry(outcome: dict[str, Any]) -> dict[str, Any]:
            data: dict[str, Any] = console.json(f"/api/v1/history/{outcome['notification_id']}")
            return data

        held = entry(kept)
        assert held["state"] == "muted" and held["messages"][0]["record_id"] is None
        assert "outside active_time_intervals business_hours" in held["events"][0]["detail"]
        assert 'class="wb-msg' in held["messages"][0]["html"]  # kept, visible, not sent
        assert entry(dropped)["state"] == "dropped"
        assert "inside mute_time_intervals night" in entry(dropped)["events"][0]["detail"]
        waiting = entry(deferred)
        assert waiting["state"] == "deferred"
        assert waiting["messages"][0]["muted"]["resumes_at"] == NINE
        assert waiting["records"][0]["next_attempt_at"] == NINE

        routes = {r["name"]: r for r in console.json("/api/v1/status")["routes"]}
        assert routes["kept"]["state"] == "muted" and routes["kept"]["muted"]["resumes_at"] == NINE
        assert routes["dropped"]["muted"]["action"] == "drop"
        assert routes["paging"]["state"] == "active" and routes["paging"]["oncall"] == "bob"

        # A sender's retry of a muted notification is recognised, not recorded twice.
        again = send(team_a)
        assert again["status"] == "duplicate"
        assert len(entry(kept)["messages"]) == 1

        # At 09:00 the deferred message goes out; muted-keep and dropped ones never do.
        clock.now = NINE + 1
        wait_for(lambda: len(emulator_contents(emu, key)) == 2, what="the deferred message")
        wait_for(lambda: entry(deferred)["state"] == "delivered", what="deferred delivered")
        assert entry(kept)["state"] == "muted" and entry(dropped)["state"] == "dropped"
        assert console.json("/api/v1/status")["routes"][0]["state"] == "active"
        muted_now = {r["name"]: r["state"] for r in console.json("/api/v1/status")["routes"]}
        assert muted_now["paging"] == "muted" and muted_now["dropped"] == "active"
        found = console.json("/api/v1/history", params={"state": "muted"})["entries"]
        assert [e["id"] for e in found] == [kept["notification_id"]]


@pytest.mark.parametrize(
    ("route_extra", "message"),
    [
        ({"active_time_intervals": ["buisness_hours"]}, "did you mean 'business_hours'"),
        ({"muted": "defre"}, "routes.0.muted"),
        ({"oncall": "primry"}, "no rotation named 'primry'"),
        ({"mute_time_interval": ["night"]}, "did you mean 'mute_time_intervals'"),
    ],
)
def test_bad_timed_route_config_names_the_field(route_extra: dict[str, Any], message: str) -> None:
    import yaml

    data = {
        "bots": {"ops": {"key": "k"}},
        "time_intervals": INTERVALS,
        "oncall": {"primary": {"users": ["alice"], "every": "week", "start": "2026-11-23"}},
        "routes": [route("r", "a", **route_extra)],
    }
    with pytest.raises(ConfigError, match=message):
        load_config(text=yaml.safe_dump(data))
