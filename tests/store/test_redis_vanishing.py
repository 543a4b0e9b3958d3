"""A Redis that loses its data under the outbox, and one that does not persist (issue 26,
item 5): the epoch key tells a restart without data, a flush or a failover to an empty replica;
every instance reports the one incident once; the persistence check reads CONFIG, and says so
when CONFIG is refused. Real redis-server processes on loopback."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.redis_server import free_port, redis_server
from wecom_bot.store import StoreUnavailableError
from wecom_bot.store.redis import RedisOutbox

from ._support import FakeClock, text

pytestmark = pytest.mark.redis


async def test_a_redis_restarted_empty_is_reported_once_by_every_instance(
    tmp_path: Path,
) -> None:
    port = free_port()
    with redis_server(tmp_path, port=port) as url:
        a, b = RedisOutbox.from_url(url, clock=FakeClock()), RedisOutbox.from_url(url)
        assert await a.check_identity() is None and await b.check_identity() is None
        await a.enqueue([text(f"queued {i}") for i in range(5)])
    with redis_server(tmp_path, port=port):  # the same address, no data: no persistence
        for store in (a, b):  # the first call on a connection the old server closed fails
            with contextlib.suppress(StoreUnavailableError):
                await store.ping()
        seen = await a.check_identity()
        assert seen is not None and "lost its data" in seen and "epoch key is gone" in seen
        assert "appendonly yes" in seen and "127.0.0.1" in seen
        assert await a.pending_count() == 0  # the loss is real: nothing else would tell

        first = await a.check_identity(repair=True)
        assert first is not None and "goes on" in first
        assert await a.check_identity() is None
        # b sees the epoch a wrote: the same incident, reported by b once too.
        second = await b.check_identity(repair=True)
        assert second is not None and "epoch key changed" in second
        assert await b.check_identity() is None and await a.check_identity() is None
        await a.enqueue([text("after")])
        assert await b.pending_count() == 1
        await a.close()
        await b.close()


async def test_a_flushed_redis_is_reported(redis_url: str) -> None:
    store = RedisOutbox.from_url(redis_url + "?prefix=flushed:")
    try:
        assert await store.check_identity() is None
        await store.client.flushdb()
        seen = await store.check_identity()
        assert seen is not None and "lost its data" in seen
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), "persistence off (appendonly no, no save)"),
        (("--save", "900 1"), "only RDB snapshots"),
        (("--appendonly", "yes"), None),
        (("--rename-command", "CONFIG", ""), "cannot check the persistence"),
    ],
)
async def test_the_persistence_check(
    tmp_path: Path, options: tuple[str, ...], expected: str | None
) -> None:
    with redis_server(tmp_path, *options) as url:
        store = RedisOutbox.from_url(url)
        try:
            warning = await store.durability_warning()
        finally:
            await store.close()
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and expected in warning and "appendonly yes" in warning
