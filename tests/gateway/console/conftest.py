"""Console tests: one emulator per module (rate limit off); tests keep apart by key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.emulator.conftest import Emu, running
from tests.emulator_page.conftest import CHROMIUM, CHROMIUM_ARGS
from wecom_bot.emulator import EmulatorSettings


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (the system one) for the whole test module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
