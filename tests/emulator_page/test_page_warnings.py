"""Leniency warnings on the page, in a real headless Chromium: a yellow note under the bubble of
a message that only live WeCom's leniency lets through, and none under an exact one."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator

from wecom_bot.emulator import EmulatorSettings
from wecom_bot.masking import key_fingerprint

from .conftest import FakeClock, fit_viewport, open_page, running

pytestmark = pytest.mark.browser

START = 1750210320.0
HOSTILE_FIELD = '<img src=x onerror="window.__pwned=1">'
# Where the picture goes for a person to look at; outside the repository.
SHOT = Path(os.environ.get("WECOM_BOT_WARNINGS_SHOT", "/tmp/emulator-warnings.png"))


def text(content: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content, **extra}}


def note_of(entry: Locator) -> Locator:
    return entry.locator(".ep-warnings")


def test_warnings_are_a_yellow_note_under_the_bubble(browser: Browser) -> None:
    key = str(uuid.uuid4())
    clock = FakeClock(START)
    with running(EmulatorSettings(rate=None, clock=clock, limits="live")) as emu:
        send = f"/cgi-bin/webhook/send?key={key}"
        emu.send_ok(key, text("exact request: no note"))
        clock.now += 30
        # What requests.post(url, data=json.dumps(...)) sends: no Content-Type at all.
        body = json.dumps(text("磁盘使用率 91%", safe=0, **{HOSTILE_FIELD: 1}))
        assert emu.client.post(send, content=body.encode()).json()["errcode"] == 0
        clock.now += 30
        repaired = b'{"msgtype":"text","text":{"content":"line 1\nline 2"}'
        assert emu.send_raw(key, repaired)["errmsg"] == "ok. Warning: wrong json format. "
        clock.now += 30
        emu.send_ok(key, text("长" * 720))  # 2160 bytes: under the live limit only
        clock.now += 30
        refused = emu.client.post(send, content=json.dumps(text("")).encode())
        assert refused.json()["errcode"] == 44004

        with open_page(browser, f"{emu.url}/#{key_fingerprint(key)}") as watched:
            watched.entries(5)
            page = watched.page
            entries = page.locator("#ep-chat .ep-entry")
            exact, loose, fixed, long, rejected = (entries.nth(i) for i in range(5))

            assert note_of(exact).count() == 0
            loose_items = note_of(loose).locator(".ep-warning")
            assert loose_items.all_text_contents() == [
                "sent with no Content-Type, not application/json; read as JSON as live WeCom does",
                "unknown field text.safe ignored",
                f"unknown field text.{HOSTILE_FIELD} ignored",
            ]
            assert [loose_items.nth(i).get_attribute("data-kind") for i in range(3)] == [
                "content_type", "unknown_field", "unknown_field"
            ]  # fmt: skip
            assert note_of(fixed).locator(".ep-warning").get_attribute("data-kind") == (
                "json_repaired"
            )
            assert "(raw control character inside a string, missing final })" in (
                note_of(fixed).text_content() or ""
            )
            assert note_of(long).text_content() == (
                "!text.content is 2160 bytes: over the documented limit 2048, "
                "under the live one 5120"
            )
            assert long.locator(".ep-size.ep-size--over").text_content() == "2,160 / 2,048 B"
            # A rejected request says what leniency it used too, under its red line.
            assert rejected.locator(".ep-rejected").count() == 1
            assert note_of(rejected).locator(".ep-warning").all_text_contents() == [
                "sent with no Content-Type, not application/json; read as JSON as live WeCom does"
            ]

            # Yellow, and under the bubble, not beside or above it.
            for entry in (loose, fixed, long):
                note = note_of(entry)
                assert note.get_attribute("role") == "note"
                colours = note.evaluate(
                    "n => [getComputedStyle(n).backgroundColor, getComputedStyle(n).color]"
                )
                assert colours == ["rgb(255, 247, 214)", "rgb(122, 90, 0)"]
                bubble = entry.locator(".wb-bubble").bounding_box()
                box = note.bounding_box()
                assert bubble is not None and box is not None
                assert box["y"] >= bubble["y"] + bubble["height"]
                assert abs(box["x"] - bubble["x"]) < 2
            assert page.evaluate("window.__pwned") is None
            assert watched.errors == [] and watched.violations() == []
            fit_viewport(watched)
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOT), full_page=True)
    assert SHOT.read_bytes().startswith(b"\x89PNG")
