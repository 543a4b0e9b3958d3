"""Console tests: one emulator per module (rate limit off); tests keep apart by key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator.conftest import Emu, running
from wecom_bot.emulator import EmulatorSettings


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator
