"""Run a gateway against an emulator, both over real HTTP on 127.0.0.1, for the gateway tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.emulator.conftest import Emu
from tests.servers import serve
from wecom_bot.gateway.app import create_app
from wecom_bot.gateway.config import GatewayConfig
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.masking import key_fingerprint


def gateway_config(emu_url: str, key: str, store: str, **overrides: Any) -> GatewayConfig:
    """A gateway config sending bot ``ops`` to the emulator, fast windows for tests."""
    data: dict[str, Any] = {
        "base_url": emu_url,
        "store": store,
        "rate": "20/1s",
        "coalesce_after": "3s",
        "bots": {"ops": {"key": key, "msgtype": "markdown"}},
        "routes": [
            {
                "name": "critical",
                "matchers": ['severity="critical"'],
                "bots": ["ops"],
                "mentions": {"users": ["oncall"]},
            },
            {"name": "db", "matchers": ['team="db"'], "bots": ["ops"], "msgtype": "markdown_v2"},
        ],
        "default_route": {"name": "default", "bots": ["ops"]},
        "webhooks": {"deploy": {"bots": ["ops"], "template": "generic"}},
    }
    data.update(overrides)
    return GatewayConfig.model_validate(data)


def write_config(path: Path, config: GatewayConfig) -> Path:
    """Write ``config`` as YAML (for reload and subprocess tests)."""
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)), "utf-8")
    return path


@dataclass
class Running:
    """A served gateway: its URL and an HTTP client."""

    url: str
    client: httpx.Client
    app: Any

    def post(self, path: str, payload: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, json=payload, **kwargs)

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextmanager
def running_gateway(config: GatewayConfig, **options: Any) -> Iterator[Running]:
    """Serve a gateway for the block."""
    app = create_app(config, **options)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Running(url, client, app)


def emulator_contents(emu: Emu, key: str) -> list[dict[str, Any]]:
    """Accepted payloads the emulator stored for ``key`` (empty if it never heard of it)."""
    answer = emu.client.get(f"/api/groups/{key_fingerprint(key)}/messages", params={"limit": 1000})
    if answer.status_code == 404:
        return []
    return [e["payload"] for e in answer.json()["messages"] if e["status"] == "accepted"]


def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class GatewayProcess:
    """``wecom-bot gateway`` as a child process on a free port."""

    def __init__(
        self, config_path: Path, port: int, prelude: str = "", env: dict[str, str] | None = None
    ) -> None:
        """``prelude``: Python run in the child before the command (a test seam, such as a
        shorter minimum for reminders); ``env``: variables added to the child's environment
        (the clock-step shim)."""
        self.env = env
        self.config_path = config_path
        self.prelude = prelude
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config_path.with_suffix(".log")

    def start(self) -> None:
        with self.log.open("ab") as log:
            python = [sys.executable, "-m", "wecom_bot"]
            if self.prelude:
                python = [sys.executable, "-c", f"{self.prelude}\nimport runpy\n"
                          "runpy.run_module('wecom_bot', run_name='__main__')"]  # fmt: skip
            self.proc = subprocess.Popen(
                [*python, "gateway", "--config", str(self.config_path), "--port", str(self.port)],
                stdout=log, stderr=log, env={**os.environ, **self.env} if self.env else None,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start: {self.log.read_text()}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def renamed_alert(name: str, fired: datetime | None = None, **labels: str) -> dict[str, Any]:
    """The Alertmanager sample with its alerts renamed and ``labels`` set: a distinct
    notification (``fired``: the alerts' start, now when omitted)."""
    payload = alertmanager_firing(fired)
    payload["groupKey"] = f'{{}}:{{alertname="{name}"}}'
    payload["groupLabels"] = {"alertname": name}
    payload["commonLabels"] = {"alertname": name, **labels}
    for i, item in enumerate(payload["alerts"]):
        item["labels"] = {**item["labels"], "alertname": name, **labels}
        item["fingerprint"] = f"{name}-{i}"
    return payload


def one_alert(name: str, team: str = "web") -> dict[str, Any]:
    """A small one-alert Alertmanager notification named ``name`` (storms are made of these)."""
    return {
        "version": "4", "status": "firing", "receiver": "wecom",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name, "team": team},
        "commonAnnotations": {"summary": f"{name} summary"},
        "externalURL": "http://am.example", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": name, "team": team},
                    "annotations": {"summary": f"{name} summary"},
                    "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": f"{name}-0"}],
    }  # fmt: skip


def group_alert(name: str, instance: str) -> dict[str, Any]:
    """A one-alert critical notification whose group is ``name`` on ``instance`` (a storm of
    these opens one alert group per instance)."""
    labels = {"alertname": name, "severity": "critical", "instance": instance}
    return {
        "version": "4", "status": "firing", "receiver": "wecom",
        "groupKey": f'{{}}:{{alertname="{name}",instance="{instance}"}}',
        "groupLabels": {"alertname": name, "instance": instance},
        "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                    "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": f"{name}-{instance}"}],
    }  # fmt: skip


def content_of(payload: dict[str, Any]) -> str:
    """The text content of a text, markdown or markdown_v2 payload (``""`` for others)."""
    body = payload.get(str(payload.get("msgtype", "")), {})
    return str(body.get("content", "")) if isinstance(body, dict) else ""
