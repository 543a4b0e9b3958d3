"""Gateway ingest: Alertmanager notifications accepted durably per second, latency, memory.

``wecom-bot gateway --config <generated yaml>`` runs as a subprocess with its outbox in a
temporary directory (SQLite, the default) or on a ``redis-server`` started here on a free
port; its bot points at an emulator process limited to WeCom's 20 messages per 60 s, so
during the run nearly everything stays queued (and the dispatcher folds the backlog into
digests, as it would in a real storm). A load generator in this process (httpx, async) posts
Alertmanager v4 notifications, each one distinct (no idempotency hit), and counts only
``200`` answers: the gateway answers 200 after the outbox stored the message.

Measured per store:

* **full speed**: N concurrent connections posting back to back; notifications/s, p50/p99;
* **fixed 500/s**: an open-loop schedule (a request starts at its planned time whatever the
  previous ones did), latency from the planned time, so a stall is not hidden;
* **memory**: the gateway's RSS (and peak) once 100,000 messages were accepted.

The gateway's own CPU time per notification (``/proc/PID/stat``) is reported too: on a
2-core machine the generator competes with the gateway for the CPU.

Run: ``.venv/bin/python -m bench.bench_ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench._common import machine, percentile, table, today
from bench.bench_sdk import (
    ServerProcess,
    cli_command,
    emulator_process,
    new_key,
    server_process,
)
from wecom_bot.gateway.samples import alertmanager_firing

KEY_ENV = "WECOM_BENCH_KEY"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nothing listens on right now (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a process (``VmHWM``) in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM line")


class Payloads:
    """Distinct Alertmanager v4 notifications, pre-encoded, cheap to make by the thousand.

    Each one is the two-alert firing sample of the gateway with its own group key, alert
    fingerprints and instances, so the gateway's idempotency window never drops one.
    """

    _MARK = "__N__"

    def __init__(self) -> None:
        sample = alertmanager_firing(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
        sample["groupKey"] = sample["groupKey"] + ":" + self._MARK
        for index, alert in enumerate(sample["alerts"]):
            alert["fingerprint"] = f"{self._MARK}{index}"
            alert["labels"]["instance"] = f"node-{self._MARK}-{index}:9100"
        self._parts = json.dumps(sample, ensure_ascii=False).split(self._MARK)

    def __call__(self, n: int) -> bytes:
        """The body of notification number ``n``."""
        return f"{n:012d}".join(self._parts).encode("utf-8")


# -- processes ------------------------------------------------------------------------------
@contextlib.contextmanager
def redis_process() -> Iterator[str | None]:
    """A throwaway ``redis-server`` on a free port (yields its URL), or None if not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    args += ["--appendonly", "no"]

    def ready(server: ServerProcess) -> bool:
        return "Ready to accept connections" in server.output()

    with server_process(args, ready=ready) as _server:
        yield f"redis://127.0.0.1:{port}/0"


FANOUT_BOTS = 10
"""Bots of the ``fanout`` route: the memory phase queues this many messages per notification."""


def write_config(directory: Path, *, port: int, base_url: str, store: str) -> Path:
    """A gateway config: bot ``ops`` on the default route; ``fanout`` posts to 5 bots.

    Keys come from the environment (``WECOM_BENCH_KEY_<n>``), never from the file.
    """
    bots = "".join(
        f"  b{n}:\n    key_env: {KEY_ENV}_{n}\n    msgtype: markdown\n" for n in range(FANOUT_BOTS)
    )
    fanout = ", ".join(f"b{n}" for n in range(FANOUT_BOTS))
    text = (
        "# generated by bench/bench_ingest.py\n"
        "listen_host: 127.0.0.1\n"
        f"listen_port: {port}\n"
        f"base_url: {base_url}\n"
        f"store: {store}\n"
        "rate: 20/60s\n"
        "bots:\n"
        f"  ops:\n    key_env: {KEY_ENV}_ops\n    msgtype: markdown\n"
        f"{bots}"
        "routes:\n"
        "  - name: fanout\n"
        "    matchers: ['bench=\"fanout\"']\n"
        f"    bots: [{fanout}]\n"
        "default_route:\n"
        "  name: default\n"
        "  bots: [ops]\n"
        "  template: default\n"
    )
    path = directory / "gateway.yaml"
    path.write_text(text, "utf-8")
    return path


