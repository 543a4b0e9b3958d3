"""Redis-only behaviour: several instances, a killed instance, Redis down, the shared limiter."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from wecom_bot.store import StoreUnavailableError, open_store
from wecom_bot.store.base import LEASE_EXPIRED_ERROR
from wecom_bot.store.redis import RedisOutbox, RedisWindowLimiter

from ._support import START, FakeClock, content, finish, read_line, spawn, text

pytestmark = pytest.mark.redis


@pytest.fixture
async def instances(redis_url: str, clock: FakeClock) -> AsyncIterator[list[RedisOutbox]]:
    """Two outboxes on one Redis with their own connections, like two gateway instances."""
    stores = [
        RedisOutbox.from_url(redis_url, clock=clock, server_leases=False) for _ in range(2)
    ]
    await stores[0].client.flushdb()
    yield stores
    for s in stores:
        await s.close()


async def test_open_store_builds_a_redis_outbox_and_masks_the_password(redis_url: str) -> None:
    store = open_store(redis_url + "?prefix=test-prefix:")
    assert isinstance(store, RedisOutbox) and store.prefix == "test-prefix:"
    await store.ping()
    await store.close()
    secret = open_store("redis://:s3cret-pass@127.0.0.1:1/2")
    assert "s3cret-pass" not in secret.location and "***" in secret.location
    await secret.close()


async def test_redis_down_is_reported_and_nothing_is_accepted() -> None:
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = open_store(f"redis://:hunter2-secret@127.0.0.1:{port}/0")
    try:
        with pytest.raises(StoreUnavailableError) as info:
            await store.ping()
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "hunter2-secret" not in str(info.value)
        with pytest.raises(StoreUnavailableError):
            await store.enqueue([text("lost?")])
    finally:
        await store.close()


async def test_two_instances_share_one_queue(instances: list[RedisOutbox]) -> None:
    first, second = instances
    ids = await first.enqueue([text(str(i)) for i in range(300)])
    assert await second.pending_count() == 300

    async def drain(store: RedisOutbox) -> list[int]:
        seen: list[int] = []
        while batch := await store.claim("ops", limit=4, lease_seconds=60):
            seen += [r.id for r in batch]
            await store.ack([r.id for r in batch])
        return seen

    a, b = await asyncio.gather(drain(first), drain(second))
    assert a and b
    assert not set(a) & set(b)
    assert sorted(a + b) == ids


async def test_idempotency_is_shared_between_instances(instances: list[RedisOutbox]) -> None:
    first, second = instances
    results = await asyncio.gather(
        first.enqueue_once("am:fp-1", 300, [text("a")]),
        second.enqueue_once("am:fp-1", 300, [text("a")]),
    )
    assert sorted(r is None for r in results) == [False, True]
    assert await first.pending_count() == 1


async def test_a_killed_instance_leaves_its_messages_to_the_others(
    redis_url: str, instances: list[RedisOutbox], clock: FakeClock
) -> None:
    survivor = instances[0]
    ids = await survivor.enqueue([text(f"alert {i}") for i in range(5)])
    worker = spawn("hold", redis_url, str(START), "3", "30")
    try:
        held = read_line(worker)
    finally:
        code = finish(worker, kill=True)
    assert held == ids[:3] and code == -signal.SIGKILL
    rest = await survivor.claim("ops", limit=10, lease_seconds=30)
    assert [r.id for r in rest] == ids[3:]
    await survivor.ack([r.id for r in rest])
    clock.advance(30)
    back = await survivor.claim("ops", limit=10, lease_seconds=30)
    assert [r.id for r in back] == ids[:3]
    assert all(r.attempts == 1 and r.last_error == LEASE_EXPIRED_ERROR for r in back)
    assert [content(r.payload) for r in back] == ["alert 0", "alert 1", "alert 2"]


async def test_prefixes_keep_deployments_apart(redis_url: str, clock: FakeClock) -> None:
    a = RedisOutbox.from_url(redis_url + "?prefix=team-a:", clock=clock)
    b = RedisOutbox.from_url(redis_url + "?prefix=team-b:", clock=clock)
    try:
        await a.client.flushdb()
        await a.enqueue([text("only a")])
        assert await a.pending_count() == 1
        assert await b.pending_count() == 0
        assert await b.claim("ops", limit=5, lease_seconds=30) == []
    finally:
        await a.close()
        await b.close()


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Two independent Redis connections, like two processes."""
    pair = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    await pair[0].flushdb()
    yield pair
    for c in pair:
        await c.aclose()


