"""Every page in Chinese and in English, in a real headless Chromium: the console's six views
(with a history entry opened, the template error, the test-send dialog and the results of
its buttons), the /act/ pages of a message's links (the forms, the answers, the refusals) and
the emulator's page. Each text on them must come from the language's catalogue (see
:mod:`.i18n_support`); the Chinese ones are kept as screenshots in docs/.

A real gateway on an injected clock (03:00 in Shanghai, so the pictures stay the same), the
emulator, and an Alertmanager address where nothing listens (a silence fails, in words)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.emulator.conftest import Emu, running
from tests.gateway.harness import Running, content_of, emulator_contents, running_gateway, wait_for
from tests.images import keep_screenshot
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.masking import key_fingerprint

from .i18n_support import check, data_values
from .support import (
    BASIC,
    PASSWORD,
    USER,
    Console,
    add_fault,
    canary_key,
    console_config,
    secrets_of,
)
from .test_timed_routes import INTERVALS, NIGHT, Clock, alert, route

pytestmark = pytest.mark.browser

DOCS = Path(__file__).parents[3] / "docs"
SECRET = "i18n-walk-secret-0123456789abcdef"
LINK = re.compile(r"https?://[^\s)\]]+/act/[A-Za-z0-9_.-]+")
# Why a group or route is muted: the page says it from the interval names, in its language.
MUTING_WORDS = frozenset({"intervals", "reason"})
TEMPLATE_ERROR = "{{ alert.labels.team }}\n{{ alert.lables.x }}\n"


@pytest.fixture
def walked(emu: Emu) -> Iterator[tuple[Running, Console, str, Clock]]:
    """A gateway at night: two groups held by time intervals, one deferred, one open (its
    message carries action links), one dead letter."""
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://", time_intervals=INTERVALS,
        routes=[
            route("kept", "a", active_time_intervals=["business_hours"]),
            route("dropped", "b", mute_time_intervals=["night"], muted="drop"),
            route("deferred", "c", active_time_intervals=["business_hours"], muted="defer"),
            route("paging", "d", escalate=[{"after": "1h", "mention": ["lead"]}]),
        ],
        external_url="http://127.0.0.1:1",
        actions={"secret": SECRET, "alertmanager_url": "http://127.0.0.1:9"},
    )  # fmt: skip
    clock = Clock(NIGHT)
    with running_gateway(config, clock=clock) as gw:
        for team in "abcd":
            clock.now += 60  # one minute apart: the history lists them in one order
            payload = alert(team)
            for item in payload["alerts"]:
                item["startsAt"] = datetime.fromtimestamp(NIGHT - 600, UTC).isoformat()
            payload["groupLabels"] = {"team": team}
            payload["externalURL"] = ""  # the configured Alertmanager, where nothing listens
            answer = gw.post("/alertmanager?wait=true", payload, headers={"Authorization": BASIC})
            assert answer.status_code == 200, answer.text
        wait_for(lambda: LINK.search(_texts(emu, key)) is not None, what="the paging message")
        add_fault(emu, key, 93000)
        lost = alert("z")
        lost["groupLabels"] = {"team": "z"}
        lost["externalURL"] = ""
        for item in lost["alerts"]:
            item["startsAt"] = datetime.fromtimestamp(NIGHT - 600, UTC).isoformat()
        clock.now += 60
        assert gw.post("/alertmanager", lost, headers={"Authorization": BASIC}).status_code == 200
        console = Console(gw, secrets_of(key))
        wait_for(lambda: console.json("/api/v1/dead-letters")["total"] == 1, what="a dead letter")
        yield gw, console, key, clock


def _context(browser: Browser, language: str, **extra: Any) -> BrowserContext:
    context = browser.new_context(
        locale=language, timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 720},
        **extra,
    )  # fmt: skip
    return context


def _links(emu: Emu, key: str) -> dict[str, str]:
    """The paging group's 认领, 静默 and 详情 links: their tokens by kind."""
    text = _texts(emu, key)
    tokens = [m.split("/act/")[1] for m in LINK.findall(text)]
    assert len(tokens) >= 3, text
    return dict(zip(("ack", "silence", "details"), tokens[:3], strict=True))


EXAMPLE_KEY = "0f5c2b8e-1d2a-4c6b-9e7f-1a2b3c4d5e6f"
EXAMPLE = (
    {"msgtype": "markdown", "markdown": {"content": (
        '## <font color="warning">🔥 告警 FIRING · 1</font> HighCPU\n'
        "> 摘要：db-1 的 CPU 使用率超过 95%\n> 开始：2026-11-25 02:50:00\n"
        "👉 [认领](http://127.0.0.1:1/act/x) · [静默](http://127.0.0.1:1/act/y)"
    )}},
    {"msgtype": "text", "text": {"content": "✅ 已认领 by 王五 · HighCPU"}},
    {"msgtype": "nonesuch"},
)  # fmt: skip
_EXAMPLE_DATA = {"✅ 已认领 by 王五 · HighCPU", "HighCPU"}


