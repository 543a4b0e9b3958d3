"""The sliding-window limiter and the key pool, on a fake clock."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.errors import RateLimitWaitExceeded
from wecom_bot.ratelimit import KeyPool, Rate, SlidingWindowLimiter, parse_rate

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
OTHER = "0d0f6ac2-1111-2222-3333-444455556666"


class FakeClock:
    """A clock that only moves when told to; its sleeps advance it and are recorded."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make(
    rate: Rate | str = "20/60s", clock: FakeClock | None = None
) -> tuple[SlidingWindowLimiter, FakeClock]:
    clock = clock or FakeClock()
    limiter = SlidingWindowLimiter(
        rate, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep
    )
    return limiter, clock


# -- parse_rate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [
        ("20/60s", 20, 60.0),
        ("20/1s", 20, 1.0),
        ("5/500ms", 5, 0.5),
        ("20/1m", 20, 60.0),
        ("20/min", 20, 60.0),
        (" 100 / 2h ", 100, 7200.0),
        ("3/0.25s", 3, 0.25),
        ("20/S", 20, 1.0),
    ],
)
def test_parse_rate_accepts_common_forms(text: str, limit: int, window: float) -> None:
    assert parse_rate(text) == Rate(limit, window)


@pytest.mark.parametrize(
    "text", ["", "20", "20/60", "twenty/60s", "20/60x", "0/60s", "20/0s", "-1/60s", "20/60s/1"]
)
def test_parse_rate_rejects_bad_text_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_rate_defaults_to_wecom_limit_and_validates() -> None:
    assert Rate() == Rate(20, 60.0)
    assert str(Rate(5, 0.5)) == "5/0.5s"
    with pytest.raises(ValueError):
        Rate(0, 60.0)
    with pytest.raises(ValueError):
        Rate(20, 0.0)


def test_limiter_accepts_rate_text() -> None:
    limiter, _ = make("5/500ms")
    assert limiter.rate == Rate(5, 0.5)
    assert SlidingWindowLimiter().rate == Rate(20, 60.0)


# -- the window ---------------------------------------------------------------------------


def test_burst_of_twenty_then_the_twenty_first_waits_for_the_window() -> None:
    limiter, clock = make()
    for i in range(20):
        assert limiter.try_acquire(KEY) == 0.0, i
        clock.advance(0.5)
    assert limiter.used(KEY) == 20
    # The first send was at t0; we are at t0 + 10 s: its slot frees 50 s from now.
    assert limiter.try_acquire(KEY) == pytest.approx(50.0)
    assert limiter.wait_time(KEY) == pytest.approx(50.0)
    assert limiter.used(KEY) == 20  # a refused try takes nothing


def test_exact_window_boundary() -> None:
    limiter, clock = make("2/10s", FakeClock(0.0))
    assert limiter.try_acquire(KEY) == 0.0
    clock.now = 1.0
    assert limiter.try_acquire(KEY) == 0.0
    clock.now = 9.999
    assert limiter.try_acquire(KEY) == pytest.approx(0.001)
    clock.now = 10.0  # the first send's slot was [0, 10): free exactly now
    assert limiter.try_acquire(KEY) == 0.0
    assert limiter.try_acquire(KEY) == pytest.approx(1.0)  # the second one's frees at 11
    assert limiter.used(KEY) == 2


def test_window_slides_rather_than_resetting() -> None:
    # A fixed window would allow 4 sends around the boundary at t=10; a sliding one never does.
    limiter, clock = make("2/10s", FakeClock(0.0))
    clock.now = 8.0
    assert limiter.try_acquire(KEY) == 0.0
    clock.now = 9.0
    assert limiter.try_acquire(KEY) == 0.0
    clock.now = 10.5
    assert limiter.try_acquire(KEY) == pytest.approx(7.5)
    clock.now = 18.0
    assert limiter.try_acquire(KEY) == 0.0
    assert limiter.try_acquire(KEY) == pytest.approx(1.0)


def test_keys_have_independent_windows() -> None:
    limiter, _ = make("1/60s")
    assert limiter.try_acquire(KEY) == 0.0
    assert limiter.try_acquire(OTHER) == 0.0
    assert limiter.try_acquire(KEY) > 0
    assert limiter.used(OTHER) == 1
    assert limiter.used("never-used") == 0


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=4.0), min_size=1, max_size=80),
    limit=st.integers(min_value=1, max_value=6),
)
def test_never_more_than_limit_in_any_window(gaps: list[float], limit: int) -> None:
    window = 10.0
    limiter, clock = make(Rate(limit, window), FakeClock(0.0))
    sent: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        asked = clock.now
        limiter.acquire(KEY)
        sent.append(clock.now)
        # Exact: it waited until the send `limit` places back left the window, not longer.
        earliest = sent[-limit - 1] + window if len(sent) > limit else asked
        assert clock.now == pytest.approx(max(asked, earliest))
    # Any window [t, t + W) holding the most sends starts at a send.
    for t in sent:
        assert sum(1 for s in sent if t <= s < t + window) <= limit


