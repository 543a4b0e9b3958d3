"""The playground in a real headless Chromium: a template's error shows right under the editor,
in view at 1280x800, in plain words with its line (and column when known), and the editor
marks that line; and the screenshot in docs/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.emulator.conftest import Emu
from tests.gateway.harness import Running, running_gateway
from tests.images import same_picture

from .support import PASSWORD, USER, canary_key, console_config

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "console-template-error.png"
WIDTH, HEIGHT = 1280, 800
LINE_PX = 18  # the editor's line height (console.css)
# Exception classes, module paths and the renderer's own classes: never shown to the author.
CLASS_NAME = re.compile(r"[A-Z]\w*(?:Error|Exception|NotFound)\b|\w+\.\w+\.|\w*View\b|Untrusted")

LOOP = "## {{ title }}\n{% for a in alerts %}\n- **{{ a.name }}** on {{ a.labels.instance }}\n"
SYNTAX = LOOP + "{% if %}\n{% endfor %}"
RUNTIME = "## {{ title }}\n\n{{ alerts[0].nope.more }}"
FIXED = LOOP + "{% endfor %}"
WATCH_CSP = """
window.__csp = 0;
document.addEventListener("securitypolicyviolation", () => { window.__csp += 1; });
"""




@pytest.fixture
def served(emu: Emu) -> Iterator[Running]:
    config = console_config(
        emu.url, canary_key(), "memory://", templates={"risky": "ok\n{{ alerts[0].nope.more }}"}
    )
    with running_gateway(config) as gw:
        yield gw


@pytest.fixture
def page(browser: Browser, served: Running) -> Iterator[Page]:
    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": WIDTH, "height": HEIGHT},
        device_scale_factor=1,
    )
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(served.url + "/ui#playground")
    expect(page.locator("#pg-payload")).to_have_value(re.compile("HighCPU"))
    yield page
    context.close()


def render_with(page: Page, template: str) -> None:
    if not page.locator("#view-playground details").evaluate("n => n.open"):
        page.click("#view-playground details summary")
    page.fill("#pg-template-source", template)
    page.click("#pg-render")


def in_view_unscrolled(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    scrolled = page.evaluate("() => document.scrollingElement.scrollTop")
    return (
        box is not None and scrolled == 0 and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT
    )


def marked_line(page: Page) -> Any:
    """The line numbers the gutter marks, and where the band over the text sits."""
    return page.evaluate(
        """() => ({
            numbers: [...document.querySelectorAll('#pg-gutter .gc-gutter-line--error')]
                .map(n => n.textContent),
            band: document.getElementById('pg-mark').hidden
                ? null : document.getElementById('pg-mark').getBoundingClientRect().top,
            text: document.getElementById('pg-template-source').getBoundingClientRect().top,
            caret: document.getElementById('pg-template-source').selectionStart,
        })"""
    )


def test_a_syntax_error_shows_under_the_editor_with_line_and_column(page: Page) -> None:
    render_with(page, SYNTAX)
    error = page.locator("#pg-error")
    expect(error).to_be_visible()
    assert in_view_unscrolled(page, "#pg-error")
    shown = error.inner_text()
    assert "line 4, column 7" in shown
    assert "Expected an expression, got 'end of statement block'" in shown
    assert CLASS_NAME.search(shown) is None
    # Right under the editor, above the Render button.
    editor = page.locator("#pg-template-source").bounding_box()
    box = error.bounding_box()
    button = page.locator("#pg-render").bounding_box()
    assert editor and box and button
    assert 0 <= box["y"] - (editor["y"] + editor["height"]) <= 24 and box["y"] < button["y"]
    # The editor marks line 4 and puts the caret at column 7.
    mark = marked_line(page)
    assert mark["numbers"] == ["4"]
    assert mark["band"] == pytest.approx(mark["text"] + 6 + 3 * LINE_PX, abs=1)
    assert mark["caret"] == SYNTAX.index("{% if %}") + 6
    # No blank preview left unexplained.
    assert page.locator("#pg-output > *").count() == 0
    expect(page.locator("#pg-summary")).to_contain_text("Nothing to preview")
    assert page.locator("#pg-result").inner_text() == ""

    shot = page.screenshot()
    if not SCREENSHOT.exists() or not same_picture(SCREENSHOT.read_bytes(), shot):
        SCREENSHOT.write_bytes(shot)
    assert same_picture(SCREENSHOT.read_bytes(), shot)
    assert page.evaluate("window.__csp") == 0


def test_a_render_error_names_its_line_only_and_a_fix_clears_it(page: Page) -> None:
    render_with(page, RUNTIME)
    error = page.locator("#pg-error")
    expect(error).to_contain_text("unknown variable 'alert.nope'")
    assert in_view_unscrolled(page, "#pg-error")
    shown = error.inner_text()
    assert "line 3" in shown and "column" not in shown
    assert CLASS_NAME.search(shown) is None
    assert marked_line(page)["numbers"] == ["3"]
    # Typing moves lines about: the mark goes, the error stays until the next render.
    page.locator("#pg-template-source").press("End")
    page.locator("#pg-template-source").type(" ")
    assert marked_line(page)["numbers"] == [] and marked_line(page)["band"] is None
    expect(error).to_be_visible()

    render_with(page, FIXED)
    expect(page.locator("#pg-output .wb-msg--markdown")).to_contain_text("HighCPU")
    expect(error).to_be_hidden()
    assert marked_line(page)["numbers"] == []
    assert page.evaluate("window.__csp") == 0


def test_an_error_in_a_configured_template_names_it_and_marks_nothing(page: Page) -> None:
    render_with(page, "")
    page.select_option("#pg-template", "risky")
    page.click("#pg-render")
    error = page.locator("#pg-error")
    expect(error).to_be_visible()
    assert in_view_unscrolled(page, "#pg-error")
    assert error.locator("#pg-error-where").inner_text() == "Error in template 'risky' · line 2"
    assert error.locator("#pg-error-what").inner_text() == "unknown variable 'alert.nope'"
    assert marked_line(page)["numbers"] == []