def bot_keys() -> dict[str, str]:
    """Fresh keys for every bot of :func:`write_config`, as environment variables."""
    names = ["ops", *(str(n) for n in range(FANOUT_BOTS))]
    return {f"{KEY_ENV}_{name}": new_key() for name in names}


@contextlib.contextmanager
def gateway_process(
    config: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """``wecom-bot gateway --config FILE`` until it answers ``/readyz``; ``env`` holds its
    keys (default: fresh ones for :func:`write_config`'s bots)."""
    url = f"http://127.0.0.1:{port}"

    def ready(server: ServerProcess) -> bool:
        try:
            ok = httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
        if ok:
            server.url = url
        return ok

    args = [*cli_command(), "gateway", "--config", str(config)]
    keys = env or bot_keys()
    with server_process(args, ready=ready, env=keys, cwd=config.parent, timeout=60) as server:
        yield server


# -- load ------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    """One load phase.

    Attributes:
        phase: what was run.
        sent: requests made.
        ok: requests answered 200.
        statuses: count per non-200 status (or exception name).
        seconds: wall time of the phase.
        latencies_ms: latency of each 200 answer.
        gateway_cpu: CPU seconds the gateway used during the phase.
        target_rate: the planned rate of an open-loop phase.
        generator_cpu: CPU seconds the load generator (this process) used.
        drained: seconds after the phase until the gateway's journal was empty, i.e. every
            accepted notification was rendered into outbox messages.
        drain_cpu: CPU seconds the gateway used in that time.
    """

    phase: str
    sent: int
    ok: int
    statuses: dict[str, int]
    seconds: float
    latencies_ms: list[float]
    gateway_cpu: float
    target_rate: float | None = None
    generator_cpu: float = 0.0
    drained: float = float("nan")
    drain_cpu: float = 0.0

    @property
    def per_second(self) -> float:
        """Notifications accepted (200) per second."""
        return self.ok / self.seconds

    def p(self, q: float) -> float:
        """A latency quantile in milliseconds."""
        return percentile(self.latencies_ms, q)

    @property
    def rendered_per_second(self) -> float:
        """Notifications rendered into messages per second, from the phase's start until the
        journal was empty again (the sustained end-to-end rate when the phase overloads)."""
        return self.ok / (self.seconds + self.drained)

    @property
    def cpu_ms_per_notification(self) -> float:
        """Gateway CPU milliseconds per notification, accepting and rendering."""
        return (self.gateway_cpu + self.drain_cpu) / max(self.ok, 1) * 1e3


class RawConnection:
    """One kept-alive HTTP/1.1 connection speaking just enough HTTP to POST JSON.

    A Python HTTP client costs the generator more CPU per request than the gateway spends
    (httpx: about 1-3 ms here), and both share the machine's two cores; this one costs tens
    of microseconds, so the figures are the gateway's.
    """

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> str:
        """Send one request; returns the status code as text."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        self.writer.write(head + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = answer[9:12].decode("ascii")
        length = 0
        close = False
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        """Close the connection (the next post opens a new one)."""
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class LoadGenerator:
    """Posts notifications to ``{url}/alertmanager`` over a pool of kept-alive connections.

    Args:
        url: the gateway's base URL.
        pid: the gateway's process id (for its CPU time).
        payloads: the bodies.
        connections: the pool size (and the concurrency at full speed).
        path: where to post (``/alertmanager`` or ``/alertmanager/{route}``).
        client: ``"raw"`` (:class:`RawConnection`) or ``"httpx"`` (one ``AsyncClient``).
    """

    def __init__(
        self,
        url: str,
        pid: int,
        payloads: Payloads,
        connections: int = 32,
        path: str = "/alertmanager",
        client: str = "raw",
    ) -> None:
        self.base = url
        self.path = path
        self.pid = pid
        self.payloads = payloads
        self.connections = connections
        self.client = client
        self.next_n = 0

    def _take(self) -> bytes:
        self.next_n += 1
        return self.payloads(self.next_n)

    @contextlib.asynccontextmanager
    async def _poster(self) -> AsyncIterator[Callable[[bytes], Awaitable[str]]]:
        if self.client == "httpx":
            limits = httpx.Limits(
                max_connections=self.connections, max_keepalive_connections=self.connections
            )
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:

                async def post_httpx(body: bytes) -> str:
                    answer = await client.post(
                        self.base + self.path,
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    return str(answer.status_code)

                yield post_httpx
            return
        split = urlsplit(self.base)
        pool: asyncio.Queue[RawConnection] = asyncio.Queue()
        conns = [
            RawConnection(split.hostname or "127.0.0.1", split.port or 80, self.path)
            for _ in range(self.connections)
        ]
        for conn in conns:
            pool.put_nowait(conn)

        async def post_raw(body: bytes) -> str:
            conn = await pool.get()
            try:
                return await conn.post(body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await conn.close()
                raise
            finally:
                pool.put_nowait(conn)

        try:
            yield post_raw
        finally:
            for conn in conns:
                await conn.close()

    async def _post(
        self,
        post: Callable[[bytes], Awaitable[str]],
        body: bytes,
        since: float,
        result: LoadResult,
    ) -> None:
        result.sent += 1
        try:
            status = await post(body)
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
            status = type(exc).__name__
        if status == "200":
            result.ok += 1
            result.latencies_ms.append((time.perf_counter() - since) * 1e3)
        else:
            result.statuses[status] = result.statuses.get(status, 0) + 1

    def _start(self, result: LoadResult) -> tuple[float, float, float]:
        return cpu_seconds(self.pid), time.process_time(), time.perf_counter()

    def _finish(self, result: LoadResult, marks: tuple[float, float, float]) -> None:
        result.seconds = time.perf_counter() - marks[2]
        result.gateway_cpu = cpu_seconds(self.pid) - marks[0]
        result.generator_cpu = time.process_time() - marks[1]

    async def closed_loop(self, phase: str, count: int, budget: float) -> LoadResult:
        """``connections`` workers posting back to back, ``count`` requests or ``budget`` s."""
        result = LoadResult(phase, 0, 0, {}, 0.0, [], 0.0)
        async with self._poster() as post:
            deadline = time.perf_counter() + budget
            marks = self._start(result)

            async def worker() -> None:
                while result.sent < count and time.perf_counter() < deadline:
                    await self._post(post, self._take(), time.perf_counter(), result)

            await asyncio.gather(*(worker() for _ in range(self.connections)))
            self._finish(result, marks)
        return result

    async def open_loop(self, phase: str, rate: float, seconds: float) -> LoadResult:
        """One request every ``1/rate`` s for ``seconds``, latency from the planned time."""
        result = LoadResult(phase, 0, 0, {}, 0.0, [], 0.0, target_rate=rate)
        total = int(rate * seconds)
        async with self._poster() as post:
            tasks: list[asyncio.Task[None]] = []
            marks = self._start(result)
            for i in range(total):
                planned = marks[2] + i / rate
                delay = planned - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = self._take()
                tasks.append(asyncio.create_task(self._post(post, body, planned, result)))
            await asyncio.gather(*tasks)
            self._finish(result, marks)
        return result


# -- one store ------------------------------------------------------------------------------
@dataclass
class StoreResult:
    """Every figure for one outbox backend."""

    store: str
    phases: list[LoadResult] = field(default_factory=list)
    messages_queued: int = 0
    fill: LoadResult | None = None
    rss_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    idle_rss_mb: float = float("nan")
    queue_depth: float = float("nan")

    def phase(self, prefix: str) -> LoadResult:
        """The first phase whose name starts with ``prefix``."""
        return next(p for p in self.phases if p.phase.startswith(prefix))


def metric(url: str, name: str) -> float:
    """A metric of the gateway's ``/metrics``, summed over its labels."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def queue_depth(url: str) -> float:
    """The gateway's ``wecom_bot_queue_depth`` gauge summed over bots."""
    return metric(url, "wecom_bot_queue_depth")


async def drain(gateway: ServerProcess, phase: LoadResult, budget: float = 600.0) -> None:
    """Wait until the journal is empty; sets ``phase.drained`` (seconds after the phase) and
    ``phase.drain_cpu``."""
    start = time.perf_counter()
    cpu = cpu_seconds(gateway.proc.pid)
    while time.perf_counter() - start < budget:
        depth = await asyncio.to_thread(metric, gateway.url, "wecom_bot_inbox_depth")
        if depth == 0:
            phase.drained = time.perf_counter() - start
            phase.drain_cpu = cpu_seconds(gateway.proc.pid) - cpu
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the journal did not drain within {budget:.0f} s after {phase.phase}")


async def _load(gateway: ServerProcess, result: StoreResult, settings: IngestSettings) -> None:
    payloads = Payloads()
    generator = LoadGenerator(gateway.url, gateway.proc.pid, payloads, settings.connections)
    warm = await generator.closed_loop("warm-up", 200, 10)
    await drain(gateway, warm)
    full = await generator.closed_loop(
        f"full speed, {settings.connections} connections", settings.count, settings.budget
    )
    await drain(gateway, full)
    result.phases.append(full)
    fixed = await generator.open_loop(
        f"fixed {settings.rate:g}/s", settings.rate, settings.rate_seconds
    )
    await drain(gateway, fixed)
    result.phases.append(fixed)
    result.messages_queued = warm.ok + sum(p.ok for p in result.phases)
    if settings.fill > result.messages_queued:
        fanout = LoadGenerator(
            gateway.url,
            gateway.proc.pid,
            payloads,
            settings.connections,
            path="/alertmanager/fanout",
        )
        fanout.next_n = generator.next_n
        missing = -(-(settings.fill - result.messages_queued) // FANOUT_BOTS)
        fill = await fanout.closed_loop("fill", missing, settings.fill_budget)
        await drain(gateway, fill)
        result.fill = fill
    # What the outbox really received (the journal is empty: everything accepted is rendered).
    result.messages_queued = int(metric(gateway.url, "wecom_bot_messages_queued_total"))


@dataclass
class IngestSettings:
    """Sizes and time limits of the ingest benchmark.

    Attributes:
        connections: concurrent connections at full speed.
        count: most requests at full speed.
        budget: most seconds at full speed.
        rate: the fixed rate (per second).
        rate_seconds: how long the fixed rate runs.
        fill: messages to have queued before reading the RSS (0 skips it); filled through
            the ``fanout`` route, 5 messages per notification.
        fill_budget: most seconds to reach ``fill``.
    """

    connections: int = 32
    count: int = 20_000
    budget: float = 15.0
    rate: float = 500.0
    rate_seconds: float = 10.0
    fill: int = 100_000
    fill_budget: float = 180.0


def bench_store(
    label: str, store_url: str | None, emulator_url: str, settings: IngestSettings
) -> StoreResult:
    """Start a gateway on ``store_url`` (None: SQLite in a temp dir) and load it."""
    result = StoreResult(label)
    with tempfile.TemporaryDirectory(prefix="wecom-ingest-") as tmp:
        directory = Path(tmp)
        store = store_url or f"sqlite:///{directory / 'outbox.db'}"
        port = free_port()
        config = write_config(directory, port=port, base_url=emulator_url, store=store)
        with gateway_process(config, port) as gateway:
            result.idle_rss_mb = gateway.rss_mb()
            asyncio.run(_load(gateway, result, settings))
            result.rss_mb = gateway.rss_mb()
            result.peak_rss_mb = peak_rss_mb(gateway.proc.pid)
            result.queue_depth = queue_depth(gateway.url)
    return result


def run(settings: IngestSettings | None = None, redis_fill: bool = False) -> list[StoreResult]:
    """Ingest into SQLite, then into Redis when ``redis-server`` is installed.

    Args:
        settings: sizes and time limits.
        redis_fill: also fill the Redis gateway to ``settings.fill`` for its RSS (off by
            default to keep the run within minutes; its queue lives in Redis anyway).
    """
    settings = settings or IngestSettings()
    results: list[StoreResult] = []
    with emulator_process(rate="20/60s") as emu:
        results.append(bench_store("SQLite (default)", None, emu.url, settings))
        with redis_process() as redis_url:
            if redis_url is not None:
                redis_settings = settings if redis_fill else replace(settings, fill=0)
                results.append(bench_store("Redis", redis_url, emu.url, redis_settings))
            else:
                print("redis-server not installed: Redis not measured", file=sys.stderr)
    return results


GOAL_RATE = 2000.0
GOAL_P99_MS = 50.0
GOAL_RSS_MB = 200.0


def goals(result: StoreResult, settings: IngestSettings) -> dict[str, bool]:
    """The ingest goals of issues 5 and 9, each met or not."""
    full = result.phase("full speed")
    fixed = result.phase("fixed")
    met = {
        f">= {GOAL_RATE:,.0f} notifications/s": full.per_second >= GOAL_RATE,
        f"p99 < {GOAL_P99_MS:g} ms at {settings.rate:g}/s": (
            fixed.ok == fixed.sent and fixed.p(0.99) < GOAL_P99_MS
        ),
    }
    if result.fill is not None:
        met[f"RSS < {GOAL_RSS_MB:g} MB with {settings.fill:,} queued"] = (
            result.messages_queued >= settings.fill and result.rss_mb < GOAL_RSS_MB
        )
    return met


def report(results: list[StoreResult], settings: IngestSettings) -> str:
    """The Markdown section of :func:`run`'s figures."""
    rows = []
    for r in results:
        for p in r.phases:
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(p.statuses.items())) or "none"
            rows.append(
                [
                    r.store,
                    p.phase,
                    f"{p.ok}/{p.sent}",
                    errors,
                    f"{p.per_second:,.0f}",
                    f"{p.p(0.5):.1f}",
                    f"{p.p(0.99):.1f}",
                    f"{p.drained:.1f}",
                    f"{p.rendered_per_second:,.0f}",
                    f"{p.cpu_ms_per_notification:.2f}",
                    f"{p.generator_cpu / max(p.sent, 1) * 1e3:.2f}",
                ]
            )
    memory = []
    for r in results:
        fill = r.fill
        memory.append(
            [
                r.store,
                f"{r.messages_queued:,}",
                f"{r.queue_depth:,.0f}",
                "—"
                if fill is None
                else f"{fill.ok:,} in {fill.seconds:.0f} s (+{fill.drained:.0f} s)",
                f"{r.idle_rss_mb:.0f}",
                f"{r.rss_mb:.0f}",
                f"{r.peak_rss_mb:.0f}",
            ]
        )
    return "\n\n".join(
        [
            "Gateway subprocess, one bot on the default route, its emulator limited to "
            "20/60 s (so the backlog stays queued and is digested, as in a real storm). "
            "A 200 means the notification is stored in the gateway's journal (durable); it is "
            "rendered into outbox messages behind the answers. *Accepted/s* and the latencies "
            "are the answers'; latency at the fixed rate is measured from each request's "
            "planned start. *Journal empty after* is how long after the phase the last "
            "accepted notification was rendered; *rendered/s* is 200 answers over the phase "
            "plus that time (the sustained end-to-end rate). CPU columns: milliseconds per "
            "notification of the gateway process (accepting and rendering) and of the load "
            "generator.",
            table(
                [
                    "store",
                    "phase",
                    "200 answers",
                    "other answers",
                    "accepted/s",
                    "p50 ms",
                    "p99 ms",
                    "journal empty after s",
                    "rendered/s",
                    "gateway CPU ms",
                    "generator CPU ms",
                ],
                rows,
            ),
            f"Memory: notifications accepted until at least {settings.fill:,} messages were "
            f"queued (the rest through a route to {FANOUT_BOTS} bots, {FANOUT_BOTS} messages "
            "per notification), the journal rendered empty, then the gateway's RSS. *Messages "
            "queued* is the gateway's `wecom_bot_messages_queued_total`; queue depth is its "
            "`wecom_bot_queue_depth` (digests replace the records they fold).",
            table(
                [
                    "store",
                    "messages queued",
                    "outbox depth after digests",
                    "fill notifications (then journal empty after)",
                    "RSS idle MB",
                    "RSS MB",
                    "peak RSS MB",
                ],
                memory,
            ),
        ]
    )


def main() -> str:
    """Run and return the Markdown report."""
    settings = IngestSettings()
    return f"Measured {today()} on {machine()}.\n\n" + report(run(settings), settings)


if __name__ == "__main__":
    print(main())
