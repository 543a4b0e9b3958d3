"""The store going away under a running gateway, and two gateways on one SQLite file (issue 26,
items 5 and 6), with real ``wecom-bot gateway`` processes, a real redis-server and the emulator:

* two gateways on one SQLite file: the second refuses to start (exit 2, the file, the holder,
  Redis as the way to run several); a SIGKILLed holder leaves no stale lock;
* the SQLite file deleted under a gateway holding 500 alerts answered 200: ``/readyz`` 503 at
  once, one ERROR line, the file written back, and after a SIGKILL and a restart every one of
  them is in the file and delivered;
* Redis restarted empty: ``/readyz`` 503 and one ERROR line; Redis without persistence: a
  WARNING at start;
* delivery stuck (a bot whose rate lets nothing out): ``/readyz`` 503, an ERROR line and
  ``wecom_bot_oldest_due_seconds``.

The figures of docs/deployment.md ("Failure modes") are printed with ``-s``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    GatewayProcess,
    gateway_config,
    one_alert,
    running_gateway,
    wait_for,
    write_config,
)
from tests.redis_server import free_port, redis_server
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.masking import key_fingerprint

ALERTS = 500


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


def readyz(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url + "/readyz", timeout=2)
    except httpx.HTTPError:
        return None


def metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def error_lines(log: Path, needle: str) -> list[str]:
    return [line for line in log.read_text("utf-8").splitlines() if needle in line]


def accepted_count(emu: Emu, key: str) -> int:
    answer = emu.client.get(f"/api/groups/{key_fingerprint(key)}")
    return 0 if answer.status_code == 404 else int(answer.json()["accepted"])


def test_a_second_gateway_on_one_sqlite_file_refuses_to_start(emu: Emu, tmp_path: Path) -> None:
    database = tmp_path / "outbox.db"
    config = write_config(
        tmp_path / "gw.yaml", gateway_config(emu.url, new_key(), f"sqlite:///{database}")
    )
    first = GatewayProcess(config, free_port())
    first.start()
    try:
        assert first.proc is not None
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "wecom_bot", "gateway", "--config", str(config),
             "--port", str(free_port())],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        refused_in = time.monotonic() - started
        said = second.stdout + second.stderr
        assert second.returncode == 2, said
        assert str(database) in said and "in use by another running gateway" in said
        assert f"pid {first.proc.pid}" in said and "redis://" in said
        ready = readyz(first.url)
        assert ready is not None and ready.status_code == 200  # the first one goes on
        recover = subprocess.run(
            [sys.executable, "-m", "wecom_bot", "gateway", "recover-store",
             "--config", str(config)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert recover.returncode == 2 and "stop the gateway first" in recover.stderr
        assert not list(tmp_path.glob("outbox.db.damaged-*"))  # nothing moved under it
        print(f"\nsecond gateway refused: exit {second.returncode} in {refused_in:.2f} s: {said}")

        first.kill()  # SIGKILL: the lock goes with the process
        third = GatewayProcess(config, free_port())
        third.start()  # ready, not refused: no stale lock
        third.stop()
    finally:
        first.kill()


def test_a_deleted_store_file_loses_nothing(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    database = tmp_path / "outbox.db"
    # 1 message a minute: the alerts stay queued in the file while it is deleted.
    slow = gateway_config(emu.url, key, f"sqlite:///{database}", rate="1/60s")
    config = write_config(tmp_path / "gw.yaml", slow)
    gateway = GatewayProcess(config, free_port())
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            for i in range(ALERTS):
                answer = client.post("/alertmanager", json=one_alert(f"Deleted{i:03d}"))
                assert answer.status_code == 200, answer.text
            os.unlink(database)  # -wal and -shm stay, as with `rm outbox.db`
            deleted = time.monotonic()
            seen: list[tuple[float, int, str]] = []
            while time.monotonic() - deleted < 15:
                answer = client.get("/readyz")
                seen.append((time.monotonic() - deleted, answer.status_code, answer.text))
                if answer.status_code == 200 and any(code == 503 for _, code, _ in seen):
                    break
                time.sleep(0.02)
            first_503 = next(t for t, code, _ in seen if code == 503)
            back = seen[-1][0]
            assert seen[-1][1] == 200, seen[-1]
            assert "deleted" in next(text for _, code, text in seen if code == 503)
            assert database.exists()
            # Accepted after the write-back: into the restored file.
            for i in range(10):
                assert client.post("/alertmanager", json=one_alert(f"After{i}")).status_code == 200
        wait_for(lambda: error_lines(gateway.log, "written back"), what="the ERROR line")
        (line,) = error_lines(gateway.log, "written back")
        assert "ERROR" in line and str(database) in line and key not in line
        print(f"\nfile deleted: /readyz 503 after {first_503:.2f} s, 200 again (written back) "
              f"after {back:.2f} s; log: {line}")  # fmt: skip
    finally:
        gateway.kill()  # SIGKILL: only the file at the path survives

    # Restart on the same file, at the normal rate: everything answered 200 is there and goes.
    write_config(config, gateway_config(emu.url, key, f"sqlite:///{database}"))
    restarted = GatewayProcess(config, free_port())
    restarted.start()
    try:
        wait_for(
            lambda: (
                metric(restarted.url, "wecom_bot_queue_depth") == 0
                and metric(restarted.url, "wecom_bot_inbox_depth") == 0
            ),
            timeout=120,
            what="the queue to drain",
        )
        assert metric(restarted.url, "wecom_bot_dead_letters") == 0
    finally:
        restarted.stop()
    conn = sqlite3.connect(database)
    try:
        ids = conn.execute("SELECT count(DISTINCT notification_id) FROM outbox_notification")
        (notifications,) = ids.fetchone()
        (undelivered,) = conn.execute(
            "SELECT count(*) FROM outbox WHERE status != 'sent'"
        ).fetchone()
    finally:
        conn.close()
    assert notifications == ALERTS + 10 and undelivered == 0
    delivered = accepted_count(emu, key)
    assert delivered >= 2
    print(f"after restart: {notifications} of {ALERTS + 10} notifications in the file, "
          f"0 undelivered, 0 dead letters, {delivered} messages delivered")  # fmt: skip


@pytest.mark.redis
def test_redis_restarted_empty_is_not_ready_and_logged(emu: Emu, tmp_path: Path) -> None:
    port = free_port()
    key = new_key()
    with redis_server(tmp_path, port=port) as url:
        config = write_config(tmp_path / "gw.yaml", gateway_config(emu.url, key, url, rate="1/60s"))
        gateway = GatewayProcess(config, free_port())
        gateway.start()
        try:
            warnings = error_lines(gateway.log, "persistence off")
            assert len(warnings) == 1 and "WARNING" in warnings[0], gateway.log.read_text()
            for i in range(100):
                answer = httpx.post(gateway.url + "/alertmanager", json=one_alert(f"R{i}"))
                assert answer.status_code == 200
            wait_for(lambda: metric(gateway.url, "wecom_bot_inbox_depth") == 0, what="rendered")
            queued = metric(gateway.url, "wecom_bot_queue_depth")
            assert queued >= 90  # 1 a minute: nearly all wait in Redis
        except BaseException:
            gateway.kill()
            raise
    try:
        with redis_server(tmp_path, port=port):  # back at once, empty (no persistence)
            back = time.monotonic()
            codes: list[tuple[float, int, str]] = []
            while time.monotonic() - back < 15:
                answer = readyz(gateway.url)
                if answer is not None:
                    codes.append((time.monotonic() - back, answer.status_code, answer.text))
                if error_lines(gateway.log, "lost its data") and codes and codes[-1][1] == 200:
                    break
                time.sleep(0.02)
            first_503 = next(t for t, code, _ in codes if code == 503)
            assert any("lost its data" in text for _, code, text in codes if code == 503)
            assert codes[-1][1] == 200  # the incident is reported; new alerts are kept again
            (line,) = error_lines(gateway.log, "lost its data")
            assert "ERROR" in line and "appendonly yes" in line
            logged = time.monotonic() - back
            left = metric(gateway.url, "wecom_bot_queue_depth")
            assert left == 0  # the loss is real; what the gateway adds is that it says so
            answer = httpx.post(gateway.url + "/alertmanager", json=one_alert("AfterRestart"))
            assert answer.status_code == 200
            print(f"\nRedis restarted empty: {queued:.0f} queued before, {left:.0f} after; "
                  f"/readyz 503 after {first_503:.2f} s, ERROR within {logged:.2f} s: "
                  f"{line}")  # fmt: skip
    finally:
        gateway.kill()


def test_delivery_stuck_is_not_ready_with_a_metric(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    # One message per 10 minutes: the second alert is due and cannot go.
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", rate="1/600s")
    caplog.set_level(logging.INFO, logger="wecom_bot")
    with running_gateway(config) as gw:
        watch = gw.app.state.gateway.watch
        watch.stuck_after, watch.check_every = 1.0, 0.1  # the seam: 600 s in production
        for name in ("Stuck1", "Stuck2"):
            assert gw.post("/alertmanager", one_alert(name)).status_code == 200
        wait_for(lambda: gw.client.get("/readyz").status_code == 503, what="not ready")
        reason = gw.client.get("/readyz").json()["reason"]
        assert "delivery of bot 'ops' is stuck" in reason
        assert gw.metric("wecom_bot_oldest_due_seconds") > 1.0
        stuck = [r for r in caplog.records if "is stuck" in r.getMessage()]
        assert len(stuck) == 1 and stuck[0].levelno == logging.ERROR
        assert accepted_count(emu, key) == 1
