"""Two dispatchers on one real redis-server, against the emulator at a scaled window: a 45009
in the middle of a batch, and instance clocks that disagree by more than a lease, send
nothing twice (issue 26, item 3).

The lease is scaled below the key's block (as 30 s is below WeCom's 60 s block): a record that
waited out the block while leased would reach the other instance.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clockshim import ClockShim
from tests.emulator.conftest import Emu, new_key, running
from tests.redis_server import redis_server
from tests.test_dispatcher import accepted, all_entries, inject, max_in_window
from wecom_bot.dispatcher import BotTarget, Dispatcher, DispatcherSettings
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.runtime import RedisLimiterAdapter
from wecom_bot.retry import RetryPolicy
from wecom_bot.store import NewMessage
from wecom_bot.store.redis import RedisOutbox, RedisWindowLimiter

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WINDOW = 1.0
LEASE = 0.6  # below the block a 45009 puts on the key (one window), above event-loop stalls
MESSAGES = 120
RETRY = RetryPolicy(max_attempts=30, base_delay=0.02, max_delay=0.2, rate_window=WINDOW)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


async def _run(
    emu: Emu,
    redis_url: str,
    clocks: list[Callable[[], float]],
    fault: dict[str, Any] | None = None,
    midway: Callable[[], None] | None = None,
) -> str:
    """Queue ``MESSAGES`` alerts, run one dispatcher per clock until they are all sent, with
    ``fault`` (one 45009 by default) injected once a few have gone, or ``midway`` called then
    instead; returns the key."""
    key = new_key()
    stores = [RedisOutbox.from_url(redis_url, clock=clock) for clock in clocks]
    await stores[0].client.flushdb()
    await stores[0].enqueue(
        [
            NewMessage(
                bot="ops",
                payload={"msgtype": "text", "text": {"content": f"alert {i:03d}"}},
                coalescible=False,
            )
            for i in range(MESSAGES)
        ]
    )
    dispatchers = [
        Dispatcher(
            store,
            {"ops": BotTarget(name="ops", keys=(key,), base_url=emu.url, timeout=2.0)},
            limiter=RedisLimiterAdapter(RedisWindowLimiter(store.client, f"20/{WINDOW * 1.05}s")),
            retry=RETRY,
            settings=DispatcherSettings(lease_seconds=LEASE, batch=20, idle_poll=0.05),
            clock=clock,
        )
        for store, clock in zip(stores, clocks, strict=True)
    ]
    for dispatcher in dispatchers:
        await dispatcher.start()
    try:
        for _ in range(400):  # the 45009 lands in the middle of a window's batch
            if len(accepted(emu, key)) >= 7:
                break
            await asyncio.sleep(0.01)
        if midway is not None:
            midway()
        else:
            inject(emu, key, **(fault or {"kind": "errcode", "errcode": 45009}))
        for _ in range(1200):  # bounded: 120 messages take about 7 windows
            if await stores[0].pending_count() == 0:
                break
            await asyncio.sleep(0.05)
        assert await stores[0].pending_count() == 0, await stores[0].depth_by_bot()
    finally:
        for dispatcher in dispatchers:
            await dispatcher.stop()
        for store in stores:
            await store.close()
    return key


def _check_once(emu: Emu, key: str, rejected_requests: int = 1) -> None:
    entries = all_entries(emu, key)
    texts = Counter(e["payload"]["text"]["content"] for e in entries if e["status"] == "accepted")
    assert sorted(texts) == [f"alert {i:03d}" for i in range(MESSAGES)]  # 0 lost
    assert [t for t, n in texts.items() if n > 1] == []  # 0 duplicated
    rejected = [e for e in entries if e["status"] != "accepted"]
    assert len(rejected) == rejected_requests  # the injected 45009, and no other
    assert max_in_window([e["received_at"] for e in entries], WINDOW) <= 20


@pytest.mark.parametrize("run", [1, 2, 3])
async def test_a_45009_mid_batch_sends_nothing_twice(emu: Emu, redis_url: str, run: int) -> None:
    _check_once(emu, await _run(emu, redis_url, [time.time, time.time]))


@pytest.mark.parametrize("run", [1, 2, 3])
async def test_an_instance_ten_seconds_ahead_sends_nothing_twice(
    emu: Emu, redis_url: str, run: int
) -> None:
    ahead: Callable[[], float] = lambda: time.time() + 10.0  # noqa: E731
    _check_once(emu, await _run(emu, redis_url, [time.time, ahead]))


def test_the_redis_hosts_clock_stepping_back_an_hour_stops_nothing(
    emu: Emu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-server runs under the clock shim: its ``TIME`` (the shared window's and the
    leases' clock) steps back an hour in the middle of the storm."""
    shim = ClockShim(tmp_path)
    for name, value in shim.env().items():
        monkeypatch.setenv(name, value)
    with redis_server(tmp_path) as url:
        monkeypatch.delenv("LD_PRELOAD")  # only the server runs shifted

        async def scenario() -> str:
            return await _run(emu, url, [time.time, time.time], midway=lambda: shim.set(-3600.0))

        key = asyncio.run(scenario())
    _check_once(emu, key, 0)


async def test_a_send_slower_than_the_lease_is_not_sent_twice(emu: Emu, redis_url: str) -> None:
    """The owner renews its leases while it waits for the answer (longer than a lease); the
    window counts the send from its answer, so the slow answer causes no 45009 either."""
    slow = {"kind": "delay", "delay_ms": 900}
    _check_once(emu, await _run(emu, redis_url, [time.time, time.time], slow), 0)