# -- acquire ------------------------------------------------------------------------------


def test_acquire_sleeps_until_the_slot_frees_and_reports_the_wait() -> None:
    limiter, clock = make("3/10s", FakeClock(0.0))
    for _ in range(3):
        assert limiter.acquire(KEY) == 0.0
    clock.now = 4.0
    waited = limiter.acquire(KEY)
    assert waited == pytest.approx(6.0)
    assert clock.sleeps == [pytest.approx(6.0)]
    assert clock.now == pytest.approx(10.0)
    assert limiter.used(KEY) == 1  # the three sends of t=0 have left the window


def test_acquire_max_wait_raises_before_sleeping_with_retry_after() -> None:
    limiter, clock = make("1/60s", FakeClock(0.0))
    limiter.acquire(KEY)
    clock.now = 15.0
    with pytest.raises(RateLimitWaitExceeded) as info:
        limiter.acquire(KEY, max_wait=30.0)
    assert info.value.retry_after == pytest.approx(45.0)
    assert clock.sleeps == []  # no time wasted on a wait that could not succeed
    assert KEY not in str(info.value)
    assert "1/60s" in str(info.value)
    # A wait within max_wait goes ahead.
    assert limiter.acquire(KEY, max_wait=45.0) == pytest.approx(45.0)


async def test_acquire_async_waits_with_the_async_sleep() -> None:
    limiter, clock = make("2/1s", FakeClock(0.0))
    assert await limiter.acquire_async(KEY) == 0.0
    assert await limiter.acquire_async(KEY) == 0.0
    clock.now = 0.25
    assert await limiter.acquire_async(KEY) == pytest.approx(0.75)
    assert clock.sleeps == [pytest.approx(0.75)]
    assert await limiter.acquire_async(KEY) == 0.0  # both sends of t=0 left at t=1
    with pytest.raises(RateLimitWaitExceeded) as info:
        await limiter.acquire_async(KEY, max_wait=0.1)
    assert info.value.retry_after == pytest.approx(1.0)


async def test_acquire_async_with_real_sleep_on_a_scaled_window() -> None:
    limiter = SlidingWindowLimiter("3/100ms")
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(6):
        await limiter.acquire_async(KEY)
    assert loop.time() - start >= 0.1 - 0.005


# -- server rejections (45009) ------------------------------------------------------------


def test_record_rejection_blocks_the_key_for_a_window() -> None:
    limiter, clock = make("20/60s", FakeClock(0.0))
    limiter.acquire(KEY)  # we sent once; another process filled the server's window
    clock.now = 5.0
    assert limiter.record_rejection(KEY) == pytest.approx(60.0)
    assert limiter.try_acquire(KEY) == pytest.approx(60.0)
    assert limiter.try_acquire(OTHER) == 0.0  # other keys are not affected
    clock.now = 64.999
    assert limiter.wait_time(KEY) == pytest.approx(0.001)
    clock.now = 65.0
    assert limiter.try_acquire(KEY) == 0.0


def test_penalize_until_never_shortens_a_block() -> None:
    limiter, clock = make("20/60s", FakeClock(100.0))
    limiter.penalize(KEY, 130.0)
    limiter.penalize(KEY, 110.0)
    assert limiter.wait_time(KEY) == pytest.approx(30.0)
    assert limiter.acquire(KEY) == pytest.approx(30.0)
    assert clock.now == pytest.approx(130.0)


def test_penalty_and_full_window_combine_to_the_later_one() -> None:
    limiter, clock = make("1/10s", FakeClock(0.0))
    limiter.acquire(KEY)
    limiter.penalize(KEY, 4.0)
    assert limiter.wait_time(KEY) == pytest.approx(10.0)
    limiter.penalize(KEY, 12.0)
    assert limiter.wait_time(KEY) == pytest.approx(12.0)


def test_eta_schedules_a_backlog_exactly() -> None:
    limiter, clock = make("2/10s", FakeClock(0.0))
    assert limiter.eta(KEY, 0) == 0.0
    assert limiter.eta(KEY, 2) == 0.0  # two fit now
    assert limiter.eta(KEY, 3) == pytest.approx(10.0)
    assert limiter.eta(KEY, 5) == pytest.approx(20.0)
    limiter.acquire(KEY)
    clock.now = 3.0
    # Used: one at t=0. Next sends: 3.0, then 10.0 (after t=0), 13.0 (after 3.0).
    assert limiter.eta(KEY, 3) == pytest.approx(10.0)
    limiter.penalize(KEY, 50.0)
    assert limiter.eta(KEY, 1) == pytest.approx(47.0)
    assert limiter.used(KEY) == 1  # eta takes nothing


