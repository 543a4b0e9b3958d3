"""Open alerts show their real state: a group a time interval holds (muted, dropped or
deferred) says so with its interval and until when, a silenced or acknowledged one says who,
and the "needs a human" badge counts only the open groups the group chat has seen.

A real gateway on an injected clock (03:00 in Shanghai) and the emulator; a headless Chromium
reads the page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.emulator.conftest import Emu
from tests.gateway.harness import Running, running_gateway
from tests.images import keep_screenshot

from .support import BASIC, PASSWORD, USER, Console, canary_key, console_config, secrets_of
from .test_timed_routes import INTERVALS, NIGHT, NINE, Clock, alert, route

SCREENSHOT = Path(__file__).parents[3] / "docs" / "console-open-alerts-held.png"


@pytest.fixture
def night(emu: Emu) -> Iterator[tuple[Running, Console]]:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://", time_intervals=INTERVALS,
        routes=[
            route("kept", "a", active_time_intervals=["business_hours"]),
            route("dropped", "b", mute_time_intervals=["night"], muted="drop"),
            route("deferred", "c", active_time_intervals=["business_hours"], muted="defer"),
            route("paging", "d"),
            route("acked", "e"),
        ],
    )  # fmt: skip
    with running_gateway(config, clock=Clock(NIGHT)) as gw:
        console = Console(gw, secrets_of(key))
        for team in "abcde":
            payload = alert(team)
            for item in payload["alerts"]:  # started 10 minutes before the clock: a fixed picture
                item["startsAt"] = datetime.fromtimestamp(NIGHT - 600, UTC).isoformat()
            payload["groupLabels"] = {"team": team}  # one group per team
            answer = gw.post("/alertmanager?wait=true", payload, headers={"Authorization": BASIC})
            assert answer.status_code == 200, answer.text
        yield gw, console


def _by_route(console: Console) -> dict[str, dict[str, Any]]:
    data = console.json("/api/v1/alerts")
    return {g["routes"][0]: g for g in data["groups"]} | {"": {"needs_human": data["needs_human"]}}


def test_held_groups_show_their_state_and_are_not_counted(
    browser: Browser, night: tuple[Running, Console]
) -> None:
    gw, console = night
    groups = _by_route(console)
    acked = groups["acked"]
    done = console.post(f"/api/v1/alerts/{acked['id']}/acknowledge", {"name": "王五"})
    assert done.status_code == 200, done.text
    groups = _by_route(console)
    states = {r: (g.get("state"), g.get("needs_human")) for r, g in groups.items() if r}
    assert states == {
        "kept": ("muted", False), "dropped": ("muted", False), "deferred": ("deferred", False),
        "paging": ("open", True), "acked": ("acknowledged", False),
    }  # fmt: skip
    assert groups[""]["needs_human"] == 1
    kept, deferred = groups["kept"]["held"], groups["deferred"]["held"]
    assert kept["action"] == "keep" and "business_hours" in kept["intervals"]
    assert kept["until"] == pytest.approx(NINE)  # 09:00 Shanghai, when business hours start
    assert deferred["action"] == "defer" and deferred["until"] == pytest.approx(NINE)
    assert groups["dropped"]["held"]["action"] == "drop"
    assert "night" in groups["dropped"]["held"]["intervals"]
    assert groups["acked"]["acknowledgers"] == [{"by": "王五", "at": NIGHT}]

    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 1280, "height": 640}, timezone_id="Asia/Shanghai",
    )  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(gw.url + "/ui#alerts")
        rows = page.locator("#al-list tbody tr")
        expect(rows).to_have_count(5)
        expect(page.locator("#gc-open-badge")).to_have_text("1")

        def state_of(route_name: str) -> str:
            row = page.locator(f"#al-list tr[data-group='{groups[route_name]['id']}']")
            return row.locator(".gc-state").inner_text()

        assert state_of("kept").startswith("muted until ")
        assert "outside active_time_intervals business_hours" in state_of("kept")
        assert "the group has not seen it" in state_of("kept")
        assert "dropped" in state_of("dropped")
        assert state_of("deferred").startswith("deferred until ")
        assert state_of("paging") == "open, unacknowledged"
        assert state_of("acked").startswith("acknowledged by 王五 at ")
        for held in ("kept", "dropped", "deferred"):
            row = page.locator(f"#al-list tr[data-group='{groups[held]['id']}']")
            assert "gc-state--open" not in (row.locator(".gc-state").get_attribute("class") or "")
        page.locator("#al-name").fill("")
        keep_screenshot(SCREENSHOT, page.screenshot())
    finally:
        context.close()
