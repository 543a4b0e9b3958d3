"""Large notifications are accepted, never refused: a sender like Alertmanager drops what gets
a 4xx. Posted to a real gateway over HTTP, delivered to the emulator, the cut visible in the
messages and in the console's history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    content_of,
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
)
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.intake.sources import MAX_ALERTS, MAX_VALUE_BYTES
from wecom_bot.gateway.samples import alertmanager_firing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


def storm(count: int, annotation_bytes: int = 0) -> dict[str, Any]:
    """One Alertmanager notification of ``count`` alerts ``Storm`` on ``host-0`` ...; each
    with a description of ``annotation_bytes`` when given."""
    payload = alertmanager_firing()
    template = payload["alerts"][0]
    alerts = []
    for i in range(count):
        labels = {"alertname": "Storm", "instance": f"host-{i}", "severity": "warning"}
        annotations = {"summary": f"host-{i} is slow"}
        if annotation_bytes:
            annotations["description"] = "d" * annotation_bytes
        alerts.append(
            {**template, "labels": labels, "annotations": annotations, "fingerprint": f"{i:016x}"}
        )
    payload.update(
        alerts=alerts,
        groupKey='{}:{alertname="Storm"}',
        groupLabels={"alertname": "Storm"},
        commonLabels={"alertname": "Storm", "severity": "warning"},
        commonAnnotations={},
    )
    return payload


def delivered(emu: Emu, key: str) -> str:
    return "\n".join(content_of(p) for p in emulator_contents(emu, key))


def deliver(
    emu: Emu, tmp_path: Path, payload: dict[str, Any], until: str, **overrides: Any
) -> tuple[str, Any]:
    """Post ``payload`` to a gateway on SQLite, which must answer 200, and wait until ``until``
    appears in what the emulator accepted. Returns that text and the notification's history
    entry. ``overrides``: more gateway settings."""
    key = new_key()
    store = f"sqlite:///{tmp_path / 'o.db'}"
    config = gateway_config(emu.url, key, store, routes=[], **overrides)
    with running_gateway(config) as gw:
        answer = gw.post("/alertmanager", payload)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: until in delivered(emu, key), what=f"{until!r} in the group")
        path = f"/api/v1/history/{answer.json()['notification_id']}"
        wait_for(lambda: gw.client.get(path).status_code == 200, what="the history entry")
        entry = gw.client.get(path).json()
    return delivered(emu, key), entry


def test_a_notification_of_1500_alerts_is_accepted_and_delivered(emu: Emu, tmp_path: Path) -> None:
    text, entry = deliver(emu, tmp_path, storm(1500), until="FIRING · 1500")
    assert "host-[0-1499]" in text  # the storm summary names every instance
    assert "另有" not in text  # 1,500 alerts are kept, nothing cut
    assert entry["alerts"] == 1500 and "cut" not in entry["detail"]


def test_alerts_past_the_most_kept_are_counted_in_the_message(emu: Emu, tmp_path: Path) -> None:
    text, entry = deliver(emu, tmp_path, storm(MAX_ALERTS + 250), until="另有 250 条告警未列出")
    assert f"FIRING · {MAX_ALERTS}" in text
    assert f"host-[0-{MAX_ALERTS - 1}]" in text  # those kept are all named
    assert entry["detail"]["cut"] == {"alerts": 250, "values": 0}
    assert entry["alerts"] == MAX_ALERTS + 250


def test_a_40_kib_label_value_is_cut_with_a_marker_and_delivered(emu: Emu, tmp_path: Path) -> None:
    payload = alertmanager_firing()
    payload["alerts"][0]["labels"]["pod"] = "p" * (40 * 1024)
    # Its 16 KiB are eleven markdown parts (allowed here: by default a notification is cut
    # to 3), unpaced, so that every part arrives whole. Written per alert (no summary: by
    # default two alerts that do not fit one message are summarised, without the long value).
    text, entry = deliver(
        emu, tmp_path, payload, until="cut by the gateway", storm_burst=20, storm_interval="0",
        max_messages_per_notification=20, max_alerts_per_message=None,
    )  # fmt: skip
    assert f"{40 * 1024 - MAX_VALUE_BYTES} bytes more" in text
    rendered = "".join(content_of(m["payload"]) for m in entry["messages"])
    assert f"{40 * 1024 - MAX_VALUE_BYTES} bytes more" in rendered
    assert "cut by the gateway: 0 alerts, 1 values" in text
    assert "db-2.example.com" in text  # the other alert is there too
    assert entry["detail"]["cut"] == {"alerts": 0, "values": 1}


def test_a_3_mib_body_is_accepted_and_delivered(emu: Emu, tmp_path: Path) -> None:
    payload = storm(300, annotation_bytes=10 * 1024)
    assert len(json.dumps(payload)) > 3 * 1024 * 1024
    text, entry = deliver(emu, tmp_path, payload, until="FIRING · 300")
    assert "host-[0-299]" in text and "另有" not in text
    assert entry["alerts"] == 300 and "cut" not in entry["detail"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"not json at all", 400, "not_json"),
        (b'{"alerts": "nope"}', 422, "invalid"),
        (b'{"version": "4", "status": "firing", "alerts": []}', 422, "invalid"),
    ],
)
def test_what_is_not_the_source_format_is_still_refused(
    emu: Emu, body: bytes, status: int, reason: str
) -> None:
    config = gateway_config(emu.url, new_key(), "memory://", routes=[])
    with running_gateway(config) as gw:
        answer = gw.client.post(
            "/alertmanager", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == status and answer.json()["reason"] == reason