def test_sync_path_is_thread_safe() -> None:
    limiter, _ = make("50/60s")
    taken: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        taken.append(sum(1 for _ in range(100) if limiter.try_acquire(KEY) == 0.0))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(taken) == 50
    assert limiter.used(KEY) == 50


# -- key pool -----------------------------------------------------------------------------


def test_pool_is_round_robin_while_keys_have_capacity() -> None:
    limiter, _ = make("20/60s")
    pool = KeyPool(["a", "b", "c"], limiter)
    assert [pool.acquire() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert [limiter.used(k) for k in "abc"] == [3, 2, 2]


def test_pool_skips_full_keys() -> None:
    limiter, _ = make("2/60s")
    limiter.acquire("b")
    limiter.acquire("b")  # "b" is full, e.g. used by someone else through the same limiter
    pool = KeyPool(["a", "b", "c"], limiter)
    assert [pool.acquire() for _ in range(4)] == ["a", "c", "a", "c"]
    key, wait = pool.try_acquire()
    assert key is None and wait == pytest.approx(60.0)


def test_pool_multiplies_throughput_and_then_waits_for_the_earliest_slot() -> None:
    limiter, clock = make("20/60s", FakeClock(0.0))
    pool = KeyPool(["k1", "k2", "k3"], limiter)
    for _ in range(60):
        pool.acquire()
        clock.advance(0.1)
    assert clock.sleeps == []  # 3 x 20 sends in the first 6 s, no wait
    assert pool.wait_time() == pytest.approx(54.0)
    key = pool.acquire()
    assert clock.sleeps == [pytest.approx(54.0)]
    assert key == "k1"  # k1 sent first, so its slot frees first
    assert sum(limiter.used(k) for k in pool.keys) == 60


def test_pool_throughput_over_a_long_run_is_pool_size_times_limit() -> None:
    limiter, clock = make("5/10s", FakeClock(0.0))
    pool = KeyPool(["k1", "k2", "k3", "k4"], limiter)
    for _ in range(200):
        pool.acquire()
    # 200 sends at 4 x 5 per 10 s: the last one goes out at the start of the 10th window.
    assert clock.now == pytest.approx(90.0)


def test_pool_max_wait_and_async() -> None:
    limiter, clock = make("1/10s", FakeClock(0.0))
    pool = KeyPool(["k1", "k2"], limiter)
    pool.acquire()
    pool.acquire()
    with pytest.raises(RateLimitWaitExceeded) as info:
        pool.acquire(max_wait=5.0)
    assert info.value.retry_after == pytest.approx(10.0)
    assert "k1" not in str(info.value) and "k2" not in str(info.value)

    async def run() -> str:
        return await pool.acquire_async()

    assert asyncio.run(run()) == "k1"
    assert clock.now == pytest.approx(10.0)


def test_pool_rejects_empty_and_duplicate_keys_without_showing_them() -> None:
    with pytest.raises(ValueError):
        KeyPool([])
    with pytest.raises(ValueError) as info:
        KeyPool([KEY, KEY])
    assert KEY not in str(info.value)
    pool = KeyPool([KEY, OTHER])
    assert len(pool) == 2
    assert pool.keys == (KEY, OTHER)
    assert pool.limiter.rate == Rate(20, 60.0)


# -- seed -----------------------------------------------------------------------------------


def test_seeded_sends_fill_the_window_until_they_age_out() -> None:
    limiter, clock = make("3/60s")
    limiter.seed(KEY, [50.0, 10.0, 59.0])
    assert limiter.used(KEY) == 3
    assert limiter.try_acquire(KEY) == pytest.approx(1.0)  # the oldest (59 s ago) frees first
    clock.advance(1.0)
    assert limiter.try_acquire(KEY) == 0.0
    assert limiter.try_acquire(KEY) == pytest.approx(9.0)  # next: the one sent 51 s ago


def test_seeded_sends_a_window_old_or_older_are_ignored() -> None:
    limiter, _ = make("2/60s")
    limiter.seed(KEY, [60.0, 61.0, 1000.0])
    assert limiter.used(KEY) == 0
    assert limiter.try_acquire(KEY) == 0.0


def test_seeding_adds_to_sends_already_counted_in_time_order() -> None:
    limiter, clock = make("3/60s")
    assert limiter.try_acquire(KEY) == 0.0
    clock.advance(30.0)
    limiter.seed(KEY, [45.0, -5.0])  # 15 s before the own send; a future time counts as now
    assert limiter.used(KEY) == 3
    assert limiter.wait_time(KEY) == pytest.approx(15.0)
    assert limiter.used(OTHER) == 0


def test_seed_blocked_for_blocks_the_key() -> None:
    limiter, clock = make("20/60s")
    limiter.seed(KEY, [], blocked_for=12.5)
    assert limiter.try_acquire(KEY) == pytest.approx(12.5)
    clock.advance(12.5)
    assert limiter.try_acquire(KEY) == 0.0
