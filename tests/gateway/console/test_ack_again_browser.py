"""A second acknowledgement in Chromium: the used 认领 link says who acknowledged first and when,
a second person adds their name without a second group message, and the console shows both.

A real gateway (on an injected clock) and the emulator; the ``ack_bots`` group's messages are
counted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, expect

from tests.emulator.conftest import Emu, new_key
from tests.gateway.harness import emulator_contents, running_gateway, wait_for
from tests.gateway.test_ack_once import _ack_link, _config, _idle
from tests.images import keep_screenshot
from wecom_bot.gateway.samples import alertmanager_firing

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 25, 3, 0, tzinfo=SHANGHAI).timestamp()
PHONE = {"width": 390, "height": 720}
SCREENSHOT = Path(__file__).parents[3] / "docs" / "actions-acknowledge-again.png"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_second_person_adds_their_name_in_the_browser(
    browser: Browser, emu: Emu, tmp_path: Path
) -> None:
    alerts_key, acks_key = new_key(), new_key()
    clock = Clock(START)
    with running_gateway(
        _config(emu, alerts_key, acks_key, tmp_path, "markdown"), clock=clock
    ) as gw:
        firing = alertmanager_firing(datetime.fromtimestamp(START - 600, SHANGHAI))
        assert gw.post("/alertmanager", firing).status_code == 200
        token = _ack_link(emu, alerts_key)
        first = browser.new_context(viewport=PHONE, locale="zh-CN")
        page = first.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{gw.url}/act/{token}")
        page.fill("#name", "王五")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("已认领")
        first.close()
        wait_for(lambda: len(emulator_contents(emu, acks_key)) == 1, what="the first line")

        clock.now = START + 600
        second = browser.new_context(viewport=PHONE, locale="zh-CN")
        page = second.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{gw.url}/act/{token}")
        said = "已由 王五 于 2026-11-25 03:00 CST 认领"
        expect(page.locator("main")).to_contain_text(said)
        expect(page.locator("h1")).to_have_text("已有人认领")
        page.fill("#name", "赵六")
        keep_screenshot(SCREENSHOT, page.screenshot(full_page=True))
        page.get_by_role("button", name="也认领（不发群消息）").click()
        expect(page.locator("main")).to_contain_text("你的名字已记录：赵六。")
        expect(page.locator("main")).to_contain_text(said)
        expect(page.locator("main")).to_contain_text("赵六 · 2026-11-25 03:10 CST")
        second.close()
        wait_for(lambda: _idle(gw), what="nothing left to send")
        assert len(emulator_contents(emu, acks_key)) == 1  # no second group message

        console = browser.new_context(timezone_id="Asia/Shanghai")
        page = console.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{gw.url}/ui#alerts")
        state = page.locator("#al-list .gc-state")
        expect(state).to_have_text(
            "acknowledged by 王五 at 2026-11-25 03:00:00 +08:00 · also 赵六 at "
            "2026-11-25 03:10:00 +08:00"
        )
        expect(page.locator("#al-list button", has_text="Add my name")).to_be_enabled()
        console.close()
