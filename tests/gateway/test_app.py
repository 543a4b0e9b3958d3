"""The gateway over HTTP: inbound endpoints, auth, idempotency, metrics, reload, 503s."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
    write_config,
)
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.samples import (
    alertmanager_firing,
    alertmanager_resolved,
    generic,
    grafana_firing,
)
from wecom_bot.store import MemoryOutbox


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


def contents(emu: Emu, key: str) -> list[str]:
    out = []
    for payload in emulator_contents(emu, key):
        body = payload[payload["msgtype"]]
        out.append(body["content"])
    return out


def test_alertmanager_firing_then_resolved_arrive_rendered(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}")
    with running_gateway(config) as gw:
        answer = gw.post("/alertmanager", alertmanager_firing())
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "accepted" and answer.json()["routes"] == ["db"]
        wait_for(lambda: len(contents(emu, key)) >= 1, what="the firing message")
        assert gw.post("/alertmanager", alertmanager_resolved()).status_code == 200
        wait_for(lambda: len(contents(emu, key)) >= 2, what="the resolved message")
    firing, resolved = contents(emu, key)[:2]
    assert "FIRING" in firing and "HighCPU" in firing
    assert "RESOLVED" in resolved


def test_wait_renders_before_answering_and_reports_the_messages(emu: Emu) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, "memory://")
    payload = alertmanager_firing()
    with running_gateway(config) as gw:
        answer = gw.post("/alertmanager?wait=true", payload)
        assert answer.status_code == 200, answer.text
        outcome = answer.json()
        assert outcome["status"] == "queued" and outcome["messages"] == 1
        assert outcome["routes"] == ["db"] and outcome["state"] == "pending"
        # The journal saw nothing: the messages went straight to the outbox.
        assert gw.metric("wecom_bot_inbox_depth") == 0
        again = gw.post("/alertmanager", copy.deepcopy(payload))
        assert again.json()["status"] == "duplicate"  # one idempotency window for both paths
        wait_for(lambda: len(contents(emu, key)) >= 1, what="the message")
        assert gw.metric("wecom_bot_messages_queued_total") == 1


def test_grafana_and_generic_webhooks(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}")
    with running_gateway(config) as gw:
        assert gw.post("/grafana", grafana_firing()).status_code == 200
        assert gw.post("/webhook/deploy", generic()).status_code == 200
        wait_for(lambda: len(contents(emu, key)) >= 2, what="both messages")
    text = "\n".join(contents(emu, key))
    assert "High memory usage" in text


def test_routes_pick_msgtype_and_mentions(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, "memory://")
    payload = alertmanager_firing()
    payload["commonLabels"] = {"severity": "critical"}
    with running_gateway(config) as gw:
        answer = gw.post("/alertmanager", payload)
        assert answer.json()["routes"] == ["critical"]
        forced = gw.post("/alertmanager/db", alertmanager_resolved())
        assert forced.json()["routes"] == ["db"]
        wait_for(lambda: len(emulator_contents(emu, key)) >= 2, what="two messages")
    first, second = emulator_contents(emu, key)[:2]
    assert first["msgtype"] == "markdown" and "<@oncall>" in first["markdown"]["content"]
    assert second["msgtype"] == "markdown_v2"


def test_the_same_notification_twice_is_queued_once(emu: Emu) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, "memory://")
    payload = alertmanager_firing()
    with running_gateway(config) as gw:
        assert gw.post("/alertmanager", payload).json()["status"] == "accepted"
        again = gw.post("/alertmanager", copy.deepcopy(payload))
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        wait_for(lambda: len(contents(emu, key)) >= 1, what="the message")
        assert gw.metric("wecom_bot_notifications_duplicate_total") == 1
    assert len(contents(emu, key)) == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/alertmanager", b"{not json", 400, "not_json"),
        ("/alertmanager", b'{"alerts": "nope"}', 422, "invalid"),
        ("/alertmanager", b"[1, 2]", 422, "invalid"),
        ("/grafana", b'{"alerts": [{"status": 5}]}', 422, "invalid"),
        ("/alertmanager/no-such-route", None, 404, "unknown_route"),
        ("/webhook/unknown", b"{}", 404, "unknown_webhook"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_reason_and_nothing_is_queued(
    emu: Emu, path: str, body: bytes | None, status: int, reason: str
) -> None:
    key = new_key()
    store = MemoryOutbox()
    config = gateway_config(emu.url, key, "memory://")
    with running_gateway(config, store=store) as gw:
        if body is None:
            answer = gw.post(path, alertmanager_firing())
        else:
            answer = gw.client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
        assert answer.status_code == status, answer.text
        assert answer.json()["reason"] == reason
        assert answer.json()["error"]
        assert gw.metric("wecom_bot_requests_rejected_total") == 1
    assert emulator_contents(emu, key) == []


def test_invalid_payload_error_names_the_field(emu: Emu) -> None:
    config = gateway_config(emu.url, new_key(), "memory://")
    payload = alertmanager_firing()
    payload["alerts"][0]["labels"] = {"severity": 42}
    with running_gateway(config) as gw:
        answer = gw.post("/alertmanager", payload)
    assert answer.status_code == 422
    assert "alerts[0].labels" in answer.json()["error"]


def test_body_over_the_cap_is_refused(emu: Emu) -> None:
    config = gateway_config(emu.url, new_key(), "memory://", max_body_bytes=2000)
    with running_gateway(config) as gw:
        answer = gw.client.post(
            "/alertmanager",
            content=b"{" + b" " * 5000 + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 413


def test_auth_bearer_and_basic(emu: Emu, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TOKEN", "s3cret-token")
    config = gateway_config(
        emu.url,
        new_key(),
        "memory://",
        auth={"bearer_token_env": "GW_TOKEN", "username": "am", "password": "pw"},
    )
    with running_gateway(config) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 401
        assert gw.client.get("/metrics").status_code == 401
        assert gw.client.get("/healthz").status_code == 200
        assert gw.client.get("/readyz").status_code == 200
        wrong = gw.post("/alertmanager", generic(), headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = gw.post(
            "/alertmanager", alertmanager_firing(), headers={"Authorization": "Bearer s3cret-token"}
        )
        assert ok.status_code == 200
        basic = base64.b64encode(b"am:pw").decode()
        ok2 = gw.post("/grafana", grafana_firing(), headers={"Authorization": f"Basic {basic}"})
        assert ok2.status_code == 200


def test_metrics_count_the_data_path_and_never_show_the_key(emu: Emu) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, "memory://")
    with running_gateway(config) as gw:
        gw.post("/alertmanager", alertmanager_firing())
        wait_for(lambda: gw.metric("wecom_bot_messages_sent_total") >= 1, what="a delivery")
        text = gw.client.get("/metrics").text
        assert gw.metric("wecom_bot_notifications_received_total") == 1
        assert gw.metric("wecom_bot_messages_queued_total") >= 1
        assert "wecom_bot_delivery_latency_seconds_bucket" in text
        assert 'wecom_bot_queue_depth{bot="ops"} 0.0' in text
    assert key not in text and key[:8] not in text


def test_store_unavailable_answers_503_and_stores_nothing(emu: Emu) -> None:
    import asyncio

    key = new_key()
    store = MemoryOutbox()
    config = gateway_config(emu.url, key, "memory://")
    with running_gateway(config, store=store) as gw:
        asyncio.run(store.close())
        answer = gw.post("/alertmanager", alertmanager_firing())
        assert answer.status_code == 503
        assert "retry" in answer.json()["error"]
        assert gw.client.get("/readyz").status_code == 503


def test_reload_swaps_config_and_a_bad_one_keeps_the_old(
    emu: Emu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    path = tmp_path / "gw.yaml"
    config = gateway_config(emu.url, key, "memory://")
    write_config(path, config)
    with running_gateway(config, config_path=path) as gw:
        assert gw.post("/alertmanager/db", alertmanager_firing()).status_code == 200
        data: dict[str, Any] = config.model_dump(mode="json", by_alias=True)
        data["routes"] = [r for r in data["routes"] if r["name"] != "db"]
        write_config(path, type(config).model_validate(data))
        assert gw.client.post("/-/reload").json()["ok"] is True
        assert gw.post("/alertmanager/db", alertmanager_firing()).status_code == 404

        path.write_text("bots: {ops: {kee: x}}", "utf-8")
        bad = gw.client.post("/-/reload")
        assert bad.status_code == 400
        assert "kept the running config" in bad.json()["message"] and "kee" in bad.json()["message"]
        assert gw.post("/alertmanager/critical", alertmanager_firing()).status_code == 200


def test_config_error_fails_at_start_naming_the_field(
    emu: Emu, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wecom_bot.errors import ConfigError

    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    config = gateway_config(emu.url, "k", "memory://", bots={"ops": {"key_env": "NO_SUCH_KEY_VAR"}})
    with pytest.raises(ConfigError, match="bots.ops: environment variable NO_SUCH_KEY_VAR"):
        running_gateway(config).__enter__()
