"""The pictures of issue 25: a pod storm and a URL storm on the emulator's page.

Each storm of :mod:`bench.storm_shapes` goes the benchmark's way (a real Alertmanager →
``wecom-bot gateway`` → ``wecom-bot emulator``, the window scaled to 6 s so it takes seconds),
posted at once so that Alertmanager sends it in one notification; 200 pods by default (1,000
take nine messages, a picture too tall to read). Once it is delivered, the emulator's page
for the group is opened in headless Chromium and drawn whole into ``docs/storm-pods.png`` and
``docs/storm-urls.png`` (written only when the picture changed, as the page tests do).

Run: ``.venv/bin/python -m bench.storm_screenshots [--pods 200] [--urls 500]``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import sync_playwright
from tests.emulator_page.conftest import CHROMIUM, CHROMIUM_ARGS, fit_viewport, open_page
from tests.images import keep_screenshot

from bench.bench_ingest import gateway_process
from bench.bench_sdk import emulator_process, new_key
from bench.bench_storm_kinds import (
    KEY_ENV,
    GatewayWatch,
    Labels,
    PhaseTimes,
    Truth,
    alertmanager,
    post_alerts,
    reader_now,
    wait_delivered,
    write_gateway_config,
)
from bench.storm_shapes import pod_storm, url_storm
from wecom_bot.masking import key_fingerprint

DOCS = Path(__file__).resolve().parents[1] / "docs"
WINDOW = 6.0


def deliver(labels: list[Labels], group_by: Sequence[str], key: str, emulator: str) -> int:
    """Fire ``labels`` through Alertmanager and the gateway into ``emulator`` (group ``key``);
    the number of messages accepted."""
    _, reader = reader_now()
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wecom-shot-")))
        config, port = write_gateway_config(directory, emulator, WINDOW)
        gw = stack.enter_context(gateway_process(config, port, {KEY_ENV: key}))
        am = stack.enter_context(alertmanager(directory, gw.url, group_by, WINDOW))
        watch = stack.enter_context(GatewayWatch(gw.url))
        times = PhaseTimes(time.time(), WINDOW)
        post_alerts(am, labels, resolve=False, seconds=0.0)  # one notification: one storm
        earliest = times.started + WINDOW * 35 / 60 + 2.0
        entries = wait_delivered(
            emulator, key, Truth(labels, "firing"), reader, watch, times, earliest
        )
    return sum(1 for e in entries if e["status"] == "accepted")


def draw(url: str, key: str, messages: int, path: Path) -> None:
    """Screenshot the emulator's page of ``key`` showing its ``messages`` into ``path``."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with open_page(browser, f"{url}/#{key_fingerprint(key)}") as watched:
                watched.entries(messages)
                fit_viewport(watched)
                keep_screenshot(path, watched.page.screenshot(full_page=True))
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Draw both pictures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=200, help="alerts in the pod storm")
    parser.add_argument("--urls", type=int, default=500, help="alerts in the URL storm")
    args = parser.parse_args(argv)
    storms = (
        ("storm-pods.png", pod_storm(args.pods, not_ready=args.pods // 40), ["alertname"]),
        ("storm-urls.png", url_storm(args.urls), ["alertname"]),
    )
    for name, labels, group_by in storms:
        key = new_key()
        with emulator_process(f"20/{WINDOW:g}s") as emu:
            messages = deliver(labels, group_by, key, emu.url)
            draw(emu.url, key, messages, DOCS / name)
        print(f"{DOCS / name}: {len(labels)} alerts in {messages} message(s)", flush=True)


if __name__ == "__main__":
    main()
