"""SDK throughput against the emulator over loopback, and apprise's plugin in the same run.

The emulator runs in its own process (``wecom-bot emulator --no-rate-limit``), so the client
under test and the server do not share a GIL. Measured, in one run against one emulator:

* ``Bot``: one blocking client sending sequentially;
* ``AsyncBot``: one client shared by N concurrent tasks;
* apprise's ``wecombot://`` plugin, its API URL template pointed at the emulator (in this
  process only), once with its built-in throttle off (the plugin's own cost) and once as
  shipped (it sleeps 5.5 s between two notifications of the same service).

Each figure is messages per second (wall clock) and the client's CPU time per message
(``time.process_time`` of this process: the emulator's CPU is not counted). Then, against an
emulator with WeCom's real limit (20 per 60 s), 30 messages to one key show what each client
reports when the server answers errcode 45009: apprise treats any HTTP 200 as success.

Run: ``.venv/bin/python -m bench.bench_sdk``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import machine, table, today
from wecom_bot import AsyncBot, Bot, RateLimitedError, TextMessage
from wecom_bot.masking import key_fingerprint

CONTENT = "磁盘使用率 91% · node-{i} · /var/lib/docker"
"""One short alert line, like most of what a group robot sends."""

REPO = Path(__file__).resolve().parents[1]
_URL_LINE = re.compile(r"listening on (http://[0-9.:\[\]a-z]+)")


# -- server processes ----------------------------------------------------------------------
def cli_command() -> list[str]:
    """The ``wecom-bot`` console script of this interpreter's environment."""
    script = Path(sysconfig.get_path("scripts")) / "wecom-bot"
    if script.exists():
        return [str(script)]
    found = shutil.which("wecom-bot")
    if found is None:
        raise RuntimeError("the wecom-bot console script is not installed (pip install -e .)")
    return [found]


@dataclass
class ServerProcess:
    """A server started as a child process, its output kept in a log file.

    Attributes:
        proc: the child process.
        log: where its stdout and stderr go.
        url: the base URL it listens on.
    """

    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        """Everything the process printed so far."""
        try:
            return self.log.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def rss_mb(self) -> float:
        """Resident memory of the process in MiB (``VmRSS`` of ``/proc/PID/status``)."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not end within ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def server_process(
    args: Sequence[str],
    *,
    ready: Callable[[ServerProcess], bool],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 30.0,
) -> Iterator[ServerProcess]:
    """Start ``args``, wait until ``ready(server)`` is true, stop the process on exit.

    Raises:
        RuntimeError: the process ended or was not ready within ``timeout``; the message
            carries the end of its output.
    """
    logdir = Path(tempfile.mkdtemp(prefix="wecom-bench-"))
    log = logdir / "server.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            list(args),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    server = ServerProcess(proc, log)
    try:
        deadline = time.monotonic() + timeout
        while not ready(server):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = "ended" if proc.poll() is not None else "was not ready"
                raise RuntimeError(f"{args[0]} {state}:\n{server.output()[-2000:]}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()
        shutil.rmtree(logdir, ignore_errors=True)


def _emulator_ready(server: ServerProcess) -> bool:
    match = _URL_LINE.search(server.output())
    if match is None:
        return False
    server.url = match.group(1)
    return True


@contextlib.contextmanager
def emulator_process(
    rate: str | None = None, *, launcher: str = "bench"
) -> Iterator[ServerProcess]:
    """The emulator in its own process on 127.0.0.1, a free port, an in-memory store.

    Args:
        rate: the emulator's per-key limit (``"20/1s"``); None turns it off.
        launcher: ``"bench"`` serves :func:`wecom_bot.emulator.create_app` from
            :func:`serve_emulator` (a listening socket on which asyncio sets TCP_NODELAY);
            ``"cli"`` runs ``wecom-bot emulator``, whose pre-bound socket (created with
            protocol 0) leaves TCP_NODELAY off, so every answer on a kept-alive connection
            waits ~40 ms for the client's delayed ACK (Nagle). Measured, see the report.
    """
    if launcher == "cli":
        args = [*cli_command(), "emulator", "--host", "127.0.0.1", "--port", "0"]
        args += ["--db", ":memory:"]
        args += ["--no-rate-limit"] if rate is None else ["--rate", rate]
    else:
        args = [sys.executable, "-m", "bench.bench_sdk", "serve-emulator", rate or "off"]
    with server_process(args, ready=_emulator_ready, cwd=REPO) as server:
        yield server


def serve_emulator(rate: str | None) -> None:
    """Serve the emulator until SIGTERM (the ``serve-emulator`` mode of this module)."""
    import uvicorn

    from wecom_bot.emulator import EmulatorSettings, create_app

    settings = EmulatorSettings.from_options(db=":memory:", rate=rate)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"emulator listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        create_app(settings), log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])


def new_key() -> str:
    """A fresh webhook key: a new group in the emulator."""
    return str(uuid.uuid4())


def group_counters(base_url: str, key: str) -> dict[str, Any]:
    """The emulator's counters of the group of ``key`` (accepted, rejected, rate_limited)."""
    answer = httpx.get(f"{base_url}/api/groups/{key_fingerprint(key)}", timeout=10)
    answer.raise_for_status()
    counters: dict[str, Any] = answer.json()
    return counters


