"""A storm summary on the emulator's page, in a real headless Chromium: the hosts a reader
must see are on the screen, and the picture in docs/ is that page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.images import keep_screenshot
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.templates.renderer import Renderer
from wecom_bot.masking import key_fingerprint
from wecom_bot.storm import AlertBrief

from .conftest import FakeClock, fit_viewport, open_page, running

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "storm-summary.png"
START = 1750210320.0  # 2025-06-18 09:32:00 in Shanghai


def storm() -> list[AlertBrief]:
    """1,000 HighLatency alerts, 40 disks on 10.0.3.x, and 12 resolved services."""
    firing = [
        AlertBrief(
            {"alertname": "HighLatency", "instance": f"host-{i}", "job": "api",
             "severity": "critical" if i < 40 else "warning" if i < 400 else "info"},
            "firing", START - 300, "p99 latency above 2 s",
        )  # fmt: skip
        for i in range(1000)
    ]
    disks = [
        AlertBrief({"alertname": "DiskFull", "instance": f"10.0.3.{i}:9100", "mount": "/data"},
                   "firing", START - 900)  # fmt: skip
        for i in range(1, 41)
    ]
    resolved = [
        AlertBrief({"alertname": "ServiceDown", "zone": ("sh-a", "sh-b")[i % 2],
                    "service": f"orders-{i // 2}"}, "resolved", START - 3600)  # fmt: skip
        for i in range(12)
    ]
    return firing + disks + resolved


def test_a_storm_summary_shows_every_host_on_the_page(browser: Browser) -> None:
    key = "5f0c1a2e-7d3b-4c1e-9a6f-0b2d4e6f8a10"  # fixed: the page shows its fingerprint
    renderer = Renderer(clock=lambda: datetime.fromtimestamp(START, UTC))
    with running(EmulatorSettings(rate=None, clock=FakeClock(START))) as emu:
        for payload in renderer.render_summary(storm()).payloads:
            emu.send_ok(key, payload)
        with open_page(browser, f"{emu.url}/#{key_fingerprint(key)}") as watched:
            watched.entries(1)
            fit_viewport(watched)
            bubble = watched.page.locator("#ep-chat .ep-entry").first
            shown = bubble.inner_text()
            for line in (
                "告警汇总 FIRING · 1040",
                "HighLatency × 1000",
                "级别 critical × 40 · instance",
                "host-[0-39]",
                "host-[40-399]",
                "host-[400-999]",
                "10.0.3.[1-40]:9100",
                "orders-0 / sh-a, sh-b",
            ):
                assert line in shown, (line, shown)
            shot = watched.page.screenshot(full_page=True)
    keep_screenshot(SCREENSHOT, shot)
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000