async def test_limiter_is_shared_between_clients(
    clients: list[aioredis.Redis], clock: FakeClock
) -> None:
    one, two = (RedisWindowLimiter(c, "5/10s", clock=clock) for c in clients)
    answers = []
    for i in range(5):  # one send a second, alternating clients
        answers.append(await (one if i % 2 else two).try_acquire("bot-key"))
        clock.advance(1)
    assert answers == [0.0] * 5
    assert await one.used("bot-key") == 5 and await two.used("bot-key") == 5
    clock.advance(-1)  # t = 4: the send at t = 0 frees its slot at t = 10
    assert await one.try_acquire("bot-key") == pytest.approx(6)
    assert await two.wait_time("bot-key") == pytest.approx(6)
    assert await two.try_acquire("other-key") == 0.0  # keys are independent
    clock.advance(6)  # the first send leaves the window: one slot, not more
    assert await two.try_acquire("bot-key") == 0.0
    assert await one.try_acquire("bot-key") == pytest.approx(1)  # next: the send at t = 1


async def test_limiter_never_grants_more_than_the_limit_under_concurrency(
    clients: list[aioredis.Redis], clock: FakeClock
) -> None:
    limiters = [RedisWindowLimiter(c, "20/60s", clock=clock) for c in clients]
    answers = await asyncio.gather(*(limiters[i % 2].try_acquire("k") for i in range(100)))
    assert sum(a == 0.0 for a in answers) == 20
    assert all(a == pytest.approx(60) for a in answers if a)


async def test_limiter_rejection_blocks_every_client(
    clients: list[aioredis.Redis], clock: FakeClock
) -> None:
    one, two = (RedisWindowLimiter(c, "20/60s", clock=clock) for c in clients)
    assert await one.record_rejection("k") == pytest.approx(60)
    assert await two.try_acquire("k") == pytest.approx(60)
    clock.advance(60)
    assert await two.try_acquire("k") == 0.0


async def test_limiter_on_the_redis_clock(clients: list[aioredis.Redis]) -> None:
    secret = "693a91f6-secret-webhook-key-5aaa"  # a key passed by mistake must not leak
    one, two = (RedisWindowLimiter(c, "3/30s") for c in clients)
    granted = [await one.try_acquire(secret), await two.try_acquire(secret)]
    granted.append(await one.try_acquire(secret))
    assert granted == [0.0] * 3
    wait = await two.try_acquire(secret)
    assert 29 < wait <= 30
    keys = await clients[0].keys("*")
    assert keys and not any(secret in key for key in keys)


async def test_leases_run_on_the_redis_clock_whatever_the_instances_clocks(
    redis_url: str,
) -> None:
    """Instance clocks an hour apart (far more than a lease) agree on when a lease ends."""
    behind = RedisOutbox.from_url(redis_url, clock=FakeClock(START))
    ahead = RedisOutbox.from_url(redis_url, clock=FakeClock(START + 3600))
    await behind.client.flushdb()
    try:
        ids = await behind.enqueue([text(f"alert {i}") for i in range(4)])
        held = await behind.claim("ops", limit=2, lease_seconds=30)
        redis_now = await _redis_time(behind.client)
        assert all(r.lease_until is not None for r in held)
        assert all(redis_now < (r.lease_until or 0) <= redis_now + 31 for r in held)
        # The instance an hour ahead does not take records whose owner holds them ...
        assert await ahead.recover_expired_leases() == 0
        rest = await ahead.claim("ops", limit=10, lease_seconds=30)
        assert [r.id for r in rest] == ids[2:]
        # ... and a renewal moves the lease on by the Redis clock too.
        assert await behind.renew([r.id for r in held], lease_seconds=90) == 2
        renewed = await ahead.get(ids[0])
        assert renewed is not None and (renewed.lease_until or 0) > redis_now + 60
    finally:
        await behind.close()
        await ahead.close()