# -- throughput ----------------------------------------------------------------------------
@dataclass
class Throughput:
    """One client's sending rate.

    Attributes:
        client: what was measured.
        messages: messages sent (each answered errcode 0).
        seconds: wall-clock time.
        cpu_seconds: CPU time of this (client) process.
        accepted: messages the emulator counted as accepted for the key.
    """

    client: str
    messages: int
    seconds: float
    cpu_seconds: float
    accepted: int = 0

    @property
    def per_second(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds

    @property
    def cpu_us(self) -> float:
        """Client CPU microseconds per message."""
        return self.cpu_seconds / self.messages * 1e6


def _timed(client: str, send: Callable[[int], object], count: int, budget: float) -> Throughput:
    """Call ``send(i)`` up to ``count`` times or until ``budget`` seconds have passed."""
    wall, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while sent < count and (sent % 50 or time.perf_counter() - wall < budget):
        send(sent)
        sent += 1
    return Throughput(client, sent, time.perf_counter() - wall, time.process_time() - cpu)


def bench_sync(url: str, count: int, budget: float) -> Throughput:
    """``Bot.send`` in a loop, one connection kept alive."""
    key = new_key()
    with Bot(key, base_url=url) as bot:
        for i in range(20):  # warm-up: connection, imports, first-call caches
            bot.send(TextMessage(content=CONTENT.format(i=i)))
        result = _timed(
            "wecom_bot.Bot (sync, sequential)",
            lambda i: bot.send(TextMessage(content=CONTENT.format(i=i))),
            count,
            budget,
        )
    result.accepted = group_counters(url, key)["accepted"] - 20
    return result


def bench_async(url: str, count: int, budget: float, tasks: int) -> Throughput:
    """One ``AsyncBot`` shared by ``tasks`` concurrent senders."""
    key = new_key()

    async def run() -> Throughput:
        async with AsyncBot(key, base_url=url) as bot:
            await asyncio.gather(
                *(bot.send(TextMessage(content=CONTENT.format(i=i))) for i in range(tasks))
            )
            sent = 0
            deadline = time.perf_counter() + budget

            async def worker() -> None:
                nonlocal sent
                while sent < count and time.perf_counter() < deadline:
                    sent += 1
                    await bot.send(TextMessage(content=CONTENT.format(i=sent)))

            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(tasks)))
            return Throughput(
                f"wecom_bot.AsyncBot ({tasks} concurrent tasks)",
                sent,
                time.perf_counter() - wall,
                time.process_time() - cpu,
            )

    result = asyncio.run(run())
    result.accepted = group_counters(url, key)["accepted"] - tasks
    return result


