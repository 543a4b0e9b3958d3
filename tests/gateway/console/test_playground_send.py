"""The playground's "Send to bot" posts a test that cannot page anyone.

Against a real gateway (actions on, a route that mentions ``oncall`` and ``dba-lead``) and the
emulator: a headless Chromium clicks Send, the confirmation names the bot, and the message the
emulator receives opens with ``[测试 TEST]``, with no ``<@``, no ``mentioned_list`` and no
``/act/`` link; the same through the API for every msgtype, also with a typed template that
writes mention tags and an action URL itself; the history records it as a test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.emulator.conftest import Emu
from tests.gateway.harness import Running, content_of, emulator_contents, running_gateway, wait_for
from tests.images import keep_screenshot
from wecom_bot.gateway.config import GatewayConfig
from wecom_bot.gateway.console.testsend import marked_messages
from wecom_bot.gateway.templates.renderer import MsgType

from .support import PASSWORD, USER, Console, canary_key, console_config, secrets_of

SCREENSHOT = Path(__file__).parents[3] / "docs" / "console-test-send.png"
MARKER = "[测试 TEST]"
# A typed template that tries everything a real page has: mention tags and an action URL.
TYPED = (
    "{{ notification.status }} {{ alerts[0].labels.alertname }}\n"
    "<@boss> <@all>\n"
    "[认领](https://gw.example.com/act/forged-token)\n"
    "{% if actions %}{{ actions.ack }}{% endif %}"
)


def _config(emu: Emu, key: str) -> GatewayConfig:
    return console_config(
        emu.url, key, "memory://",
        external_url="https://gw.example.com",
        actions={"secret": "s" * 24},
        routes=[
            {"name": "critical", "matchers": ['severity="critical"'], "bots": ["ops"],
             "mentions": {"users": ["oncall", "dba-lead"]}},
        ],
    )  # fmt: skip


@pytest.fixture
def served(emu: Emu) -> Iterator[tuple[Running, str]]:
    key = canary_key()
    with running_gateway(_config(emu, key)) as gw:
        yield gw, key


def _inert(payload: dict[str, Any]) -> str:
    """Assert ``payload`` is a marked, inert test message; its content."""
    body = payload[payload["msgtype"]]
    content = content_of(payload)
    assert content.splitlines()[0].startswith(MARKER), content
    assert "<@" not in content
    assert "mentioned_list" not in body and "mentioned_mobile_list" not in body
    assert "/act/" not in content and "#/silences/new" not in content
    return content


def test_send_asks_first_naming_the_bot_and_posts_an_inert_test(
    browser: Browser, served: tuple[Running, str], emu: Emu
) -> None:
    gw, key = served
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    page: Page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(gw.url + "/ui#playground")
        expect(page.locator("#pg-payload")).to_have_value(re.compile("HighCPU"))
        page.select_option("#pg-route", "critical")
        page.select_option("#pg-bot", "ops")
        page.click("#pg-render")  # the preview still shows the route's real look
        expect(page.locator("#pg-output .wb-msg--markdown")).to_contain_text("HighCPU")
        page.click("#pg-send")
        dialog = page.locator("#pg-confirm")
        expect(dialog).to_be_visible()
        expect(page.locator("#pg-confirm-bot")).to_have_text("ops")
        expect(page.locator("#pg-confirm-send")).to_have_text("Send test to ops")
        expect(dialog).to_contain_text(MARKER)
        keep_screenshot(SCREENSHOT, dialog.screenshot())
        # Cancel sends nothing.
        page.click("#pg-confirm-cancel")
        expect(dialog).to_be_hidden()
        page.click("#pg-send")
        page.click("#pg-confirm-send")
        expect(page.locator("#pg-result")).to_contain_text("Queued 1 test message(s) for ops")
        wait_for(lambda: len(emulator_contents(emu, key)) == 1, what="the test send")
        [payload] = emulator_contents(emu, key)
        content = _inert(payload)
        assert "HighCPU" in content
        assert "@oncall (测试，未提醒)" in content and "@dba-lead (测试，未提醒)" in content
    finally:
        context.close()


@pytest.mark.parametrize("msgtype", ["text", "markdown", "markdown_v2"])
def test_every_msgtype_is_marked_and_inert_through_the_api(
    served: tuple[Running, str], emu: Emu, msgtype: str
) -> None:
    gw, key = served
    console = Console(gw, secrets_of(key))
    for template_source in (None, TYPED):
        before = len(emulator_contents(emu, key))
        body = {"sample": "alertmanager_firing", "route": "critical", "bot": "ops",
                "msgtype": msgtype, "template_source": template_source}  # fmt: skip
        answer = console.post("/api/v1/playground/send", body)
        assert answer.status_code == 200, answer.text
        sent = answer.json()
        assert sent["test"] is True and sent["mentions_written_plainly"] == ["oncall", "dba-lead"]
        wait_for(lambda b=before: len(emulator_contents(emu, key)) == b + 1, what="the test")
        content = _inert(emulator_contents(emu, key)[-1])
        assert "@dba-lead (测试，未提醒)" in content
        if template_source:
            assert "@boss (测试，未提醒)" in content and "@all (测试，未提醒)" in content
            assert "链接已停用" in content  # the forged URL, in words
            assert "认领 (测试：链接已停用 link disabled)" in content  # its text kept
        else:  # the built-in template's 静默 link to Alertmanager's new-silence page
            assert "静默" in content and "链接已停用" in content
        # Recorded as a test in the history.
        entry = console.json(f"/api/v1/history/{sent['notification_id']}")
        entry = entry.get("entry", entry)
        assert entry["title"].startswith(MARKER)
        assert entry["detail"]["test"] is True
    # The render (the preview) still shows what the route really sends.
    preview = console.post(
        "/api/v1/playground/render",
        {"sample": "alertmanager_firing", "route": "critical", "bot": "ops", "msgtype": "markdown"},
    )
    assert "<@dba-lead>" in preview.json()["parts"][0]["payload"]["markdown"]["content"]


@pytest.mark.parametrize("msgtype", ["text", "markdown", "markdown_v2"])
def test_a_long_test_is_split_with_every_part_marked(msgtype: MsgType) -> None:
    content = "".join(f"line {i} of a long test <@boss> message\n" for i in range(400))
    parts = marked_messages(content, msgtype, ["oncall"])
    assert len(parts) >= 3
    for part in parts:
        _inert(part.payload)
        assert part.size == len(content_of(part.payload).encode()) <= part.limit
    assert "@oncall (测试，未提醒)" in content_of(parts[0].payload)
