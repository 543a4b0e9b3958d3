"""The gateway's log as an operator reads it: ``--log-level``, ``--log-format json|text``, and
one line per notification received and per delivery outcome (a retry is one line too)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.emulator.conftest import running
from tests.gateway.harness import gateway_config, wait_for, write_config
from tests.redis_server import free_port
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.masking import key_fingerprint, mask_key

KEY = "0a1b2c3d-log0-4e5f-8a9b-lines0000cafe"


def _gateway(config: Path, port: int, *options: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "wecom_bot", "gateway", "--config", str(config),
             "--port", str(port), *options],
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _delivered_lines(log: Path, fmt: str, *options: str) -> list[str]:
    """Run a gateway that retries once and delivers one notification; its log lines."""
    with running(EmulatorSettings(rate=None)) as emu:
        emu.client.post(f"/api/groups/{key_fingerprint(KEY)}/faults",
                        json={"kind": "errcode", "errcode": -1})  # fmt: skip
        config = gateway_config(emu.url, KEY, f"sqlite:///{log.with_suffix('.db')}", routes=[])
        path = write_config(log.with_suffix(".yaml"), config)
        port = free_port()
        proc = _gateway(path, port, "--log-format", fmt, *options, log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            _ready(url, proc, log)
            answer = httpx.post(url + "/alertmanager", json=alertmanager_firing(), timeout=10)
            assert answer.status_code == 200, answer.text
            wait_for(lambda: "delivered" in log.read_text(), what="the delivery line")
        finally:
            proc.terminate()
            proc.wait(20)
    return [line for line in log.read_text("utf-8").splitlines() if line.strip()]


def test_json_log_has_one_line_per_event_with_its_fields(tmp_path: Path) -> None:
    lines = _delivered_lines(tmp_path / "gw.log", "json")
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is JSON
    events = [r for r in records if "event" in r]
    # terminated at the end: the stop is an event too, saying what stays queued
    assert [e["event"] for e in events] == ["received", "retry", "delivered", "stopping"], lines
    received, retry, delivered, stopping = events
    assert "SIGTERM" in stopping["message"] and "0 message(s) stay queued" in stopping["message"]
    assert received["source"] == "alertmanager" and received["alerts"] == 2
    assert received["routes"] == ["default"] and received["status"] == "firing"
    notification = received["notification_id"]
    assert notification in received["message"]
    assert retry["attempt"] == 1 and retry["retry_in"] > 0 and "API error -1" in retry["reason"]
    assert delivered["attempt"] == 2 and delivered["notification_ids"] == [notification]
    assert delivered["key"] == mask_key(KEY)
    assert not any(r["logger"].startswith("httpx") for r in records), "request lines at INFO"
    assert KEY not in "\n".join(lines)


def test_text_log_at_warning_drops_the_info_lines(tmp_path: Path) -> None:
    info = _delivered_lines(tmp_path / "info.log", "text")
    retry = [line for line in info if "attempt 1 failed, retry in" in line]
    assert len(retry) == 1 and " INFO wecom_bot.dispatcher " in retry[0]
    assert any("received alertmanager notification" in line for line in info)
    warning = tmp_path / "warning.log"
    subprocess_lines = _gateway_lines_at_warning(warning)
    assert not any("received" in line or "delivered" in line for line in subprocess_lines)


def _gateway_lines_at_warning(log: Path) -> list[str]:
    with running(EmulatorSettings(rate=None)) as emu:
        config = gateway_config(emu.url, KEY, f"sqlite:///{log.with_suffix('.db')}", routes=[])
        path = write_config(log.with_suffix(".yaml"), config)
        port = free_port()
        proc = _gateway(path, port, "--log-level", "warning", log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            _ready(url, proc, log)
            httpx.post(url + "/alertmanager?wait=true", json=alertmanager_firing(), timeout=10)
            wait_for(lambda: len(emu.client.get("/api/groups").json()["groups"]) > 0,
                     what="a delivery")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(20)
    return log.read_text("utf-8").splitlines()


def test_a_bad_log_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw.yaml", gateway_config("http://127.0.0.1:9", KEY,
                                                                "memory://"))  # fmt: skip
    for option, value in (("--log-format", "xml"), ("--log-level", "loud")):
        result = subprocess.run(
            [sys.executable, "-m", "wecom_bot", "gateway", "--config", str(config), option, value],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1 and option in result.stderr