@contextlib.contextmanager
def apprise_at(url: str, *, throttle: bool) -> Iterator[Callable[[str], Any]]:
    """An apprise instance whose ``wecombot://`` plugin posts to ``url`` instead of WeCom.

    The plugin formats ``NotifyWeComBot.notify_url`` when it is built, so the class attribute
    is swapped (and restored) in this process only. ``throttle=False`` also sets the plugin's
    pause between notifications (``request_rate_per_sec``, 5.5 s by default) to zero.

    Yields:
        A factory: key -> ``apprise.Apprise`` with that one ``wecombot://KEY`` service.
    """
    import apprise
    from apprise.plugins.wecombot import NotifyWeComBot

    saved = NotifyWeComBot.notify_url, NotifyWeComBot.request_rate_per_sec
    NotifyWeComBot.notify_url = url + "/cgi-bin/webhook/send?key={key}"
    if not throttle:
        NotifyWeComBot.request_rate_per_sec = 0

    def make(key: str) -> Any:
        instance = apprise.Apprise()
        if not instance.add(f"wecombot://{key}"):
            raise RuntimeError("apprise did not accept the wecombot:// URL")
        return instance

    try:
        yield make
    finally:
        NotifyWeComBot.notify_url, NotifyWeComBot.request_rate_per_sec = saved


def bench_apprise(url: str, count: int, budget: float, *, throttle: bool) -> Throughput:
    """``Apprise.notify`` in a loop through the ``wecombot://`` plugin."""
    key = new_key()
    label = "apprise wecombot:// " + (
        "(as shipped: 5.5 s throttle)" if throttle else "(throttle off)"
    )
    with apprise_at(url, throttle=throttle) as make:
        notifier = make(key)
        warm = 0 if throttle else 20
        for i in range(warm):
            notifier.notify(body=CONTENT.format(i=i))
        result = _timed(label, lambda i: notifier.notify(body=CONTENT.format(i=i)), count, budget)
    result.accepted = group_counters(url, key)["accepted"] - warm
    return result


# -- what a client reports on 45009 ------------------------------------------------------------
@dataclass
class LimitReport:
    """What a client said about messages sent past the rate limit.

    Attributes:
        client: who sent.
        sent: messages attempted.
        reported_ok: how many the client reported as delivered.
        reported_failed: how many it reported as failed (for ours: ``RateLimitedError``).
        accepted: how many the emulator actually accepted.
        answered_45009: how many it answered with errcode 45009.
    """

    client: str
    sent: int
    reported_ok: int
    reported_failed: int
    accepted: int
    answered_45009: int


def rate_limit_reports(url: str, count: int = 30) -> list[LimitReport]:
    """Send ``count`` messages to a fresh key of an emulator limited to 20 per window."""
    out: list[LimitReport] = []
    key = new_key()
    with apprise_at(url, throttle=False) as make:
        notifier = make(key)
        results = [bool(notifier.notify(body=CONTENT.format(i=i))) for i in range(count)]
    counters = group_counters(url, key)
    out.append(
        LimitReport(
            "apprise wecombot:// (Apprise.notify return value)",
            count,
            sum(results),
            count - sum(results),
            counters["accepted"],
            counters["rate_limited"],
        )
    )
    key = new_key()
    ok = failed = 0
    with Bot(key, base_url=url, retry=False) as bot:
        for i in range(count):
            try:
                bot.send(TextMessage(content=CONTENT.format(i=i)))
                ok += 1
            except RateLimitedError:
                failed += 1
    counters = group_counters(url, key)
    out.append(
        LimitReport(
            "wecom_bot.Bot(retry=False) (return / RateLimitedError)",
            count,
            ok,
            failed,
            counters["accepted"],
            counters["rate_limited"],
        )
    )
    return out


