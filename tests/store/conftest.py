"""Fixtures of the outbox tests: a fake clock and a ``store`` per implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_server import redis_server
from wecom_bot.store import MemoryOutbox, Outbox, SQLiteOutbox
from wecom_bot.store.redis import RedisOutbox

from ._support import FakeClock


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on a free loopback port, for the whole session."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _memory(clock: FakeClock, tmp_path: Path) -> Outbox:
    return MemoryOutbox(clock=clock)


def _sqlite_file(clock: FakeClock, tmp_path: Path) -> Outbox:
    return SQLiteOutbox(tmp_path / "outbox.db", clock=clock)


def _sqlite_memory(clock: FakeClock, tmp_path: Path) -> Outbox:
    return SQLiteOutbox(":memory:", clock=clock)


FACTORIES: dict[str, Callable[[FakeClock, Path], Outbox]] = {
    "memory": _memory,
    "sqlite": _sqlite_file,
    "sqlite-memory": _sqlite_memory,
}


@pytest.fixture(
    params=[*sorted(FACTORIES), pytest.param("redis", marks=pytest.mark.redis)],
)
async def store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Outbox]:
    """Each implementation of :class:`Outbox`, fresh and empty, on the fake clock."""
    outbox: Outbox
    if request.param == "redis":
        redis = RedisOutbox.from_url(
            request.getfixturevalue("redis_url"), clock=clock, server_leases=False
        )
        await redis.client.flushdb()
        outbox = redis
    else:
        outbox = FACTORIES[request.param](clock, tmp_path)
    try:
        yield outbox
    finally:
        await outbox.close()
