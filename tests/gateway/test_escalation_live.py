"""Escalation and reminders on real servers and real (short) time: acknowledging or resolving
a group stops them; a step fires exactly once at its time with the gateway SIGKILLed and
restarted in between (SQLite); two gateway instances on one real Redis fire every timer once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    GatewayProcess,
    gateway_config,
    running_gateway,
    wait_for,
    write_config,
)
from tests.redis_server import free_port, redis_server
from tests.test_dispatcher import all_entries
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway import config as gateway_config_module

pytestmark = pytest.mark.slow

SECRET = "an-escalation-secret-long-enough"
SHORT_REMINDERS = "import wecom_bot.gateway.config as c\nc.MIN_REMIND_EVERY = 1.0"
"""Reminders are at least a minute apart in a real config; these tests run on real seconds."""


@pytest.fixture(autouse=True)
def short_reminders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_config_module, "MIN_REMIND_EVERY", 1.0)
LINK = re.compile(r"https?://[^\s)]+/act/([A-Za-z0-9_.-]+)")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


def _alert(name: str, status: str = "firing") -> dict[str, Any]:
    ends = "2026-11-25T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    labels = {"alertname": name, "severity": "critical", "service": "api"}
    return {
        "version": "4", "status": status, "receiver": "wecom",
        "groupKey": f'{{}}:{{alertname="{name}"}}', "groupLabels": {"alertname": name},
        "commonLabels": labels, "commonAnnotations": {"summary": f"{name} summary"},
        "externalURL": "http://127.0.0.1:9", "truncatedAlerts": 0,
        "alerts": [{"status": status, "labels": labels, "annotations": {},
                    "startsAt": "2026-11-25T10:00:00Z", "endsAt": ends,
                    "generatorURL": "", "fingerprint": f"{name}-0"}],
    }  # fmt: skip


def _messages(emu: Emu, key: str) -> list[tuple[float, str, dict[str, Any]]]:
    """(received at, content, payload) of every message the emulator accepted for ``key``."""
    out = []
    for entry in all_entries(emu, key):
        if entry["status"] == "accepted":
            payload = entry["payload"]
            body = payload.get(payload["msgtype"], {})
            out.append((entry["received_at"], str(body.get("content", "")), payload))
    return out


def _notices(emu: Emu, key: str, word: str, name: str) -> list[float]:
    """When the ``word`` (Escalation, Reminder) messages about group ``name`` arrived."""
    return [at for at, text, _ in _messages(emu, key) if f"{word} · {name}" in text]


def _route(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": "paging", "matchers": ['severity="critical"'], "bots": ["ops"], **extra}]


def test_acknowledging_or_resolving_a_group_stops_its_escalation_and_reminders(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", external_url="http://127.0.0.1:1",
        actions={"secret": SECRET},
        routes=_route(escalate=[{"after": "3s", "mention": ["lead"]}], remind_every="3.5s"),
    )  # fmt: skip
    with running_gateway(config) as gw:
        started = time.time()
        for name in ("Acked", "Resolved", "Ignored"):
            assert gw.post("/alertmanager", _alert(name)).status_code == 200
        wait_for(lambda: len(_messages(emu, key)) >= 3, what="the three firing messages")
        acked = next(text for _, text, _ in _messages(emu, key) if "Acked" in text)
        token = LINK.findall(acked)[0]  # 认领 comes first
        page = gw.client.get(f"/act/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf, page.text
        same = {"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}
        done = gw.client.post(f"/act/{token}", data={"csrf": csrf[1], "name": "王五"}, headers=same)
        assert done.status_code == 200 and "已认领 by 王五" in done.text, done.text
        assert gw.post("/alertmanager", _alert("Resolved", "resolved")).status_code == 200
        assert time.time() < started + 3, "acted after the escalation was due"
        wait_for(lambda: _notices(emu, key, "Reminder", "Ignored"), timeout=10,
                 what="the reminder of the group nobody acknowledged")  # fmt: skip
        time.sleep(0.5)
        for name in ("Acked", "Resolved"):
            assert _notices(emu, key, "Escalation", name) == []
            assert _notices(emu, key, "Reminder", name) == []
        [escalated] = _notices(emu, key, "Escalation", "Ignored")
        assert escalated >= started + 3
        groups = {g["name"]: g for g in gw.client.get("/api/v1/alerts").json()["groups"]}
        assert set(groups) == {"Acked", "Ignored"}
        assert groups["Acked"]["acknowledged_by"] == "王五" and groups["Acked"]["next"] is None
        assert groups["Ignored"]["next"]["kind"] == "remind"
        [escalation] = [p for _, t, p in _messages(emu, key) if "Escalation · Ignored" in t]
        assert escalation["markdown"]["content"].endswith("<@lead>")
        assert "/act/" in escalation["markdown"]["content"]  # its group's links


def _two_bots(emu: Emu, ops: str, lead: str, store: str, **overrides: Any) -> Any:
    return gateway_config(
        emu.url, ops, store, bots={"ops": {"key": ops}, "lead": {"key": lead, "msgtype": "text"}},
        default_route={"name": "default", "bots": ["ops"]}, webhooks={}, **overrides,
    )  # fmt: skip


def test_an_escalation_fires_once_at_its_time_across_a_sigkill(emu: Emu, tmp_path: Path) -> None:
    ops, lead = new_key(), new_key()
    step = 4.0
    config = _two_bots(
        emu, ops, lead, f"sqlite:///{tmp_path / 'o.db'}", lease="2s",
        routes=_route(escalate=[{"after": f"{step:g}s", "mention": ["lead"], "bots": ["lead"]}]),
    )  # fmt: skip
    gateway = GatewayProcess(write_config(tmp_path / "gw.yaml", config), free_port())
    gateway.start()
    try:
        posted = time.time()
        answer = httpx.post(gateway.url + "/alertmanager", json=_alert("Paged"), timeout=5)
        assert answer.status_code == 200, answer.text
        # Delivered means processed: the group is open and its timer stored.
        wait_for(lambda: _messages(emu, ops), what="the firing message")
        gateway.kill()  # SIGKILL: nothing is written on the way out
        gateway.start()
        assert time.time() < posted + step, "the gateway came back after the step was due"
        wait_for(lambda: _notices(emu, ops, "Escalation", "Paged")
                 and _notices(emu, lead, "Escalation", "Paged"),
                 timeout=15, what="the escalation")  # fmt: skip
        time.sleep(1.5)  # a poll and more: a second firing would have arrived
        [at_ops] = _notices(emu, ops, "Escalation", "Paged")
        [at_lead] = _notices(emu, lead, "Escalation", "Paged")
        for at in (at_ops, at_lead):
            assert posted + step <= at < posted + step + 2.0
        [(_, _, text_message)] = [m for m in _messages(emu, lead) if "Escalation" in m[1]]
        assert text_message["text"]["mentioned_list"] == ["lead"]
        # Once more, after it fired: the timer is gone for good.
        gateway.kill()
        gateway.start()
        time.sleep(1.5)
        assert len(_notices(emu, ops, "Escalation", "Paged")) == 1
        [group] = httpx.get(gateway.url + "/api/v1/alerts", timeout=5).json()["groups"]
        assert group["name"] == "Paged" and group["state"] == "open" and group["next"] is None
    finally:
        gateway.stop()


@pytest.mark.redis
def test_two_instances_on_one_redis_fire_every_timer_once(emu: Emu, tmp_path: Path) -> None:
    ops, lead = new_key(), new_key()
    every = 1.5
    with redis_server(tmp_path) as url:
        config = _two_bots(
            emu, ops, lead, url, lease="2s",
            routes=_route(escalate=[{"after": "2s", "mention": ["lead"], "bots": ["lead"]}],
                          remind_every=f"{every:g}s"),
        )  # fmt: skip
        path = write_config(tmp_path / "gw.yaml", config)
        first = GatewayProcess(path, free_port(), SHORT_REMINDERS)
        second = GatewayProcess(path, free_port(), SHORT_REMINDERS)
        first.start()
        second.start()
        try:
            posted = time.time()
            answer = httpx.post(first.url + "/alertmanager", json=_alert("Shared"), timeout=5)
            assert answer.status_code == 200, answer.text
            wait_for(lambda: len(_notices(emu, ops, "Reminder", "Shared")) >= 3, timeout=15,
                     what="three reminders")  # fmt: skip
            # The other instance sees the group and acknowledges it.
            [group] = httpx.get(second.url + "/api/v1/alerts", timeout=5).json()["groups"]
            acked = httpx.post(
                f"{second.url}/api/v1/alerts/{group['id']}/acknowledge",
                json={"name": "王五"}, timeout=5,
            )  # fmt: skip
            acked_at = time.time()
            assert acked.status_code == 200, acked.text
            time.sleep(2 * every)
            reminders = _notices(emu, ops, "Reminder", "Shared")
            assert len(_notices(emu, ops, "Escalation", "Shared")) == 1
            assert len(_notices(emu, lead, "Escalation", "Shared")) == 1
            assert _notices(emu, lead, "Reminder", "Shared") == []
            # One reminder a period, never two: a timer fired by both would arrive twice at once.
            gaps = [b - a for a, b in zip(reminders, reminders[1:], strict=False)]
            assert all(gap > every / 2 for gap in gaps), gaps
            assert len(reminders) <= (acked_at - posted) // every + 1
            assert all(at < acked_at + 0.5 for at in reminders)  # none after the acknowledgement
        finally:
            first.stop()
            second.stop()
