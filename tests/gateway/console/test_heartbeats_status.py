"""The console's status page shows each heartbeat (last seen, expected by, state), and the
metrics say the same: a served gateway on a settable clock, the emulator as the group."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.emulator.conftest import Emu
from tests.gateway.harness import content_of, emulator_contents, running_gateway, wait_for
from tests.images import keep_screenshot
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.masking import mask_key

from .support import BASIC, PASSWORD, USER, Console, canary_key, console_config, secrets_of

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC, 16:00:00 in Shanghai
SCREENSHOT = Path(__file__).parents[3] / "docs" / "console-heartbeats-zh-CN.png"


def _watchdog() -> dict[str, object]:
    payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
    dog = payload["alerts"][0]
    dog["labels"] = {"alertname": "Watchdog", "severity": "none"}
    payload["alerts"] = [dog]
    payload["groupLabels"] = {"alertname": "Watchdog"}
    payload["commonLabels"] = dict(dog["labels"])
    return payload


def test_the_status_page_and_the_metrics_show_each_heartbeat(emu: Emu, browser: Browser) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://",
        heartbeats=[{"name": "prod", "expect_every": "4m", "grace": "1m", "bots": ["ops"]},
                    {"name": "staging", "expect_every": "1h", "bots": ["ops"]}],
    )  # fmt: skip
    clock = [NOW]
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        with running_gateway(config, clock=lambda: clock[0]) as gw:
            console = Console(gw, secrets_of(key))
            answer = gw.post("/alertmanager", _watchdog(), headers={"Authorization": BASIC})
            assert answer.json() == {"status": "heartbeat", "heartbeats": ["prod"]}

            def beats() -> dict[str, dict[str, object]]:
                status = console.json("/api/v1/status")
                return {b["name"]: b for b in status["heartbeats"]}

            wait_for(lambda: beats()["staging"]["state"] == "waiting", what="armed at start")
            prod = beats()["prod"]
            assert (prod["state"], prod["last_seen"], prod["expected_by"]) == (
                "ok", NOW, NOW + 300,
            )  # fmt: skip
            assert "receiver wecom-bot" in str(prod["source"])
            assert console.metric("wecom_bot_heartbeat_last_seen_timestamp_seconds") == NOW
            page.goto(gw.url + "/ui#status")
            row = page.locator('#st-heartbeats tr[data-heartbeat="prod"]')
            expect(row).to_contain_text("Alertmanager prod")
            expect(row).to_contain_text("beating")
            expect(row).to_contain_text("2027-01-15 16:05:00")  # expected by, Shanghai time
            chinese = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD}, locale="zh-CN"
            )
            try:
                zh = chinese.new_page()
                zh.goto(gw.url + "/ui#status")
                expect(zh.locator("#st-heartbeats-box h2")).to_have_text("心跳")
                zh_row = zh.locator('#st-heartbeats tr[data-heartbeat="prod"]')
                expect(zh_row).to_contain_text("正常")
                expect(zh_row).to_contain_text("来自 alertmanager")
            finally:
                chinese.close()
            clock[0] = NOW + 301  # no beat for expect_every + grace: the group is told once
            wait_for(lambda: beats()["prod"]["state"] == "missing", what="the miss")
            wait_for(lambda: len(emulator_contents(emu, key)) == 1, what="the miss message")
            [miss] = emulator_contents(emu, key)
            assert "告警链路中断：Alertmanager prod 已 5m 未发送心跳" in content_of(miss)
            wait_for(lambda: console.metric("wecom_bot_heartbeat_missing") == 1,
                     what="the gauge")  # fmt: skip
            page.reload()
            expect(row).to_contain_text("MISSING")
            chinese = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD}, locale="zh-CN",
                viewport={"width": 1280, "height": 720},
            )
            try:
                zh = chinese.new_page()
                zh.goto(gw.url + "/ui#status")
                zh_row = zh.locator('#st-heartbeats tr[data-heartbeat="prod"]')
                expect(zh_row).to_contain_text("2027-01-15 16:00:00")  # last seen
                # The canary key differs per run: its masked form is hidden in the picture.
                masked = zh.get_by_text(mask_key(key), exact=True)
                shot = zh.screenshot(full_page=True, mask=[masked], mask_color="#e8e8e8")
                keep_screenshot(SCREENSHOT, shot)
            finally:
                chinese.close()
            # Not an alert group: the open alerts leave it out, acting on it finds nothing.
            assert console.json("/api/v1/alerts")["groups"] == []
            acted = console.post("/api/v1/alerts/heartbeat:prod/acknowledge", {"name": "ann"})
            assert acted.status_code == 404
    finally:
        context.close()
