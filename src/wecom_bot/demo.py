"""``make run``: the emulator and the gateway on the embedded defaults, with sample alerts.

It starts a local emulator of the WeCom API and the gateway with the example configuration
(SQLite outbox), posts sample Alertmanager notifications (firing, then resolved) and a
Grafana one, and prints where to look. With ``WECOM_BOT_KEY`` set, the same gateway sends to
your real group instead of the emulator.

``python -m wecom_bot.demo --once`` exits when the samples are delivered (used by the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from .gateway.app import create_app as create_gateway
from .gateway.config import GatewayConfig
from .gateway.samples import alertmanager_firing, alertmanager_resolved, grafana_firing
from .masking import mask_key

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
    def install_signal_handlers(self) -> None:  # the demo handles Ctrl-C itself
        pass


async def _serve(app: Any, port: int) -> _Server:
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server


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


async def main(once: bool) -> int:
    """Run the demo; returns the exit status."""
    real_key = os.environ.get("WECOM_BOT_KEY", "").strip()
    workdir = Path(tempfile.mkdtemp(prefix="wecom-bot-demo-"))
    emulator_server = None
    if real_key:
        base_url = os.environ.get("WECOM_BOT_BASE_URL", "https://qyapi.weixin.qq.com")
        print(f"WECOM_BOT_KEY is set: sending to your real group (key {mask_key(real_key)}).")
    else:
        from .emulator import EmulatorSettings
        from .emulator import create_app as create_emulator

        os.environ["WECOM_BOT_KEY"] = DEMO_KEY
        emulator_app = create_emulator(EmulatorSettings(db=":memory:"))
        emulator_port = _port(8080)
        emulator_server = await _serve(emulator_app, emulator_port)
        base_url = f"http://127.0.0.1:{emulator_port}"
        print(f"Emulator of the WeCom API: {base_url}/  <- open this page to see the group")
    gateway_port = _port(9095)
    config = demo_config(base_url, f"sqlite:///{workdir / 'outbox.db'}", gateway_port)
    gateway_server = await _serve(create_gateway(config), gateway_port)
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    print(f"Gateway: {gateway_url}  (metrics: {gateway_url}/metrics, outbox: {workdir})")
    print("Firing sample alerts:")
    await _fire(gateway_url)
    status = 0
    try:
        if once:
            status = await _wait_delivered(gateway_url)
        else:
            print("\nRunning. Post your own alerts, e.g.:")
            sample = json.dumps(alertmanager_firing())[:60]
            print(f"  curl -XPOST {gateway_url}/alertmanager -H 'Content-Type: application/json' "
                  f"-d '{sample}...'")  # fmt: skip
            print("Press Ctrl-C to stop.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    finally:
        gateway_server.should_exit = True
        if emulator_server is not None:
            state = getattr(emulator_server.config.app, "state", None)
            emulator = getattr(state, "emulator", None) if state else None
            if emulator is not None:
                emulator.close_streams()
            emulator_server.should_exit = True
        await asyncio.sleep(0.3)
    return status


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
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(args.once)))
    except KeyboardInterrupt:
        print("\nstopped")


if __name__ == "__main__":
    cli()
