"""The rate window outlives the gateway process: a gateway on SQLite SIGKILLed and restarted
on the same file, or reloaded, sends nothing the emulator refuses with 45009 (real gateway
process, real emulator over HTTP, a window scaled down to seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    GatewayProcess,
    gateway_config,
    one_alert,
    wait_for,
    write_config,
)
from tests.redis_server import free_port
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.masking import key_fingerprint

pytestmark = pytest.mark.slow

LIMIT = 20
WINDOW = 10.0
"""Long enough that a restarted process is serving again well inside the window."""


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(LIMIT, WINDOW))) as emulator:
        yield emulator


def _accepted_times(emu: Emu, key: str) -> list[float]:
    answer = emu.client.get(f"/api/groups/{key_fingerprint(key)}/messages", params={"limit": 1000})
    if answer.status_code == 404:
        return []
    return [e["received_at"] for e in answer.json()["messages"] if e["status"] == "accepted"]


def _refused_45009(emu: Emu, key: str) -> int:
    answer = emu.client.get(f"/api/groups/{key_fingerprint(key)}")
    return int(answer.json()["rate_limited"]) if answer.status_code == 200 else 0


def _post_alerts(gateway: GatewayProcess, prefix: str, count: int) -> None:
    for i in range(count):
        answer = httpx.post(
            gateway.url + "/alertmanager", json=one_alert(f"{prefix}{i}"), timeout=5
        )
        assert answer.status_code == 200, answer.text


def _most_in_any_window(times: list[float]) -> int:
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + WINDOW) for i, start in enumerate(times)),
        default=0,
    )


def _gateway(emu: Emu, key: str, tmp_path: Path) -> GatewayProcess:
    config = gateway_config(
        emu.url,
        key,
        f"sqlite:///{tmp_path / 'outbox.db'}",
        routes=[],
        rate=f"{LIMIT}/{WINDOW:g}s",
        # one message per alert, sent as soon as a slot frees: nothing folded, nothing paced
        coalesce_after="1h",
        storm_burst=LIMIT,
        storm_interval="0",
    )
    return GatewayProcess(write_config(tmp_path / "gw.yaml", config), free_port())


def _fill_the_window(emu: Emu, key: str, gateway: GatewayProcess) -> float:
    """Send ``LIMIT`` alerts and wait until all were accepted; returns when the first was."""
    _post_alerts(gateway, "Before", LIMIT)
    wait_for(lambda: len(_accepted_times(emu, key)) >= LIMIT, timeout=20, what="a full window")
    return min(_accepted_times(emu, key))


def _after_the_gap(emu: Emu, key: str, gateway: GatewayProcess, window_opened: float) -> None:
    # The case only means something if the gateway serves again while the window is full.
    assert time.time() < window_opened + WINDOW, "the gateway came back after the window ended"
    _post_alerts(gateway, "After", 5)
    wait_for(lambda: len(_accepted_times(emu, key)) >= LIMIT + 5, timeout=4 * WINDOW,
             what="the alerts sent after the gap")  # fmt: skip
    times = _accepted_times(emu, key)
    assert _refused_45009(emu, key) == 0
    assert len(times) == LIMIT + 5
    assert _most_in_any_window(times) <= LIMIT
    assert min(times[LIMIT:]) >= window_opened + WINDOW  # waited for the window, not sent early


def _across(emu: Emu, tmp_path: Path, gap: Callable[[GatewayProcess], None]) -> None:
    """Fill the window, go through ``gap``, send more: no 45009, no window over the limit."""
    key = new_key()
    gateway = _gateway(emu, key, tmp_path)
    gateway.start()
    try:
        opened = _fill_the_window(emu, key, gateway)
        gap(gateway)
        _after_the_gap(emu, key, gateway, opened)
    finally:
        gateway.stop()


def _kill_and_restart(gateway: GatewayProcess) -> None:
    gateway.kill()  # SIGKILL: the process writes nothing on its way out
    gateway.start()


def _reload(gateway: GatewayProcess) -> None:
    answer = httpx.post(gateway.url + "/-/reload", timeout=10)
    assert answer.status_code == 200 and answer.json()["ok"], answer.text


def test_a_sigkilled_gateway_restarted_on_its_store_gets_no_45009(emu: Emu, tmp_path: Path) -> None:
    _across(emu, tmp_path, _kill_and_restart)


def test_a_reloaded_gateway_keeps_its_window(emu: Emu, tmp_path: Path) -> None:
    _across(emu, tmp_path, _reload)
