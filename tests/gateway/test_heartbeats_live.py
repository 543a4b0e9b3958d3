"""Heartbeats on real servers and real short time (issue 29): a real Alertmanager repeating a
Watchdog every second into gateway processes, the emulator as the group.

* SQLite, one gateway with the clock-step shim: while the Watchdog beats nothing is sent, even
  across a wall-clock step of an hour forward; Alertmanager SIGSTOPped (and the wall clock
  stepped two hours back) → exactly one miss message within expect_every + grace + 5 s;
  SIGCONT → exactly one recovery. Then Alertmanager killed and the gateway SIGKILLed and
  restarted during the gap → still exactly one miss (no repeat after a second restart either);
  a new Alertmanager with the Watchdog → exactly one recovery.
* Redis, two gateways both receiving every beat → one message per miss and per recovery.

expect_every is 4 s and grace 1 s; every wait is bounded, and the only deadline asserted is
the issue's (the miss within expect_every + grace + 5 s of the stop).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.clockshim import ClockShim
from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.alertmanager import alertmanagers
from tests.gateway.harness import GatewayProcess, gateway_config, wait_for, write_config
from tests.redis_server import free_port, redis_server
from tests.test_dispatcher import accepted_texts

pytestmark = pytest.mark.slow

EXPECT_EVERY = 4.0
GRACE = 1.0
DEADLINE = EXPECT_EVERY + GRACE + 5.0
MISS = "⚠️ 告警链路中断：Alertmanager prod"
BACK = "✅ 告警链路恢复：Alertmanager prod"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running() as emulator:
        yield emulator


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Callable[..., str]]:
    with alertmanagers(tmp_path) as start:
        yield start


def _push_watchdog(am_url: str) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "the alerting pipeline is alive"},
        "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    answer = httpx.post(am_url + "/api/v2/alerts", json=[alert], timeout=5)
    assert answer.status_code == 200, answer.text


def _config(emu: Emu, key: str, tmp_path: Path, store: str) -> Path:
    config = gateway_config(
        emu.url, key, store, lease="2s",
        heartbeats=[{"name": "prod", "expect_every": f"{EXPECT_EVERY:g}s",
                     "grace": f"{GRACE:g}s", "bots": ["ops"]}],
    )  # fmt: skip
    return write_config(tmp_path / "gw.yaml", config)


def _last_seen(gateway: GatewayProcess) -> float:
    text = httpx.get(gateway.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('wecom_bot_heartbeat_last_seen_timestamp_seconds{heartbeat="prod"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _beating(gateways: list[GatewayProcess], since: float) -> bool:
    return any(_last_seen(g) > since for g in gateways)


def _count(emu: Emu, key: str, head: str) -> int:
    return sum(1 for text in accepted_texts(emu, key) if head in text)


def _wait_count(emu: Emu, key: str, head: str, count: int) -> None:
    wait_for(lambda: _count(emu, key, head) >= count, timeout=10, what=f"{head!r} x{count}")


def _settle(seconds: float) -> None:
    """Let real time pass: what must not happen gets the chance to."""
    time.sleep(seconds)


def _miss_within_deadline(emu: Emu, key: str, expected: int, stopped_at: float) -> None:
    """Miss number ``expected`` must arrive within the issue's deadline after the sender
    stopped (measured on this process's clock, which no shim moves)."""
    left = stopped_at + DEADLINE - time.monotonic()
    wait_for(lambda: _count(emu, key, MISS) >= expected, timeout=max(left, 0.0),
             what=f"miss message {expected} within {DEADLINE:g}s of the stop")  # fmt: skip


def test_one_gateway_on_sqlite_one_miss_one_recovery_across_steps_and_restarts(
    emu: Emu, tmp_path: Path, am: Callable[..., str]
) -> None:
    key = new_key()
    shim = ClockShim(tmp_path)
    gateway = GatewayProcess(
        _config(emu, key, tmp_path, f"sqlite:///{tmp_path / 'outbox.db'}"), free_port(),
        env=shim.env(),
    )  # fmt: skip
    # Alertmanager first, already repeating the Watchdog: the gateway arms the heartbeat when
    # it starts, and a slow start must not pass for a gap.
    am_url = am(gateway.url + "/alertmanager", repeat_interval="1s")
    first: subprocess.Popen[bytes] = am.procs[-1]  # type: ignore[attr-defined]
    _push_watchdog(am_url)
    gateway.start()
    try:
        wait_for(lambda: _beating([gateway], 0), timeout=10, what="the first beat")
        # Beating: nothing is sent, even when the wall clock steps an hour forward.
        before = _last_seen(gateway)
        shim.set(3600.0)
        _settle(EXPECT_EVERY + GRACE + 2)
        assert accepted_texts(emu, key) == []
        assert _last_seen(gateway) > before  # still beating
        assert "the wall clock stepped forward by 36" in gateway.log.read_text()
        # Alertmanager stops (and the wall clock steps two hours back): one miss, in time.
        first.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        shim.set(-3600.0)
        _miss_within_deadline(emu, key, 1, stopped)
        _settle(2)
        assert _count(emu, key, MISS) == 1 and len(accepted_texts(emu, key)) == 1
        first.send_signal(signal.SIGCONT)
        wait_for(lambda: _count(emu, key, BACK) >= 1, timeout=10, what="the recovery")
        _settle(2)
        assert _count(emu, key, BACK) == 1 and len(accepted_texts(emu, key)) == 2
        [miss, back] = accepted_texts(emu, key)
        assert "来自 alertmanager · receiver wecom · " + am_url in miss
        assert "中断了" in back
        # The same with the gateway SIGKILLed and restarted during the gap (clock as it is).
        shim.set(0.0)
        first.kill()
        first.wait(5)
        stopped = time.monotonic()
        _settle(1)
        gateway.kill()
        gateway.start()
        _miss_within_deadline(emu, key, 2, stopped)
        gateway.kill()  # and again once it missed: no repeat
        gateway.start()
        _settle(2)
        assert _count(emu, key, MISS) == 2 and len(accepted_texts(emu, key)) == 3
        _push_watchdog(am(gateway.url + "/alertmanager", repeat_interval="1s"))
        wait_for(lambda: _count(emu, key, BACK) >= 2, timeout=10, what="the second recovery")
        _settle(2)
        assert _count(emu, key, BACK) == 2 and len(accepted_texts(emu, key)) == 4
        assert "Watchdog" not in "".join(accepted_texts(emu, key))  # never routed as an alert
    finally:
        gateway.stop()


@pytest.mark.redis
def test_two_gateways_on_one_redis_send_one_message_each_time(
    emu: Emu, tmp_path: Path, am: Callable[..., str]
) -> None:
    key = new_key()
    with redis_server(tmp_path) as redis_url:
        path = _config(emu, key, tmp_path, redis_url)
        gateways = [GatewayProcess(path, free_port()) for _ in range(2)]
        # Alertmanager sends every beat to both instances, from before they start.
        am_url = am([g.url + "/alertmanager" for g in gateways], repeat_interval="1s")
        proc: subprocess.Popen[bytes] = am.procs[-1]  # type: ignore[attr-defined]
        _push_watchdog(am_url)
        try:
            for gateway in gateways:
                gateway.start()
            wait_for(lambda: all(_beating([g], 0) for g in gateways), timeout=10,
                     what="both instances beating")  # fmt: skip
            _settle(EXPECT_EVERY + GRACE + 1)
            assert accepted_texts(emu, key) == []
            for cycle in (1, 2):
                proc.send_signal(signal.SIGSTOP)
                _miss_within_deadline(emu, key, cycle, time.monotonic())
                proc.send_signal(signal.SIGCONT)
                _wait_count(emu, key, BACK, cycle)
                _settle(2)
                assert (_count(emu, key, MISS), _count(emu, key, BACK)) == (cycle, cycle)
                assert len(accepted_texts(emu, key)) == 2 * cycle
        finally:
            for gateway in gateways:
                gateway.stop()