def _emulator_picture(page: Page, emu: Emu) -> bytes:
    """The emulator's page in a fresh emulator: three fixed messages, times masked."""
    for payload in EXAMPLE:
        emu.client.post(f"/cgi-bin/webhook/send?key={EXAMPLE_KEY}", json=payload)
    page.goto(f"{emu.url}/#{key_fingerprint(EXAMPLE_KEY)}")
    expect(page.locator("#ep-chat .ep-entry")).to_have_count(3)
    entries = emu.client.get(f"/page/groups/{key_fingerprint(EXAMPLE_KEY)}/entries").json()
    _EXAMPLE_DATA.update(data_values(entries, emu.client.get("/api/groups").json()))
    times = page.locator(".ep-time, .ep-group-time")
    return page.screenshot(mask=[times], mask_color="#dcdee2")


def _texts(emu: Emu, key: str) -> str:
    return " ".join(content_of(p) for p in emulator_contents(emu, key))


def _console_data(console: Console) -> set[str]:
    history = console.json("/api/v1/history?limit=200")
    details = [console.json(f"/api/v1/history/{e['id']}") for e in history["entries"]]
    samples = console.json("/api/v1/playground")
    return data_values(
        console.json("/api/v1/status"), console.json("/api/v1/alerts"), history, details,
        console.json("/api/v1/dead-letters"), samples, console.json("/api/v1/config"),
        [console.json(f"/api/v1/playground/samples/{s['name']}") for s in samples["samples"]],
        drop=MUTING_WORDS,
    )  # fmt: skip


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_page_speaks_one_language_from_its_catalogue(
    browser: Browser, emu: Emu, walked: tuple[Running, Console, str, Clock], language: str
) -> None:
    gw, console, key, clock = walked
    seen: list[str] = []
    counts: dict[str, int] = {}
    zh = language == "zh-CN"
    name = "王五" if zh else "Wang Wu"

    # -- the /act/ pages, as a phone in the chat app opens them --------------------------------
    links = _links(emu, key)
    data = _console_data(console) | {name, "ConnectError", "Alertmanager"}
    phone = _context(browser, language)
    page = phone.new_page()
    page.set_default_timeout(10_000)
    start = len(seen)
    try:
        for kind in ("ack", "silence", "details"):
            answer = page.goto(f"{gw.url}/act/{links[kind]}")
            assert answer is not None and answer.status == 200
            check(page, language, data, seen)
        assert page.goto(f"{gw.url}/act/{links['ack']}x") is not None
        expect(page.locator(".warn")).to_be_visible()  # a cut link: refused, in words
        check(page, language, data, seen)
        page.goto(f"{gw.url}/act/{links['silence']}?d=4h")
        page.fill("#name", name)
        page.click("button[type=submit]")  # nothing listens at the Alertmanager's address
        expect(page.locator(".warn")).to_contain_text("Alertmanager")
        check(page, language, data, seen)
        page.goto(f"{gw.url}/act/{links['ack']}")
        page.fill("#name", name)
        clock.now += 60
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("已认领" if zh else "Acknowledged")
        data |= _console_data(console)  # the acknowledgement's own line (the group's words)
        check(page, language, data, seen)
        page.goto(f"{gw.url}/act/{links['ack']}")
        expect(page.locator("h1")).to_have_text("已有人认领" if zh else "Already acknowledged")
        check(page, language, data, seen)
        page.fill("#name", "赵六")
        clock.now += 60
        page.click("button[name=post][value='0']")
        data |= {"赵六"}
        check(page, language, data, seen)
    finally:
        phone.close()
    counts["act"] = len(seen) - start

    # -- the console, every view --------------------------------------------------------------
    context = _context(browser, language, http_credentials={"username": USER, "password": PASSWORD})
    page = context.new_page()
    page.set_default_timeout(10_000)
    start = len(seen)
    render = console.post(
        "/api/v1/playground/render",
        {"source": "alertmanager", "payload": alert("d"), "template_source": TEMPLATE_ERROR},
    )  # the template error the page will show, in the server's words
    assert render.status_code == 422, render.text
    data |= data_values(render.json()) | _console_data(console)
    try:
        page.goto(gw.url + "/ui#status")
        expect(page.locator("#st-bots tbody tr")).to_have_count(1)
        expect(page.locator("#st-meta")).not_to_be_empty()
        check(page, language, data, seen)

        page.click("button[data-view=alerts]")
        rows = page.locator("#al-list tbody tr")
        expect(rows).to_have_count(5)
        # Why a group or route is muted is said in the page's words, around the intervals'
        # names (the history's events keep the server's words, so the walk allows them).
        why = (page.locator("#al-list").text_content() or "") + (
            page.locator("#st-routes").text_content() or ""
        )
        words = ("之内", "inside mute_time_intervals") if zh else ("inside mute_", "之内")
        assert words[0] in why and words[1] not in why and ("outside" in why) != zh, why
        again = page.locator("#al-list tbody tr button", has_text="也认领" if zh else "Add my name")
        page.fill("#al-name", "")
        again.click()
        expect(page.locator("#al-result")).to_have_attribute("data-ok", "false")
        check(page, language, data, seen)
        page.fill("#al-name", "钱七")
        clock.now += 60
        again.click()
        expect(page.locator("#al-result")).to_have_attribute("data-ok", "true")
        data |= {"钱七"} | _console_data(console)
        check(page, language, data, seen)
        page.fill("#al-name", "")
        page.locator("#al-result").evaluate("(n) => { n.textContent = ''; }")
        if zh:
            keep_screenshot(DOCS / "console-zh-CN.png", page.screenshot())

        page.click("button[data-view=history]")
        expect(page.locator("#hi-list tbody tr")).to_have_count(8)
        if zh:  # the list only: an opened message says how long ago its alert began
            keep_screenshot(DOCS / "console-history-zh-CN.png", page.screenshot())
        page.locator("#hi-list tbody tr", has_text="HighCPU").last.click()
        expect(page.locator("#hi-detail .gc-events li").first).to_be_visible()
        check(page, language, data, seen)

        page.click("button[data-view=dead]")
        expect(page.locator("#dl-list li[data-id]")).to_have_count(1)
        page.click("#dl-requeue")
        expect(page.locator("#dl-result")).to_have_attribute("data-ok", "false")
        check(page, language, data, seen)
        page.locator("#dl-list input[type=checkbox]").check()
        page.click("#dl-requeue")
        expect(page.locator("#dl-result")).to_have_attribute("data-ok", "true")
        check(page, language, data, seen)

        page.click("button[data-view=playground]")
        expect(page.locator("#pg-payload")).to_have_value(re.compile("HighCPU"))
        page.select_option("#pg-route", "paging")
        page.click("#pg-render")
        expect(page.locator("#pg-output .wb-msg")).to_have_count(1)
        check(page, language, data, seen)
        page.locator("#pg-template-box").evaluate("(d) => { d.open = true; }")
        page.fill("#pg-template-source", TEMPLATE_ERROR)
        page.click("#pg-render")
        expect(page.locator("#pg-error")).to_be_visible()
        check(page, language, data, seen)
        page.fill("#pg-template-source", "")
        page.click("#pg-send")
        expect(page.locator("#pg-confirm")).to_be_visible()
        check(page, language, data, seen)
        page.click("#pg-confirm-cancel")

        page.click("button[data-view=config]")
        expect(page.locator("#cf-text")).not_to_be_empty()
        check(page, language, data, seen)
    finally:
        context.close()
    counts["console"] = len(seen) - start

    # -- the emulator's page ------------------------------------------------------------------
    group = key_fingerprint(key)
    emu.client.post(f"/cgi-bin/webhook/send?key={key}", json={"msgtype": "nonesuch"})
    entries = emu.client.get(f"/page/groups/{group}/entries", params={"limit": 200}).json()
    data |= data_values(emu.client.get("/api/groups").json(), entries)
    context = _context(browser, language)
    page = context.new_page()
    page.set_default_timeout(10_000)
    start = len(seen)
    try:
        page.goto(f"{emu.url}/#{group}")
        expect(page.locator("#ep-chat .ep-entry--rejected")).to_have_count(2)
        page.locator("#ep-chat .ep-raw-toggle").first.click()
        check(page, language, data, seen)
        page.click("#ep-clear")  # armed: asks for a second click
        expect(page.locator("#ep-clear")).to_have_class(re.compile("ep-clear--armed"))
        check(page, language, data, seen)
        if zh:  # a fresh emulator with one group of fixed messages: the same picture each run
            with running(EmulatorSettings(rate=None)) as quiet:
                keep_screenshot(DOCS / "emulator-page-zh-CN.png", _emulator_picture(page, quiet))
            check(page, language, data | _EXAMPLE_DATA, seen)
    finally:
        context.close()
    counts["emulator"] = len(seen) - start
    print(f"{language}: texts checked {counts}")  # noqa: T201
    assert all(n > 20 for n in counts.values()), counts
