"""A real headless Chromium drives /ui: playground, dead-letter re-send, hostile alerts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.emulator.conftest import Emu
from tests.gateway.harness import Running, emulator_contents, running_gateway, wait_for
from wecom_bot.gateway.samples import alertmanager_firing

from .support import BASIC, PASSWORD, USER, add_fault, canary_key, console_config

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
# Counts Content-Security-Policy violations: a blocked inline handler would show up here.
WATCH_CSP = """
window.__csp = 0;
document.addEventListener("securitypolicyviolation", () => { window.__csp += 1; });
"""




@pytest.fixture
def served(emu: Emu) -> Iterator[tuple[Running, str]]:
    key = canary_key()
    with running_gateway(console_config(emu.url, key, "memory://")) as gw:
        yield gw, key


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def post(gw: Running, path: str, payload: Any) -> dict[str, Any]:
    answer = gw.post(path, payload, headers={"Authorization": BASIC})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_without_credentials_the_page_is_refused(
    browser: Browser, served: tuple[Running, str]
) -> None:
    gw, _ = served
    for credentials in (None, {"username": USER, "password": "wrong"}):
        context = browser.new_context(http_credentials=credentials)
        page = context.new_page()
        try:
            answer = page.goto(gw.url + "/ui")
            assert answer is not None and answer.status == 401
        except PlaywrightError as exc:  # wrong credentials: Chromium gives up on the challenge
            assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
        try:
            assert page.locator("#gc-nav").count() == 0
        finally:
            context.close()


def test_playground_renders_a_sample_alert(
    page: Page, served: tuple[Running, str], emu: Emu
) -> None:
    gw, key = served
    page.goto(gw.url + "/ui#playground")
    expect(page.locator("#pg-payload")).to_have_value(re.compile("HighCPU"))
    # The empty choices say what they stand for: without a route, the default template and the
    # bot's msgtype; with one, the route's.
    first = "(s) => s.options[0].text"
    expect(page.locator("#pg-bot")).to_have_value("ops")
    assert page.locator("#pg-template").evaluate(first) == "(default)"
    assert page.locator("#pg-msgtype").evaluate(first) == "(the bot's)"
    page.select_option("#pg-route", "critical")
    assert page.locator("#pg-template").evaluate(first).startswith("(the route's: ")
    expect(page.locator("#pg-bot")).to_have_value("ops")  # the route's bot, named
    page.click("#pg-render")
    bubble = page.locator("#pg-output .wb-msg--markdown")
    expect(bubble).to_have_count(1)
    expect(bubble).to_contain_text("HighCPU")
    expect(page.locator("#pg-summary")).to_contain_text("/ 4096 bytes")
    expect(page.locator("#pg-summary")).to_contain_text("fits one message")
    # The Grafana sample, loaded from the list, as markdown_v2.
    page.select_option("#pg-sample", "grafana_firing")
    page.click("#pg-load")
    expect(page.locator("#pg-source")).to_have_value("grafana")
    page.select_option("#pg-msgtype", "markdown_v2")
    page.click("#pg-render")
    expect(page.locator("#pg-output .wb-msg--markdown_v2")).to_have_count(1)
    # Its table of alerts has the pane's width: the link column is not behind a scroll bar.
    wrap = page.locator("#pg-output .wb-md-table-wrap").first
    assert wrap.evaluate("(w) => w.scrollWidth <= w.clientWidth + 1"), wrap.evaluate(
        "(w) => [w.scrollWidth, w.clientWidth]"
    )
    # Sent to the bot from the page: it arrives in the emulator.
    page.click("#pg-send")
    page.click("#pg-confirm-send")
    expect(page.locator("#pg-result")).to_contain_text("Queued 1 test message(s) for ops")
    wait_for(lambda: len(emulator_contents(emu, key)) == 1, what="the sent render")
    assert page.evaluate("window.__csp") == 0


def test_dead_letter_is_resent_from_the_page(
    page: Page, served: tuple[Running, str], emu: Emu
) -> None:
    gw, key = served
    add_fault(emu, key, 93000)
    post(gw, "/alertmanager", alertmanager_firing())
    page.goto(gw.url + "/ui#dead")
    item = page.locator("#dl-list li[data-id]")
    expect(item).to_have_count(1)  # the page polls: the dead letter shows up by itself
    expect(item).to_contain_text("WeCom API error 93000")
    expect(page.locator("#gc-dead-badge")).to_have_text("1")
    assert emulator_contents(emu, key) == []
    item.locator("input[type=checkbox]").check()
    page.click("#dl-requeue")
    expect(page.locator("#dl-result")).to_have_text("Re-sent 1 message(s).")
    wait_for(lambda: len(emulator_contents(emu, key)) == 1, what="the re-sent dead letter")
    assert "HighCPU" in str(emulator_contents(emu, key)[0])
    expect(page.locator("#dl-empty")).to_be_visible()
    # The status view shows the failure and its errcode, and the key only masked.
    page.click("button[data-view=status]")
    row = page.locator("#st-bots tr[data-bot=ops]")
    expect(row).to_contain_text("errcode 93000")
    expect(row).to_contain_text(f"{key[:4]}…{key[-4:]}")
    assert key not in page.content()


def test_a_hostile_alert_cannot_inject_markup(page: Page, served: tuple[Running, str]) -> None:
    gw, key = served
    payload = alertmanager_firing()
    payload["commonLabels"]["alertname"] = HOSTILE
    for item in payload["alerts"]:
        item["labels"]["alertname"] = HOSTILE
        item["labels"]["team"] = '"><b id="injected">x</b>'
        item["annotations"]["summary"] = f"{HOSTILE} [click](javascript:alert(1)) <font color=red>"
    outcome = post(gw, "/alertmanager", payload)
    page.goto(gw.url + "/ui#history")
    row = page.locator(f"#hi-list tr[data-id='{outcome['notification_id']}']")
    expect(row).to_contain_text("<img src=x")  # shown as text
    row.click()
    detail = page.locator("#hi-detail")
    expect(detail.locator(".wb-msg")).to_have_count(1)
    expect(detail).to_contain_text('team="><b id="injected">x</b>')
    # The same payload through the playground.
    page.click("button[data-view=playground]")
    expect(page.locator("#pg-payload")).not_to_have_value("")
    page.fill("#pg-payload", json.dumps(payload))
    page.click("#pg-render")
    expect(page.locator("#pg-output .wb-msg")).to_have_count(1)
    assert page.locator("#injected").count() == 0
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__csp") == 0


def test_open_alerts_are_listed_and_acknowledged_from_the_page(page: Page, emu: Emu) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://",
        routes=[{"name": "paging", "matchers": ['severity="critical"'], "bots": ["ops"],
                 "escalate": [{"after": "1h", "mention": ["lead", "@all"]}]}],
    )  # fmt: skip
    payload = alertmanager_firing()
    payload["groupLabels"] = {"alertname": "HighCPU", "note": HOSTILE}
    payload["commonLabels"] = {**payload["commonLabels"], "severity": "critical"}
    with running_gateway(config) as gw:
        post(gw, "/alertmanager", payload)
        # Its tab's badge counts it from any view, before the tab is opened.
        page.goto(gw.url + "/ui#history")
        expect(page.locator("#gc-open-badge")).to_have_text("1")
        page.click("button[data-view=alerts]")
        row = page.locator("#al-list tbody tr").first
        expect(row).to_contain_text("HighCPU")
        expect(row).to_contain_text("open, unacknowledged")
        expect(row).to_contain_text("escalation 1 at")
        expect(row).to_contain_text("@lead, @all")
        assert "@@all" not in row.inner_text()
        expect(page.locator("#gc-open-badge")).to_have_text("1")
        row.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#al-result")).to_contain_text("Type your name first")
        page.fill("#al-name", "王五")
        row.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#al-result")).to_contain_text("Acknowledged HighCPU")
        expect(page.locator("#al-list tbody tr").first).to_contain_text("acknowledged by 王五")
        # Acknowledged: the button now adds another name, quietly.
        acked = page.locator("#al-list tbody tr").first
        expect(acked.get_by_role("button", name="Acknowledge")).to_have_count(0)
        expect(acked.get_by_role("button", name="Add my name")).to_be_enabled()
        expect(page.locator("#gc-open-badge")).to_be_hidden()  # nothing needs a human now
        # a disabled button looks it: greyed, no hand cursor, unlike a button that works
        look = "(b) => [getComputedStyle(b).color, getComputedStyle(b).cursor]"
        disabled_color, disabled_cursor = page.evaluate(
            "() => { const b = document.createElement('button'); b.disabled = true;"
            " b.textContent = 'x'; document.querySelector('#al-list').append(b);"
            " const s = getComputedStyle(b); const r = [s.color, s.cursor];"
            " b.remove(); return r; }"
        )
        enabled_color, enabled_cursor = page.locator("#hi-search").evaluate(look)
        assert disabled_cursor == "not-allowed" and enabled_cursor == "pointer"
        assert disabled_color != enabled_color
        page.reload()
        expect(page.locator("#al-name")).to_have_value("王五")  # remembered
        assert HOSTILE in page.locator("#al-list").inner_text()  # shown as text, not markup
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("window.__csp") == 0


def test_a_storm_summary_links_to_the_history_of_its_alerts(
    browser: Browser, page: Page, emu: Emu
) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://",
        external_url="https://gw.example.com",
        actions={"secret": "s" * 24},
    )  # fmt: skip
    with running_gateway(config) as gw:
        storm = alertmanager_firing()
        template = storm["alerts"][0]
        storm["alerts"] = [
            {**template, "labels": {**template["labels"], "instance": f"host-{i}"}}
            for i in range(30)  # more than a message lists: written as a summary
        ]
        storm["commonLabels"] = {"alertname": "HighCPU"}
        other = alertmanager_firing()
        for item in other["alerts"]:
            item["labels"]["alertname"] = "DiskFull"
        other["commonLabels"] = other["groupLabels"] = {"alertname": "DiskFull"}
        storm_id = post(gw, "/alertmanager", storm)["notification_id"]
        other_id = post(gw, "/alertmanager", other)["notification_id"]
        links: list[str] = []

        def linked() -> bool:
            for payload in emulator_contents(emu, key):
                content = payload[payload["msgtype"]]["content"]
                found = re.findall(r"\(https://gw\.example\.com/ui/(#history[^)]*)\)", content)
                links.extend(found)
            return bool(links)

        wait_for(linked, what="a summary with a history link")
        page.goto(gw.url + "/ui/" + links[0])
        expect(page.locator("#hi-label")).to_have_value("alertname=HighCPU")
        expect(page.locator(f"#hi-list tr[data-id='{storm_id}']")).to_have_count(1)
        expect(page.locator(f"#hi-list tr[data-id='{other_id}']")).to_have_count(0)
        page.locator(f"#hi-list tr[data-id='{storm_id}']").click()
        expect(page.locator("#hi-detail")).to_contain_text("host-29")  # the whole alert is there


def test_times_read_in_the_gateways_zone_in_a_browser_elsewhere(
    browser: Browser, emu: Emu
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    night = datetime(2026, 11, 25, 3, 0, tzinfo=shanghai).timestamp()  # a Wednesday, 03:00
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://",
        time_intervals={"night": [{"times": [{"start_time": "22:00", "end_time": "09:00"}]}]},
        routes=[{"name": "quiet", "matchers": ['team="a"'], "bots": ["ops"],
                 "mute_time_intervals": ["night"], "muted": "drop"}],
    )  # fmt: skip
    # A browser in UTC (where 09:00 in Shanghai is 01:00) reads the gateway's clock.
    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD}, timezone_id="UTC"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        with running_gateway(config, clock=lambda: night) as gw:
            page.goto(gw.url + "/ui#status")
            row = page.locator("#st-routes tr", has_text="quiet")
            expect(row).to_contain_text("until 2026-11-25 09:00:00 +08:00")
            expect(page.locator("#st-meta")).to_contain_text("times in Asia/Shanghai")
            # A history filter typed as 09:00 is 09:00 in Shanghai, not in the browser's zone.
            since = datetime(2026, 11, 25, 9, 0, tzinfo=shanghai).timestamp()
            page.goto(gw.url + f"/ui#history?since={int(since)}")
            expect(page.locator("#hi-since")).to_have_value("2026-11-25T09:00")
            assert page.evaluate("() => new Date().getTimezoneOffset()") == 0
    finally:
        context.close()


def test_a_dead_letter_counts_its_try_and_names_its_errcode_once(
    page: Page, served: tuple[Running, str], emu: Emu
) -> None:
    gw, key = served
    add_fault(emu, key, 93000)
    post(gw, "/alertmanager", alertmanager_firing())
    page.goto(gw.url + "/ui#dead")
    item = page.locator("#dl-list li[data-id]")
    expect(item).to_contain_text("after 1 attempt(s)")
    reason = item.locator(".gc-bad")
    expect(reason).to_contain_text("93000")
    assert reason.inner_text().count("93000") == 1, reason.inner_text()
