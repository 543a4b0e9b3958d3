"""markdown_v2 tables on the page, in a real headless Chromium: cells wrap between words (never
inside one), a table wider than the bubble scrolls inside the bubble, the page itself never
scrolls sideways; and the screenshot in docs/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from tests.images import same_picture
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.masking import key_fingerprint

from .conftest import CHROMIUM, CHROMIUM_ARGS, FakeClock, open_page, running

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "emulator-table.png"
KEY = "9d2b6e41-7c3a-4f58-b1e0-5a8c2f7d4e93"
SENT_AT = 1750210320.0  # 2025-06-18 09:32:00 in Shanghai

# Short words in columns squeezed by a long summary, a CJK cell, then a table of many columns
# that cannot fit a bubble however its cells wrap.
DIGEST = "\n".join(
    [
        "**3 alerts firing** · prod-sh-01",
        "",
        "| Alert | Severity | Summary |",
        "| --- | :---: | --- |",
        "| HighLatency | critical | checkout p99 latency above one second for five minutes,"
        " most of it in the payment callback |",
        "| DiskPressure | warning | 磁盘使用率超过百分之九十，预计三天后写满，请尽快清理或扩容 |",
        "| Heartbeat | info | scheduler alive |",
        "",
        "| Alert | Severity | Namespace | Deployment | Instance | Value | Threshold | Runbook |",
        "| --- | :---: | --- | --- | --- | ---: | ---: | --- |",
        "| HighLatency | critical | payments | checkout | checkout-6d9f8b7c5-x2k9p | 2310ms"
        " | 1000ms | runbooks.example.com/HighLatency |",
        "| KubePodCrashLooping | warning | observability | alertmanager | alertmanager-main-0"
        " | 14 | 3 | runbooks.example.com/KubePodCrashLooping |",
    ]
)

# For every run of ASCII letters and digits under ``root``: the distinct line tops its glyphs
# sit on. A word drawn on two lines has two. CJK runs are left out: they may break anywhere.
_WORD_LINES = """root => {
  const words = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(/[A-Za-z0-9]+/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      words.push([match[0], tops.size]);
    }
  }
  return words;
}"""

# How many lines a cell's text takes.
_CELL_LINES = """cell => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""

_SIDEWAYS = """() => {
  const chat = document.getElementById('ep-scroll');
  const root = document.scrollingElement;
  return {
    page: root.scrollWidth - root.clientWidth,
    chat: chat.scrollWidth - chat.clientWidth,
  };
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium as a desktop user has it: with scrollbars (headless hides them by default), so
    the screenshot shows that the wide table scrolls."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, ignore_default_args=["--hide-scrollbars"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """An emulator holding the digest, received at a fixed time."""
    with running(EmulatorSettings(rate=None, clock=FakeClock(SENT_AT))) as emu:
        emu.send_ok(KEY, {"msgtype": "markdown_v2", "markdown_v2": {"content": DIGEST}})
        yield f"{emu.url}/#{key_fingerprint(KEY)}"


def tables(page: Page) -> tuple[Locator, Locator]:
    page.wait_for_selector("#ep-chat .wb-md-table")
    wraps = page.locator("#ep-chat .wb-md-table-wrap")
    assert wraps.count() == 2
    return wraps.nth(0), wraps.nth(1)


@pytest.mark.parametrize("width", [1280, 760])
def test_no_word_is_split_across_lines(browser: Browser, emulator_url: str, width: int) -> None:
    with open_page(browser, emulator_url, width=width, height=800) as watched:
        tables(watched.page)
        words: list[list[Any]] = watched.page.locator("#ep-chat .wb-md").evaluate(_WORD_LINES)
        seen = {word for word, _ in words}
        assert {"critical", "warning", "HighLatency", "KubePodCrashLooping"} <= seen
        assert [word for word, lines in words if lines != 1] == []
        assert watched.errors == []


def test_cells_still_wrap_between_words_and_cjk_characters(
    browser: Browser, emulator_url: str
) -> None:
    with open_page(browser, emulator_url, height=800) as watched:
        narrow, _ = tables(watched.page)
        summaries = narrow.locator("tbody td:nth-child(3)")
        assert summaries.nth(0).evaluate(_CELL_LINES) > 1
        assert summaries.nth(1).evaluate(_CELL_LINES) > 1
        # Wrapping let this table fit the bubble: it does not scroll.
        assert narrow.evaluate("n => n.scrollWidth <= n.clientWidth")


@pytest.mark.parametrize("width", [1280, 760])
def test_a_wide_table_scrolls_inside_the_bubble(
    browser: Browser, emulator_url: str, width: int
) -> None:
    with open_page(browser, emulator_url, width=width, height=800) as watched:
        page = watched.page
        _, wide = tables(page)
        assert wide.evaluate("n => n.scrollWidth > n.clientWidth")
        bubble = page.locator("#ep-chat .wb-bubble").bounding_box()
        box = wide.bounding_box()
        assert bubble is not None and box is not None
        assert box["x"] >= bubble["x"] and box["x"] + box["width"] <= bubble["x"] + bubble["width"]
        assert page.evaluate(_SIDEWAYS) == {"page": 0, "chat": 0}
        # The last column is out of sight until the table is scrolled, then it is inside the box.
        last = wide.locator("th").last
        assert (last.bounding_box() or {"x": 0.0})["x"] > box["x"] + box["width"]
        wide.evaluate("n => { n.scrollLeft = n.scrollWidth; }")
        shown = last.bounding_box()
        assert shown is not None
        assert shown["x"] + shown["width"] <= box["x"] + box["width"] + 1
        assert page.evaluate(_SIDEWAYS) == {"page": 0, "chat": 0}


def test_screenshot(browser: Browser, emulator_url: str) -> None:
    with open_page(browser, emulator_url, height=800) as watched:
        page = watched.page
        tables(page)
        entry = page.locator("#ep-chat .ep-entry").bounding_box()
        bubble = page.locator("#ep-chat .wb-bubble").bounding_box()
        assert entry is not None and bubble is not None
        margin = 16
        shot = page.screenshot(
            clip={
                "x": entry["x"] - margin,
                "y": entry["y"] - margin,
                "width": bubble["x"] + bubble["width"] - entry["x"] + 2 * margin,
                "height": entry["height"] + 2 * margin,
            }
        )
    if not SCREENSHOT.exists() or not same_picture(SCREENSHOT.read_bytes(), shot):
        SCREENSHOT.write_bytes(shot)
    assert same_picture(SCREENSHOT.read_bytes(), shot)
