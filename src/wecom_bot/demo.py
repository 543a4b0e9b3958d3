"""``make run``: the emulator and the gateway on the embedded defaults, with sample alerts.

It starts a local emulator of the WeCom API and the gateway with the example configuration
(SQLite outbox in a temporary directory, removed on exit), posts sample Alertmanager
notifications (firing, then resolved) and a Grafana one, and prints where to look: the
emulator's page, the gateway's console and a ``curl`` to post your own alert.

It sends to the emulator even when ``WECOM_BOT_KEY`` is exported; only ``--real``
(``make run REAL=1``) sends the samples to the real group of ``WECOM_BOT_KEY``.

Ctrl-C stops it with a goodbye line and exit status 130 (the shell's convention for an
interrupt); SIGTERM (``kill``, a supervisor) the same way with status 143. Either way its
temporary outbox is removed. ``python -m wecom_bot.demo --once`` exits when the samples
are delivered (tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from .gateway.app import create_app as create_gateway
from .gateway.config import GatewayConfig
from .gateway.samples import alertmanager_firing, alertmanager_resolved, grafana_firing
from .masking import mask_key

INTERRUPTED = 130
TERMINATED = 128 + signal.SIGTERM
"""Exit status after Ctrl-C (128 + SIGINT), as shells report an interrupted command."""

DEMO_KEY = "demo0000-wecom-bot-0000-emulator0000"
EXAMPLE_CONFIG = Path(__file__).parent / "gateway" / "examples" / "gateway.yaml"


def _port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def demo_config(base_url: str, store: str, port: int) -> GatewayConfig:
    """The example configuration, pointed at ``base_url`` with a local store."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text("utf-8"))
    data.update(base_url=base_url, store=store, listen_port=port, coalesce_after=10)
    return GatewayConfig.model_validate(data)


class _Server(uvicorn.Server):
    # The demo handles Ctrl-C and SIGTERM itself: uvicorn's capture would re-raise each signal
    # once per server as they stop, cancelling the demo's clean-up half way.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(app: Any, port: int) -> tuple[_Server, asyncio.Task[None]]:
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task


def sample_curl(gateway_url: str) -> str:
    """A complete ``curl`` command, safe to paste in a shell, posting a sample notification."""
    body = json.dumps(alertmanager_firing(), ensure_ascii=False, separators=(",", ":"))
    return shlex.join(
        ["curl", "-X", "POST", f"{gateway_url}/alertmanager",
         "-H", "Content-Type: application/json", "-d", body]
    )  # fmt: skip


async def _fire(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        for name, payload in (
            ("Alertmanager: alerts firing", alertmanager_firing()),
            ("Grafana: alert firing", grafana_firing()),
            ("Alertmanager: resolved", alertmanager_resolved()),
        ):
            path = "/grafana" if name.startswith("Grafana") else "/alertmanager"
            answer = await client.post(path, json=payload)
            print(f"  POST {path:<14} {name:<32} -> {answer.status_code} {answer.text}")
            await asyncio.sleep(0.5)


async def main(once: bool, real: bool = False) -> int:
    """Run the demo; returns the exit status.

    Args:
        once: exit when the samples are delivered instead of serving until Ctrl-C.
        real: send to the real group of ``WECOM_BOT_KEY`` instead of the local emulator.
    """
    _cancel_on_sigterm()
    real_key = os.environ.get("WECOM_BOT_KEY", "").strip()
    if real and not real_key:
        print("--real sends to the group of WECOM_BOT_KEY: export it first.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(
        prefix="wecom-bot-demo-", ignore_cleanup_errors=True
    ) as workdir:
        return await _run(Path(workdir), once, real_key if real else None)


async def _run(workdir: Path, once: bool, real_key: str | None) -> int:
    servers: list[tuple[_Server, asyncio.Task[None]]] = []
    if real_key:
        base_url = os.environ.get("WECOM_BOT_BASE_URL", "https://qyapi.weixin.qq.com")
        print(f"--real: sending to your real group (key {mask_key(real_key)}).")
    else:
        from .emulator import EmulatorSettings
        from .emulator import create_app as create_emulator

        # The example config reads the key from WECOM_BOT_KEY; the demo's is the emulator's.
        os.environ["WECOM_BOT_KEY"] = DEMO_KEY
        os.environ.pop("WECOM_BOT_BASE_URL", None)
        emulator_port = _port(8080)
        servers.append(
            await _serve(create_emulator(EmulatorSettings(db=":memory:")), emulator_port)
        )
        base_url = f"http://127.0.0.1:{emulator_port}"
        print(f"Emulator of the WeCom API: {base_url}/  <- open this page to see the group")
    gateway_port = _port(9095)
    config = demo_config(base_url, f"sqlite:///{workdir / 'outbox.db'}", gateway_port)
    servers.append(await _serve(create_gateway(config), gateway_port))
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    print(f"Gateway: {gateway_url}  (console: {gateway_url}/ui, metrics: {gateway_url}/metrics)")
    print("Firing sample alerts:")
    try:
        await _fire(gateway_url)
        if once:
            return await _wait_delivered(gateway_url)
        print("\nRunning. Post your own alert, e.g.:")
        print(f"  {sample_curl(gateway_url)}")
        print("Press Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()
        return 0
    finally:
        await _stop(servers)


async def _stop(servers: list[tuple[_Server, asyncio.Task[None]]]) -> None:
    for server, _ in servers:
        emulator = getattr(getattr(server.config.app, "state", None), "emulator", None)
        if emulator is not None:
            emulator.close_streams()
        server.should_exit = True
    # The gateway closes its outbox as it stops, before the temporary directory goes.
    await asyncio.wait([task for _, task in servers], timeout=10)


async def _wait_delivered(gateway_url: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=gateway_url, timeout=5) as client:
        while time.monotonic() < deadline:
            text = (await client.get("/metrics")).text
            sent = _metric(text, "wecom_bot_messages_sent_total")
            depth = _metric(text, "wecom_bot_queue_depth")
            if sent >= 3 and depth == 0:
                print(f"Delivered {sent:g} messages; the outbox is empty.")
                return 0
            await asyncio.sleep(0.2)
    print("The samples were not all delivered in time; see the gateway log above.")
    return 1


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cli() -> None:
    """Entry point of ``python -m wecom_bot.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="exit once the samples are delivered")
    parser.add_argument(
        "--real", action="store_true", help="send to the real group of WECOM_BOT_KEY"
    )
    args = parser.parse_args()
    try:
        status = asyncio.run(main(args.once, args.real))
    except asyncio.CancelledError:
        if not _terminated.is_set():
            raise
        print("\nStopped (SIGTERM): the demo's servers are down and its outbox is removed. Bye.")
        status = TERMINATED
    except KeyboardInterrupt:
        print("\nStopped: the demo's servers are down and its outbox is removed. Bye.")
        status = INTERRUPTED
    sys.exit(status)


_terminated = threading.Event()


def _cancel_on_sigterm() -> None:
    # SIGTERM cancels the demo's main task, which unwinds like Ctrl-C: the servers stop and
    # the temporary outbox is removed on the way out.
    task = asyncio.current_task()
    if task is None:
        return

    def terminate() -> None:
        if not _terminated.is_set():  # a second SIGTERM must not cut the clean-up short
            _terminated.set()
            task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)


if __name__ == "__main__":
    cli()
