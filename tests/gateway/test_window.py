"""The durable rate window, on fake clocks: what one process sent, the next one knows."""

from __future__ import annotations

import logging

import pytest

from wecom_bot.gateway.window import KEEP_WINDOWS, DurableWindow
from wecom_bot.masking import key_fingerprint
from wecom_bot.ratelimit import Rate, SlidingWindowLimiter
from wecom_bot.store import MemoryOutbox, SendMark, StoreUnavailableError

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
RATE = Rate(3, 60.0)


class Clocks:
    """A wall clock (the send log's time) and a monotonic one (the limiter's) that move
    together from different origins, as the real ones do."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.mono = 500.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def window(
    store: MemoryOutbox, clocks: Clocks, rate: Rate = RATE, previous: DurableWindow | None = None
) -> DurableWindow:
    """A window as a (re)started process builds it: a fresh limiter on the monotonic clock."""
    limiter = SlidingWindowLimiter(rate, clock=lambda: clocks.mono)
    return DurableWindow(rate, store, clock=lambda: clocks.wall, previous=previous, limiter=limiter)


async def send(w: DurableWindow, clocks: Clocks, count: int, every: float = 0.0) -> None:
    """Take ``count`` slots, one every ``every`` seconds; each must be free."""
    for _ in range(count):
        assert await w.try_acquire(KEY) == 0.0
        clocks.advance(every)


async def test_a_restarted_process_waits_for_the_sends_of_the_one_before(clocks: Clocks) -> None:
    store = MemoryOutbox()
    before = window(store, clocks)
    await send(before, clocks, 3, every=10.0)
    assert await before.try_acquire(KEY) == pytest.approx(30.0)  # full: nothing logged

    after = window(store, clocks)  # same store, new process
    assert await after.used(KEY) == 3
    assert await after.capacity(KEY, 0.0, cap=10) == 0
    assert await after.try_acquire(KEY) == pytest.approx(30.0)
    assert await after.eta(KEY, 2) == pytest.approx(40.0)
    clocks.advance(30.0)
    assert await after.try_acquire(KEY) == 0.0
    assert len(await store.recent_sends(key_fingerprint(KEY), 0.0)) == 4


async def test_the_send_log_holds_fingerprints_never_keys(clocks: Clocks) -> None:
    store = MemoryOutbox()
    assert await window(store, clocks).try_acquire(KEY) == 0.0
    assert await store.recent_sends(KEY, 0.0) == []
    assert await store.recent_sends(key_fingerprint(KEY), 0.0) == [SendMark(clocks.wall)]


async def test_a_45009_blocks_the_next_process_for_the_rest_of_its_window(
    clocks: Clocks,
) -> None:
    store = MemoryOutbox()
    before = window(store, clocks)
    assert await before.record_rejection(KEY) == pytest.approx(60.0)
    clocks.advance(20.0)

    after = window(store, clocks)
    assert await after.try_acquire(KEY) == pytest.approx(40.0)
    clocks.advance(40.0)
    assert await after.try_acquire(KEY) == 0.0


async def test_sends_older_than_a_window_do_not_hold_a_restart_back(clocks: Clocks) -> None:
    store = MemoryOutbox()
    await send(window(store, clocks), clocks, 3)
    clocks.advance(60.0)
    assert await window(store, clocks).capacity(KEY, 0.0, cap=10) == 3


async def test_the_log_is_pruned_to_a_few_windows(clocks: Clocks) -> None:
    store = MemoryOutbox()
    await send(window(store, clocks), clocks, 10, every=60.0)
    kept = await store.recent_sends(key_fingerprint(KEY), 0.0)
    assert len(kept) == int(KEEP_WINDOWS) + 1


async def test_a_reload_with_the_same_rate_shares_the_live_window(clocks: Clocks) -> None:
    store = MemoryOutbox()
    old = window(store, clocks)
    new = window(store, clocks, previous=old)
    assert await new.capacity(KEY, 0.0, cap=10) == 3  # seeded (nothing sent yet)
    await send(old, clocks, 3)  # the old runtime keeps sending during the swap
    assert await new.try_acquire(KEY) == pytest.approx(60.0)


async def test_a_reload_with_another_rate_seeds_from_the_log(clocks: Clocks) -> None:
    store = MemoryOutbox()
    old = window(store, clocks)
    await send(old, clocks, 3)
    clocks.advance(5.0)
    new = window(store, clocks, rate=Rate(4, 30.0), previous=old)
    assert new.limiter is not old.limiter
    assert await new.capacity(KEY, 0.0, cap=10) == 1
    assert await new.try_acquire(KEY) == 0.0
    assert await new.try_acquire(KEY) == pytest.approx(25.0)


async def test_a_send_goes_ahead_when_the_log_cannot_be_written(
    clocks: Clocks, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryOutbox()
    w = window(store, clocks)
    assert await w.capacity(KEY, 0.0, cap=10) == 3  # seeded while the store answered
    await store.close()
    with caplog.at_level(logging.WARNING, logger="wecom_bot.gateway"):
        assert await w.try_acquire(KEY) == 0.0
    assert "send log" in caplog.text
    assert KEY not in caplog.text
    assert await w.capacity(KEY, 0.0, cap=10) == 2  # still counted in this process


async def test_a_seed_that_cannot_read_the_log_fails_and_is_tried_again(
    clocks: Clocks,
) -> None:
    store = MemoryOutbox()
    await window(store, clocks).try_acquire(KEY)
    closed = MemoryOutbox()
    await closed.close()
    w = window(closed, clocks)
    with pytest.raises(StoreUnavailableError):
        await w.try_acquire(KEY)
    w.store = store  # the store answers again
    assert await w.capacity(KEY, 0.0, cap=10) == 2
