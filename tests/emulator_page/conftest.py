"""Fixtures for the emulator's web page: emulators and a picture server on 127.0.0.1 port 0,
PNGs drawn in code, and one headless Chromium per test module."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Frame,
    Page,
    sync_playwright,
)
from playwright.sync_api import Request as PlaywrightRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serve
from wecom_bot.emulator import EmulatorSettings, create_app
from wecom_bot.masking import key_fingerprint

# Where WECOM_TEST_CHROMIUM points, else chromium on PATH (scripts/provision says so).
CHROMIUM = os.environ.get("WECOM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

Colour = tuple[int, int, int]


def png(width: int, height: int, pixel: Callable[[int, int], Colour]) -> bytes:
    """A PNG whose pixel (x, y) is ``pixel(x, y) -> (r, g, b)``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
            chunk(b"IDAT", zlib.compress(bytes(rows), 6)),
            chunk(b"IEND", b""),
        )
    )


def gradient_png(width: int, height: int, top: Colour, bottom: Colour) -> bytes:
    """A vertical gradient from ``top`` to ``bottom``."""

    def pixel(x: int, y: int) -> Colour:
        t = y / max(height - 1, 1)
        return (
            round(top[0] + (bottom[0] - top[0]) * t),
            round(top[1] + (bottom[1] - top[1]) * t),
            round(top[2] + (bottom[2] - top[2]) * t),
        )

    return png(width, height, pixel)


def chart_png(width: int = 240, height: int = 150) -> bytes:
    """A small bar chart: what an alert image often is."""
    bars = (0.35, 0.55, 0.42, 0.78, 0.95, 0.6)
    slot = width // len(bars)

    def pixel(x: int, y: int) -> Colour:
        index = min(x // slot, len(bars) - 1)
        inside = slot * 0.2 <= x % slot <= slot * 0.8
        level = height - 12 - (height - 24) * bars[index]
        if inside and level <= y <= height - 12:
            return (245, 96, 44) if bars[index] > 0.9 else (31, 111, 229)
        if y == height - 12:
            return (200, 204, 210)
        return (255, 255, 255)

    return png(width, height, pixel)


_PICTURES: dict[str, Callable[[], bytes]] = {
    "cover.png": lambda: gradient_png(534, 228, (72, 133, 237), (20, 48, 110)),
    "thumb-green.png": lambda: gradient_png(96, 96, (54, 200, 120), (10, 120, 70)),
    "thumb-orange.png": lambda: gradient_png(96, 96, (255, 170, 80), (220, 90, 30)),
    "icon.png": lambda: gradient_png(32, 32, (245, 96, 44), (200, 40, 30)),
}


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    """A server of the pictures messages link to (news covers, card images), so the page
    shows real images without any network; yields its base URL."""
    drawn = {name: draw() for name, draw in _PICTURES.items()}

    async def picture(request: Request) -> Response:
        data = drawn.get(request.path_params["name"])
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="image/png")

    app = Starlette(routes=[Route("/{name}", picture)])
    with serve(app) as url:
        yield url


@dataclass
class Emu:
    """A running emulator: its base URL, an HTTP client and the app (for its state)."""

    url: str
    client: httpx.Client
    app: Any
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, key: str, payload: Any) -> dict[str, Any]:
        """Post a message; returns the WeCom answer body."""
        answer = self.client.post("/cgi-bin/webhook/send", params={"key": key}, json=payload)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def send_ok(self, key: str, payload: Any) -> None:
        """Post a message that must be accepted."""
        body = self.send(key, payload)
        assert body["errcode"] == 0, body

    def send_raw(self, key: str, content: bytes) -> dict[str, Any]:
        """Post a body as is (for bodies that are not JSON)."""
        answer = self.client.post(
            "/cgi-bin/webhook/send",
            params={"key": key},
            content=content,
            headers={"Content-Type": "application/json"},
        )
        body: dict[str, Any] = answer.json()
        return body

    def upload(self, key: str, data: bytes, kind: str, filename: str) -> str:
        """Upload a file or voice; returns its media_id."""
        answer = self.client.post(
            "/cgi-bin/webhook/upload_media",
            params={"key": key, "type": kind},
            files={"media": (filename, data, "application/octet-stream")},
        )
        body = answer.json()
        assert body["errcode"] == 0, body
        media_id: str = body["media_id"]
        return media_id

    def entries(self, key: str) -> list[dict[str, Any]]:
        """The page's view of a group's entries (with the drawn ``html``)."""
        answer = self.client.get(f"/page/groups/{key_fingerprint(key)}/entries")
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["entries"]
        return entries


@contextmanager
def running(settings: EmulatorSettings) -> Iterator[Emu]:
    """Serve an emulator for the block, ending its event streams before the server stops."""
    app = create_app(settings)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        try:
            yield Emu(url, client, app)
        finally:
            # Open EventSource streams would otherwise hold the server's shutdown.
            app.state.emulator.close_streams()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    """One emulator per module (no rate limit); tests keep apart by using fresh keys."""
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


class FakeClock:
    """Wall-clock seconds the test sets, so receive times (and the screenshot) are fixed."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_WATCH_SCRIPT = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass
class Watched:
    """A page with what it did recorded: dialogs opened, script errors, console errors,
    navigations of the main frame and requests for the event stream."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    event_requests: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        """Content-Security-Policy violations reported in the page."""
        found: list[str] = self.page.evaluate("window.__violations")
        return found

    def entries(self, count: int, timeout: float = 10_000) -> None:
        """Wait until the chat view shows at least ``count`` entries."""
        self.page.wait_for_function(
            "n => document.querySelectorAll('#ep-chat .ep-entry').length >= n",
            arg=count,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (the system one) for the whole test module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def open_page(
    browser: Browser, url: str, *, width: int = 1280, height: int = 860
) -> Iterator[Watched]:
    """Open ``url`` in a fresh browser context (Shanghai time, like the users) and watch it."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        timezone_id="Asia/Shanghai",
        locale="en-US",
        device_scale_factor=1,
    )
    context.add_init_script(_WATCH_SCRIPT)
    page = context.new_page()
    watched = Watched(page)

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    def on_navigation(frame: Frame) -> None:
        if frame == page.main_frame:
            watched.navigations.append(frame.url)

    def on_request(request: PlaywrightRequest) -> None:
        if "/api/events" in request.url:
            watched.event_requests.append(request.url)

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("console", on_console)
    page.on("framenavigated", on_navigation)
    page.on("request", on_request)
    try:
        page.goto(url)
        page.wait_for_selector("#ep-conn[data-state=live]", timeout=10_000)
        yield watched
    finally:
        context.close()


def fit_viewport(watched: Watched) -> None:
    """Make the viewport as tall as the chat, so every picture loads and all of it shows."""
    page = watched.page
    height = page.evaluate(
        "document.getElementById('ep-head').offsetHeight"
        " + document.getElementById('ep-chat').scrollHeight"
    )
    page.set_viewport_size({"width": 1280, "height": int(height) + 2})
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=10_000
    )
    page.evaluate("() => Promise.all([...document.images].map(i => i.decode()))")