async def test_a_lease_beyond_one_lease_from_now_is_cut_back(redis_url: str) -> None:
    """The Redis host's clock stepped back: a lease taken before the step would end an hour
    late; the next claim brings it back to one lease from the server's now."""
    store = RedisOutbox.from_url(redis_url)
    await store.client.flushdb()
    try:
        ids = await store.enqueue([text("alert 0"), text("alert 1")])
        [held] = await store.claim("ops", limit=1, lease_seconds=5)
        stepped = repr(await _redis_time(store.client) + 3600)
        await store.client.hset(f"wecom-bot:rec:{held.id}", "lease_until", stepped)
        await store.client.zadd("wecom-bot:leased:ops", {f"{held.id:015d}": float(stepped)})
        [other] = await store.claim("ops", limit=1, lease_seconds=5)
        assert other.id == ids[1]
        cut = await store.get(held.id)
        redis_now = await _redis_time(store.client)
        assert cut is not None and cut.lease_until is not None
        assert redis_now < cut.lease_until <= redis_now + 5
    finally:
        await store.close()


async def test_the_window_does_not_wait_for_a_clock_that_stepped_back(
    clients: list[aioredis.Redis],
) -> None:
    """Sends and a block recorded an hour "ahead" (the clock then stepped back an hour) hold
    the key for one window from now, not for the hour."""
    clock = FakeClock(START + 3600)
    limiter = RedisWindowLimiter(clients[0], "3/30s", clock=clock)
    for _ in range(3):
        assert await limiter.try_acquire("k") == 0.0
    assert await limiter.record_rejection("k") == pytest.approx(30)
    clock.now = START  # the step back
    assert await limiter.try_acquire("k") == pytest.approx(30)
    assert await limiter.used("k") == 3
    clock.advance(30)
    assert await limiter.try_acquire("k") == 0.0


async def test_a_slow_answer_moves_its_mark_for_every_client(
    clients: list[aioredis.Redis],
) -> None:
    clock = FakeClock(START)
    one, two = (RedisWindowLimiter(c, "2/10s", clock=clock) for c in clients)
    assert await one.try_acquire("k") == 0.0  # the slow send, at START
    clock.advance(1)
    assert await two.try_acquire("k") == 0.0
    clock.advance(3)  # its answer, 4 s after its slot
    await one.answered("k", 4.0)
    assert await two.used("k") == 2  # moved, not added
    clock.advance(6.5)  # START + 10.5: without the move its slot would be free again
    assert await two.try_acquire("k") == pytest.approx(0.5)
    clock.advance(0.5)
    assert await two.try_acquire("k") == 0.0
    assert await one.try_acquire("k") == pytest.approx(3.0)  # the moved mark frees at +14
    await one.answered("k", 0.01)  # a fast answer changes nothing
    assert await one.used("k") == 2
    # No answer: the mark goes where WeCom may still process the send.
    clock.advance(20)
    assert await one.try_acquire("k") == 0.0
    clock.advance(2)
    await one.answered("k", 2.0, later=2.0)  # marked at +35
    assert await two.try_acquire("k") == 0.0  # +33
    clock.advance(10.5)
    assert await one.try_acquire("k") == 0.0  # +33 left the window
    assert await two.try_acquire("k") == pytest.approx(1.5)  # +35 holds until +45


async def _redis_time(client: aioredis.Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000
