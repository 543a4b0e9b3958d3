"""The steady clock on fake wall and monotonic clocks: steps are absorbed, never followed."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.emulator.conftest import new_key, running
from tests.test_dispatcher import accepted, make_dispatcher, max_in_window
from wecom_bot.clock import SteadyClock
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.store import MemoryOutbox, NewMessage

START = 1_700_000_000.0


class Clocks:
    """A wall clock and a monotonic clock the test moves; ``step`` moves the wall clock only."""

    def __init__(self) -> None:
        self.wall_now = START
        self.mono_now = 500.0

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.wall_now += seconds
        self.mono_now += seconds

    def step(self, seconds: float) -> None:
        self.wall_now += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def test_without_steps_it_is_the_wall_clock(clocks: Clocks) -> None:
    steady = SteadyClock(wall=clocks.wall, monotonic=clocks.mono)
    for _ in range(100):
        clocks.advance(0.37)
        clocks.step(0.002)  # NTP's small corrections are followed at once
        assert steady() == pytest.approx(clocks.wall_now, abs=1e-6)
    assert steady.steps == 0


def test_a_step_back_is_not_followed_and_time_never_goes_back(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    steady = SteadyClock(wall=clocks.wall, monotonic=clocks.mono, slew=0.1)
    clocks.advance(10)
    before = steady()
    clocks.step(-3600)
    with caplog.at_level(logging.WARNING, logger="wecom_bot.clock"):
        readings = []
        for _ in range(200):
            clocks.advance(1)
            readings.append(steady())
    assert readings == sorted(readings) and readings[0] > before
    # Each real second counts at least 0.9 s: a retry due in 30 s is due within 34 s.
    assert readings[-1] - before >= 0.9 * 200
    assert readings[-1] > clocks.wall_now + 3000  # the gap closes gradually
    assert steady.steps == 1
    assert [r.getMessage() for r in caplog.records] == [
        "the wall clock stepped back by 3600.0 s; this process keeps counting time without "
        "the step (queued messages, retries, leases and timers keep their delays) and catches "
        "up with the wall clock over 36000 s"
    ]


def test_a_step_forward_is_caught_up_at_the_slew_rate(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    steady = SteadyClock(wall=clocks.wall, monotonic=clocks.mono, slew=0.1)
    before = steady()
    clocks.step(3600)
    clocks.advance(60)
    # A minute later the clock moved 66 s at most: timers due in the hour come due gradually.
    assert 60 <= steady() - before <= 66 + 1e-6
    with caplog.at_level(logging.INFO, logger="wecom_bot.clock"):
        for _ in range(400):
            clocks.advance(100)
            steady()
    assert steady() == pytest.approx(clocks.wall_now, abs=1e-6)
    assert "caught up" in caplog.records[-1].getMessage()
    assert steady.steps == 1


def test_the_slew_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="slew"):
        SteadyClock(slew=1.0)


async def test_a_dispatcher_on_the_steady_clock_delivers_through_a_step_back() -> None:
    """The clock seam in process: the wall clock steps back an hour with 60 messages queued;
    they are all delivered, once, at the rate."""
    offset = [0.0]
    steady = SteadyClock(wall=lambda: time.time() + offset[0])
    store = MemoryOutbox(clock=steady)
    key = new_key()
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emu:
        await store.enqueue([
            NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": f"m{i:02d}"}},
                       coalescible=False)
            for i in range(60)
        ])  # fmt: skip
        dispatcher = make_dispatcher(store, emu, {"ops": (key,)}, coalesce_after=3600.0)
        dispatcher.clock = steady
        await dispatcher.start()
        try:
            for _ in range(300):
                if len(accepted(emu, key)) >= 20:
                    break
                await asyncio.sleep(0.02)
            offset[0] = -3600.0
            for _ in range(600):  # bounded: 40 more messages take about 2 windows
                if await store.pending_count() == 0:
                    break
                await asyncio.sleep(0.02)
        finally:
            await dispatcher.stop()
        got = accepted(emu, key)
    assert sorted(e["payload"]["text"]["content"] for e in got) == [f"m{i:02d}" for i in range(60)]
    assert max_in_window([e["received_at"] for e in got], 1.0) <= 20
    assert steady.steps == 1