# -- the whole benchmark -----------------------------------------------------------------------
@dataclass
class SdkResult:
    """Everything :func:`run` measured."""

    throughput: list[Throughput] = field(default_factory=list)
    limit_reports: list[LimitReport] = field(default_factory=list)
    count: int = 0
    budget: float = 0.0

    def by_client(self, prefix: str) -> Throughput:
        """The first throughput row whose client name starts with ``prefix``."""
        return next(t for t in self.throughput if t.client.startswith(prefix))


def run(
    count: int = 3000,
    budget: float = 8.0,
    concurrency: Sequence[int] = (1, 10, 50),
    shipped_apprise: int = 3,
    cli_check: bool = True,
) -> SdkResult:
    """Measure every client against one emulator process, then the 45009 behaviour.

    Args:
        count: the most messages per client.
        budget: the most seconds per client (whichever of count/budget comes first).
        concurrency: task counts for ``AsyncBot``.
        shipped_apprise: notifications through apprise with its default throttle (each but
            the first waits 5.5 s); 0 skips it.
        cli_check: also time ``Bot`` against the emulator started by its CLI (see
            :func:`emulator_process` on TCP_NODELAY).
    """
    result = SdkResult(count=count, budget=budget)
    with emulator_process(rate=None) as emu:
        result.throughput.append(bench_sync(emu.url, count, budget))
        for tasks in concurrency:
            result.throughput.append(bench_async(emu.url, count, budget, tasks))
        result.throughput.append(bench_apprise(emu.url, count, budget, throttle=False))
        if shipped_apprise:
            result.throughput.append(bench_apprise(emu.url, shipped_apprise, 60.0, throttle=True))
    with emulator_process(rate="20/60s") as emu:
        result.limit_reports = rate_limit_reports(emu.url)
    if cli_check:
        with emulator_process(rate=None, launcher="cli") as emu:
            row = bench_sync(emu.url, 200, 3.0)
        row.client = "wecom_bot.Bot (sync) against `wecom-bot emulator` (CLI launcher)"
        result.throughput.append(row)
    return result


def report(result: SdkResult) -> str:
    """The Markdown section of :func:`run`'s figures."""
    base = result.by_client("apprise wecombot:// (throttle off)")
    rows = [
        [
            t.client,
            str(t.messages),
            f"{t.seconds:.2f}",
            f"{t.per_second:,.1f}",
            f"{t.cpu_us:,.0f}",
            f"{t.per_second / base.per_second:.2f}×",
            str(t.accepted),
        ]
        for t in result.throughput
    ]
    limit_rows = [
        [
            r.client,
            str(r.sent),
            str(r.reported_ok),
            str(r.reported_failed),
            str(r.accepted),
            str(r.answered_45009),
        ]
        for r in result.limit_reports
    ]
    return "\n\n".join(
        [
            f"Emulator in a separate process, rate limit off, in-memory store; at most "
            f"{result.count} messages or {result.budget:.0f} s per client, after a warm-up. "
            "Client CPU = CPU time of the benchmark process per message (the emulator's is "
            "not counted). Ratio = messages/s relative to apprise with its throttle off.",
            table(
                [
                    "client",
                    "messages",
                    "seconds",
                    "messages/s",
                    "client CPU µs/msg",
                    "vs apprise",
                    "emulator accepted",
                ],
                rows,
            ),
            "Past the rate limit (emulator at WeCom's 20 per 60 s, 30 messages sent at once "
            "to a fresh key, no retries):",
            table(
                [
                    "client",
                    "sent",
                    "reported delivered",
                    "reported failed",
                    "emulator accepted",
                    "emulator answered 45009",
                ],
                limit_rows,
            ),
        ]
    )


def main() -> str:
    """Run and return the Markdown report."""
    return f"Measured {today()} on {machine()}.\n\n" + report(run())


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-emulator"]:
        serve_emulator(None if sys.argv[2] == "off" else sys.argv[2])
    else:
        print(main())
