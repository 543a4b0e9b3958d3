"""Fixtures of the outbox tests: a fake clock and a ``store`` per implementation."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from wecom_bot.store import MemoryOutbox, Outbox, SQLiteOutbox
from wecom_bot.store.redis import RedisOutbox

from ._support import FakeClock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on a free loopback port, for the whole session."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.02)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
        redis = RedisOutbox.from_url(request.getfixturevalue("redis_url"), clock=clock)
        await redis.client.flushdb()
        outbox = redis
    else:
        outbox = FACTORIES[request.param](clock, tmp_path)
    try:
        yield outbox
    finally:
        await outbox.close()
