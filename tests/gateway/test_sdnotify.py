"""The gateway speaks systemd's notification protocol to a real datagram socket: READY=1 once
it serves, WATCHDOG=1 at half the watchdog interval (also while a hostile template renders:
nothing blocks its loop), STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.harness import gateway_config, write_config
from tests.redis_server import free_port
from wecom_bot.gateway import sdnotify

KEY = "0123456789abcdef0123456789abcdef0123"
NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"


def receive(sock: socket.socket, until: float, stop: str = "") -> list[tuple[float, str]]:
    """What arrives until ``until``, or until ``stop`` arrives."""
    got: list[tuple[float, str]] = []
    while (left := until - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            break
        if got[-1][1] == stop:
            break
    return got


def test_notify_without_a_socket_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is another process's
    assert sdnotify.watchdog_interval() is None


def test_the_gateway_notifies_readiness_watchdog_and_stopping(tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    config = gateway_config(
        "http://127.0.0.1:9", KEY, f"sqlite:///{tmp_path / 'outbox.db'}",
        template_limits={"playground_timeout": "60s", "max_steps": 10**9},
    )  # fmt: skip
    path = write_config(tmp_path / "gateway.yaml", config)
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wecom_bot", "gateway", "--config", str(path), "--port", str(port)],
        stdout=log, stderr=log, env=env,
    )  # fmt: skip
    try:
        first = receive(sock, time.monotonic() + 30, stop="READY=1")
        assert [state for _, state in first] == ["READY=1"]  # before the first watchdog beat
        url = f"http://127.0.0.1:{port}"

        def hostile() -> None:
            body = {"payload": {}, "source": "generic", "template_source": NESTED}
            with httpx.Client(base_url=url, timeout=60) as client:
                client.post("/api/v1/playground/render", json=body)

        threading.Thread(target=hostile, daemon=True).start()
        started = time.monotonic()
        during = receive(sock, started + 4)
        beats = [t for t, state in during if state == "WATCHDOG=1"]
        assert len(beats) >= 5, during  # every 0.5 s, the render going on all the while
        gaps = [b - a for a, b in zip([started, *beats], beats, strict=False)]
        assert max(gaps) < 1.0, gaps
        proc.terminate()
        stopping = receive(sock, time.monotonic() + 10, stop="STOPPING=1")
        assert "STOPPING=1" in [state for _, state in stopping], stopping
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
        log.close()
