"""A gateway process whose wall clock steps (the LD_PRELOAD shim of tests/clockshim.py moves
its CLOCK_REALTIME, not its monotonic clock, as an NTP step does), against the emulator at a
scaled window: a step back does not stop delivery, a step forward does not fire the timers of
the next hour at once (issue 26, items 1 and 2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clockshim import ClockShim
from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import GatewayProcess, gateway_config, one_alert, wait_for, write_config
from tests.redis_server import free_port
from tests.test_dispatcher import accepted_texts, all_entries, max_in_window
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec

pytestmark = pytest.mark.slow

WINDOW = 1.0
HOUR = 3600.0


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClockShim:
    """The shim, loaded into every child process the test starts (not into the test's)."""
    built = ClockShim(tmp_path)
    for name, value in built.env().items():
        monkeypatch.setenv(name, value)
    return built


def _config(emu: Emu, key: str, tmp_path: Path, **overrides: Any) -> Path:
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'outbox.db'}",
        coalesce_after="1d", storm_interval="0s",  # one message per notification: countable
        **overrides,
    )  # fmt: skip
    return write_config(tmp_path / "gw.yaml", config)


def test_a_step_back_of_an_hour_does_not_stop_delivery(
    emu: Emu, tmp_path: Path, shim: ClockShim
) -> None:
    key = new_key()
    gateway = GatewayProcess(_config(emu, key, tmp_path), free_port())
    gateway.start()
    names = [f"StepBack-{i:03d}" for i in range(120)]
    try:
        with httpx.Client(timeout=10) as client:
            for name in names:
                answer = client.post(gateway.url + "/alertmanager", json=one_alert(name))
                assert answer.status_code == 200, answer.text
        wait_for(lambda: len(accepted_texts(emu, key)) >= 25, what="the first windows delivered")
        shim.set(-HOUR)
        stepped = time.time()
        left = len(names) - len(accepted_texts(emu, key))
        wait_for(lambda: len(accepted_texts(emu, key)) >= len(names), timeout=60,
                 what="everything queued delivered after the step")  # fmt: skip
        took = time.time() - stepped
        assert httpx.get(gateway.url + "/readyz", timeout=5).status_code == 200
    finally:
        gateway.stop()
    contents = accepted_texts(emu, key)
    assert len(contents) == len(names)  # 0 duplicated messages
    for name in names:  # 0 lost, 0 duplicated alerts
        assert sum(f"{name} " in c or c.endswith(name) or f"{name}\n" in c for c in contents) == 1
    entries = all_entries(emu, key)
    assert [e["errcode"] for e in entries if e["status"] != "accepted"] == []
    assert max_in_window([e["received_at"] for e in entries], WINDOW) <= 20
    log = gateway.log.read_text("utf-8")
    assert "the wall clock stepped back by 3600" in log
    print(f"\nstep back: {left} queued at the step, all delivered {took:.1f} s later "
          f"({left / 20:.1f} windows of sends)")  # fmt: skip


def test_a_step_forward_of_an_hour_fires_only_what_is_due(
    emu: Emu, tmp_path: Path, shim: ClockShim
) -> None:
    key = new_key()
    routes = [{
        "name": "paging", "matchers": ['severity="critical"'], "bots": ["ops"],
        "escalate": [{"after": "3s", "mention": ["lead"]}, {"after": "30m"}],
        "remind_every": "1h",
    }]  # fmt: skip
    path = _config(emu, key, tmp_path, routes=routes)
    gateway = GatewayProcess(path, free_port())
    gateway.start()
    names = [f"StepAhead-{i:02d}" for i in range(12)]
    try:
        with httpx.Client(timeout=10) as client:
            for name in names:
                alert = one_alert(name)
                alert["commonLabels"]["severity"] = "critical"
                alert["alerts"][0]["labels"]["severity"] = "critical"
                answer = client.post(gateway.url + "/alertmanager", json=alert)
                assert answer.status_code == 200, answer.text
        shim.set(HOUR)  # before the first step is due: the 30 min step and the reminder
        # are due by the new wall clock, not by the time that passed.

        def fired() -> list[dict[str, Any]]:
            answer = httpx.get(
                gateway.url + "/api/v1/history", params={"source": "escalation", "limit": 500},
                timeout=5,
            )  # fmt: skip
            return list(answer.json()["entries"])

        wait_for(lambda: len(fired()) >= len(names), timeout=20, what="the first steps")
        time.sleep(3)  # a few polls more: anything else due would have fired
        entries = fired()
    finally:
        gateway.stop()
    steps = [(e["detail"]["group"], e["detail"]["kind"], e["detail"]["step"]) for e in entries]
    assert len(steps) == len(names) == len(set(steps))  # each group's first step, once
    assert {kind for _, kind, _ in steps} == {"escalate"}
    assert len({step for _, _, step in steps}) == 1
    emulator = all_entries(emu, key)
    assert [e["errcode"] for e in emulator if e["status"] != "accepted"] == []
    assert max_in_window([e["received_at"] for e in emulator], WINDOW) <= 20
    assert "the wall clock stepped forward by 3600" in gateway.log.read_text("utf-8")
