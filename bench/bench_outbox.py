"""Outbox write latency: one message stored durably, one call at a time, per backend.

This is the write each accepted notification waits for (the gateway's journal record is one
``enqueue_once``), measured without HTTP in front of it: a single caller awaits each call
before the next, so the figure is the latency of one write, not a throughput under
concurrency (the ingest benchmark measures that through the gateway).

Backends: the in-memory outbox (for scale), SQLite in a temporary directory (the default
store; WAL, one writer thread), and Redis on a ``redis-server`` started here on a free port
when it is installed.

Run: ``.venv/bin/python -m bench.bench_outbox``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench._common import percentile, table
from bench.bench_ingest import redis_process
from wecom_bot.store import MemoryOutbox, NewMessage, Outbox, SQLiteOutbox
from wecom_bot.store.redis import RedisOutbox

WARM_UP = 50
CALLS = 2000
CONTENT = "x" * 1200
"""About the size of a rendered alert (and of a journal record's body)."""


@dataclass
class Latency:
    """Latencies of one operation on one backend, in microseconds."""

    backend: str
    operation: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 0.99)


def _message(n: int) -> NewMessage:
    return NewMessage(
        bot="ops",
        payload={"msgtype": "markdown", "markdown": {"content": f"{CONTENT} {n}"}},
        notification_id=f"n{n:012d}",
    )


async def _time(calls: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    for n in range(-WARM_UP, 0):
        await call(n)
    samples = []
    for n in range(calls):
        began = time.perf_counter()
        await call(n)
        samples.append((time.perf_counter() - began) * 1e6)
    return samples


async def measure(backend: str, store: Outbox, calls: int) -> list[Latency]:
    """``enqueue`` of one message, then ``enqueue_once`` with a fresh key each time."""
    try:
        enqueue = await _time(calls, lambda n: store.enqueue([_message(n)]))
        once = await _time(calls, lambda n: store.enqueue_once(f"key-{n}", 300.0, [_message(n)]))
    finally:
        await store.close()
    return [
        Latency(backend, "enqueue (one message)", enqueue),
        Latency(backend, "enqueue_once (new key)", once),
    ]


def run(calls: int = CALLS) -> list[Latency]:
    """Every backend available here."""
    results: list[Latency] = []
    results += asyncio.run(measure("memory", MemoryOutbox(), calls))
    with tempfile.TemporaryDirectory(prefix="wecom-outbox-") as tmp:
        store = SQLiteOutbox(Path(tmp) / "outbox.db")
        results += asyncio.run(measure("SQLite (default)", store, calls))
    with redis_process() as url:
        if url is None:
            print("redis-server not installed: Redis not measured", file=sys.stderr)
        else:
            results += asyncio.run(measure("Redis", RedisOutbox.from_url(url), calls))
    return results


def report(results: list[Latency], calls: int = CALLS) -> str:
    """The Markdown section."""
    rows = [
        [r.backend, r.operation, f"{r.median:,.0f}", f"{r.p99:,.0f}", f"{max(r.samples):,.0f}"]
        for r in results
    ]
    return (
        f"`python -m bench.bench_outbox`: {calls:,} calls after {WARM_UP} to warm up, one at a "
        "time, each a ~1.2 KB markdown message stored durably (SQLite: committed in WAL mode; "
        "Redis: written by its Lua script). Latency of one call, in µs.\n\n"
        + table(["backend", "operation", "median µs", "p99 µs", "max µs"], rows)
    )


if __name__ == "__main__":
    print(report(run()))
