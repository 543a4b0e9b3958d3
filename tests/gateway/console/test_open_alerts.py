"""The console's open alerts, from a real Alertmanager: the groups it notified are listed
with their state (firing since, next escalation), acknowledged and silenced through the console
API (the silence kept by that Alertmanager), and gone once resolved; behind the same
credentials and cross-site rules as the rest of the console."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu
from tests.gateway.alertmanager import alertmanagers
from tests.gateway.harness import running_gateway, wait_for, write_config

from .support import BASIC, TOKEN, Console, canary_key, console_config, secrets_of

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Any]:
    with alertmanagers(tmp_path) as start:
        yield start


def _push(am: str, name: str, severity: str, *, ended: bool = False) -> None:
    now = dt.datetime.now(dt.UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "severity": severity, "instance": "host-1"},
        "annotations": {"summary": f"{name} on host-1"},
        "startsAt": (now - dt.timedelta(minutes=3)).isoformat(),
    }
    if ended:
        alert["endsAt"] = now.isoformat()
    assert httpx.post(am + "/api/v2/alerts", json=[alert], timeout=5).status_code == 200


def _groups(console: Console) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in console.json("/api/v1/alerts")["groups"]}


def test_open_alerts_are_listed_acknowledged_and_silenced_from_the_console(
    emu: Emu, tmp_path: Path, alertmanager: Any
) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}",
        routes=[{"name": "critical", "matchers": ['severity="critical"'], "bots": ["ops"],
                 "escalate": [{"after": "1h", "mention": ["lead"]}], "remind_every": "2h"}],
    )  # fmt: skip
    path = write_config(tmp_path / "gw.yaml", config)
    with running_gateway(config, config_path=path) as gw:
        console = Console(gw, secrets_of(key))
        am = alertmanager(gw.url + "/alertmanager", bearer=TOKEN)
        # Silences go only to configured Alertmanagers: this one, now that its address is known.
        data = config.model_dump(mode="json", by_alias=True)
        write_config(path, type(config).model_validate(
            {**data, "alertmanagers": [{"name": "main", "url": am}]}))  # fmt: skip
        assert console.post("/api/v1/config/reload").json()["ok"] is True
        pushed = time.time()
        _push(am, "DiskFull", "critical")
        _push(am, "SlowQueries", "warning")
        wait_for(lambda: len(_groups(console)) == 2, timeout=20, what="two open groups")
        groups = _groups(console)
        disk, slow = groups["DiskFull"], groups["SlowQueries"]
        assert disk["state"] == "open" and disk["acknowledged_by"] is None
        assert ["alertname", "DiskFull"] in disk["labels"] and disk["routes"] == ["critical"]
        assert abs(disk["firing_since"] - (pushed - 180)) < 5  # the alert's own start
        assert pushed - 1 < disk["opened_at"] < time.time()
        nxt = disk["next"]
        assert nxt["kind"] == "escalate" and nxt["route"] == "critical"
        assert nxt["at"] == pytest.approx(disk["opened_at"] + 3600)
        assert nxt["mention"]["users"] == ["lead"]
        assert [t["kind"] for t in disk["timers"]] == ["escalate", "remind"]
        assert disk["can_silence"] is True
        assert slow["routes"] == ["default"] and slow["next"] is None and slow["timers"] == []

        # The same rules as the rest of the console: credentials, and no cross-site posts.
        path = f"/api/v1/alerts/{disk['id']}/acknowledge"
        assert gw.client.get("/api/v1/alerts").status_code == 401
        assert gw.client.post(path, json={"name": "x"}).status_code == 401
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            assert console.post(path, {"name": "x"}, headers=headers).status_code == 403
        form = {"Authorization": BASIC, "Content-Type": "application/x-www-form-urlencoded"}
        assert gw.client.post(path, content=b"name=x", headers=form).status_code == 415
        assert _groups(console)["DiskFull"]["state"] == "open"
        assert console.post(path, {"name": "  "}).status_code == 422
        assert console.post("/api/v1/alerts/nope/acknowledge", {"name": "x"}).status_code == 404

        answer = console.post(path, {"name": "王五"})
        assert answer.status_code == 200, answer.text
        disk = _groups(console)["DiskFull"]
        assert (disk["state"], disk["acknowledged_by"], disk["next"]) == (
            "acknowledged",
            "王五",
            None,
        )
        acks = console.json("/api/v1/history", params={"state": "acknowledged"})["entries"]
        assert [e["title"] for e in acks] == ["✅ 已认领 by 王五 · DiskFull"]

        silence = f"/api/v1/alerts/{slow['id']}/silence"
        assert console.post(silence, {"name": "ops", "duration": "9y"}).status_code == 422
        made = console.post(silence, {"name": "ops-lead", "duration": "4h"})
        assert made.status_code == 200, made.text
        [kept] = httpx.get(am + "/api/v2/silences", timeout=5).json()
        assert kept["id"] == made.json()["silence_id"] and kept["createdBy"] == "ops-lead"
        assert kept["matchers"] == [
            {"name": "alertname", "value": "SlowQueries", "isRegex": False, "isEqual": True}
        ]
        slow = _groups(console)["SlowQueries"]
        assert slow["state"] == "silenced" and slow["acknowledged_by"] == "ops-lead"
        assert slow["silenced_until"] == pytest.approx(time.time() + 4 * 3600, abs=10)

        # Resolved in Alertmanager: its resolved notification closes the group.
        _push(am, "DiskFull", "critical", ended=True)
        wait_for(lambda: "DiskFull" not in _groups(console), timeout=20, what="DiskFull resolved")
        assert list(_groups(console)) == ["SlowQueries"]
        page = console.get("/ui").text
        assert 'data-view="alerts"' in page and 'id="al-list"' in page
