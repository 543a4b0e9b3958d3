"""End to end with a real Alertmanager (Debian's prometheus-alertmanager) and a gateway
process: alerts pushed to Alertmanager arrive in the emulator rendered, then resolved; a
gateway killed mid-stream and restarted loses nothing."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.alertmanager import alertmanagers
from tests.gateway.harness import (
    GatewayProcess,
    emulator_contents,
    gateway_config,
    wait_for,
    write_config,
)
from tests.redis_server import free_port
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec

pytestmark = pytest.mark.alertmanager


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Any]:
    with alertmanagers(tmp_path) as start:
        yield start


def _push(am_url: str, alerts: list[dict[str, Any]]) -> None:
    answer = httpx.post(am_url + "/api/v2/alerts", json=alerts, timeout=5)
    assert answer.status_code == 200, answer.text


def _alert(name: str, *, ends: dt.datetime | None = None, **labels: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} summary", "description": "from the e2e test"},
        "startsAt": (now - dt.timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return alert


def _texts(emu: Emu, key: str) -> list[str]:
    return [p[p["msgtype"]]["content"] for p in emulator_contents(emu, key)]


def test_alerts_through_a_real_alertmanager_arrive_then_resolve(
    emu: Emu, tmp_path: Path, alertmanager: Any
) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[])
    gateway = GatewayProcess(write_config(tmp_path / "gw.yaml", config), free_port())
    gateway.start()
    try:
        am = alertmanager(f"{gateway.url}/alertmanager")
        _push(am, [_alert("DiskFull", instance="db-1", severity="warning")])
        wait_for(lambda: any("DiskFull" in t and "FIRING" in t for t in _texts(emu, key)),
                 timeout=30, what="the firing notification")  # fmt: skip
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        _push(am, [_alert("DiskFull", ends=past, instance="db-1", severity="warning")])
        wait_for(lambda: any("DiskFull" in t and "RESOLVED" in t for t in _texts(emu, key)),
                 timeout=30, what="the resolved notification")  # fmt: skip
    finally:
        gateway.stop()
    texts = _texts(emu, key)
    assert "db-1" in texts[0] and "DiskFull summary" in texts[0]


def test_gateway_killed_mid_stream_and_restarted_loses_nothing(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    # a slow emulator window keeps messages queued while the gateway is killed
    config = gateway_config(
        emu.url,
        key,
        f"sqlite:///{tmp_path / 'o.db'}",
        routes=[],
        rate="2/1s",
        coalesce_after="1h",
        lease="2s",
    )
    gateway = GatewayProcess(write_config(tmp_path / "gw.yaml", config), free_port())
    gateway.start()
    accepted = 0
    try:
        for i in range(12):
            payload = {
                "version": "4", "status": "firing", "receiver": "wecom",
                "groupKey": f"{{}}:{{alertname=\"Storm{i}\"}}",
                "groupLabels": {"alertname": f"Storm{i}"},
                "commonLabels": {"alertname": f"Storm{i}"}, "commonAnnotations": {},
                "externalURL": "http://am.example", "truncatedAlerts": 0,
                "alerts": [{"status": "firing", "labels": {"alertname": f"Storm{i}"},
                            "annotations": {}, "startsAt": "2026-11-25T10:00:00Z",
                            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                            "fingerprint": f"{i:016x}"}],
            }  # fmt: skip
            answer = httpx.post(gateway.url + "/alertmanager", json=payload, timeout=5)
            assert answer.status_code == 200
            accepted += 1
        time.sleep(0.5)
        gateway.kill()  # SIGKILL: no graceful anything
        assert len(_texts(emu, key)) < accepted
        gateway.start()
        wait_for(lambda: len({t for t in _texts(emu, key)}) >= accepted, timeout=60,
                 what="every accepted alert after the restart")  # fmt: skip
    finally:
        gateway.stop()
    texts = _texts(emu, key)
    for i in range(12):
        assert any(f"Storm{i}" in t for t in texts), f"Storm{i} lost"
    assert len(texts) - accepted <= 1  # only a send in flight at the kill may repeat
    assert os.path.exists(tmp_path / "o.db")
