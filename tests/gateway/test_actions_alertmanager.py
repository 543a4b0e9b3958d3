"""Action links end to end, with a real Alertmanager and a real headless Chromium: an alert
goes through Alertmanager and the gateway into the emulator; on the emulator's page the silence
link of the message is clicked, the silence confirmed on the action page (at a phone's width),
Alertmanager lists the silence, and suppresses the next notification of that group itself.
The pictures in docs/ are these pages."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.emulator.conftest import Emu, new_key, running
from tests.emulator_page import conftest as page_fixtures
from tests.gateway.alertmanager import alertmanagers
from tests.gateway.harness import (
    GatewayProcess,
    emulator_contents,
    gateway_config,
    wait_for,
    write_config,
)
from tests.images import keep_screenshot
from tests.redis_server import free_port
from wecom_bot.masking import key_fingerprint

browser = page_fixtures.browser  # one headless Chromium for the module, as the page tests have
DOCS = Path(__file__).resolve().parents[2] / "docs"
PHONE = {"width": 390, "height": 760}
pytestmark = [pytest.mark.alertmanager, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Any]:
    with alertmanagers(tmp_path) as start:
        yield start


def _push(am: str, name: str, **labels: str) -> None:
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).isoformat()
    alert = {"labels": {"alertname": name, "severity": "critical", **labels},
             "annotations": {"summary": f"{name} on {labels.get('instance', '?')}"},
             "startsAt": start}  # fmt: skip
    assert httpx.post(am + "/api/v2/alerts", json=[alert], timeout=5).status_code == 200


def _texts(emu: Emu, key: str) -> list[str]:
    return [str(p[p["msgtype"]]["content"]) for p in emulator_contents(emu, key)]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running() as emulator:
        yield emulator


def test_silence_from_the_message_in_chromium_is_kept_by_alertmanager(
    emu: Emu, browser: Browser, tmp_path: Path, alertmanager: Any
) -> None:
    key = new_key()
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    # The gateway silences only in Alertmanagers it is configured with: this one first.
    am = alertmanager(f"{gateway_url}/alertmanager")
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[], external_url=gateway_url,
        actions={"secret": "an-e2e-secret-of-enough-length"},
        alertmanagers=[{"name": "main", "url": am}],
    )  # fmt: skip
    gateway = GatewayProcess(write_config(tmp_path / "gw.yaml", config), port)
    gateway.start()
    try:
        _push(am, "HighLatency", instance="host-1")
        wait_for(lambda: any("HighLatency" in t for t in _texts(emu, key)), timeout=30,
                 what="the firing message")  # fmt: skip
        # The emulator's page at a desktop's width; the action pages it opens at a phone's.
        context = browser.new_context(viewport={"width": 1000, "height": 800},
                                      device_scale_factor=2)  # fmt: skip
        chat = context.new_page()
        chat.goto(f"{emu.url}/#{key_fingerprint(key)}")
        link = chat.locator('#ep-chat a[href*="/act/"]', has_text="静默").first
        link.wait_for(timeout=10_000)
        keep_screenshot(
            DOCS / "actions-message.png", chat.locator("#ep-chat .ep-entry").first.screenshot()
        )
        with context.expect_page() as opened:
            link.click()
        page = opened.value
        page.set_viewport_size(PHONE)
        page.wait_for_load_state()
        assert "HighLatency" in page.inner_text("main")
        keep_screenshot(DOCS / "actions-silence.png", page.screenshot(full_page=True))
        # Opening the page created nothing.
        assert httpx.get(am + "/api/v2/silences", timeout=5).json() == []
        page.fill("#name", "王五")
        page.check('input[name="d"][value="4h"]')
        page.click("button[type=submit]")
        page.wait_for_selector("text=Silenced")
        shown = page.inner_text("main")
        keep_screenshot(DOCS / "actions-silenced.png", page.screenshot(full_page=True))
        silences = httpx.get(am + "/api/v2/silences", timeout=5).json()
        assert len(silences) == 1
        silence = silences[0]
        assert silence["status"]["state"] == "active" and silence["createdBy"] == "王五"
        assert silence["matchers"] == [
            {"name": "alertname", "value": "HighLatency", "isRegex": False, "isEqual": True}
        ]
        assert silence["id"] in shown
        ends = dt.datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
        assert (
            dt.timedelta(hours=3, minutes=59)
            < ends - dt.datetime.now(dt.UTC)
            <= dt.timedelta(hours=4)
        )
        # The name is remembered on this phone: the acknowledge page has it filled in.
        ack = chat.locator('#ep-chat a[href*="/act/"]', has_text="认领").first
        with context.expect_page() as opened:
            ack.click()
        ack_page = opened.value
        ack_page.set_viewport_size(PHONE)
        ack_page.wait_for_load_state()
        assert ack_page.input_value("#name") == "王五"
        # The group is silenced: its acknowledge link says by whom and until when.
        said = ack_page.inner_text("main")
        assert "silenced by 王五 until " in said
        assert ack_page.inner_text("h1") == "Already silenced"
        keep_screenshot(DOCS / "actions-acknowledge.png", ack_page.screenshot(full_page=True))
        context.close()

        # Alertmanager itself keeps the group quiet; another group still arrives.
        before = sum("HighLatency" in t for t in _texts(emu, key))
        _push(am, "HighLatency", instance="host-2")
        _push(am, "DiskFull", instance="db-1")
        wait_for(lambda: any("DiskFull" in t for t in _texts(emu, key)), timeout=30,
                 what="the other group's message")  # fmt: skip
        time.sleep(3)  # several group_intervals of Alertmanager
        assert sum("HighLatency" in t for t in _texts(emu, key)) == before
        log = gateway.log.read_text("utf-8")
        assert key not in log and key not in shown
    finally:
        gateway.stop()
