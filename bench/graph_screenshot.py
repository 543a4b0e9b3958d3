"""The picture of issue 28: an alert's text and then its chart on the emulator's page.

A real Prometheus scrapes itself every second for a while (``--warm`` seconds, so the chart
has a history); an Alertmanager-shaped notification whose ``generatorURL`` is that
Prometheus' graph link goes to ``wecom-bot gateway`` (graphs on), which sends the text and
then the chart to ``wecom-bot emulator``. The emulator's page for the group is drawn in
headless Chromium into ``docs/graph-alert.png`` (written only when the picture changed).

Run: ``.venv/bin/python -m bench.graph_screenshot [--warm 90]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.bench_graph_latency import prometheus
from bench.bench_ingest import free_port, gateway_process
from bench.bench_sdk import emulator_process, new_key
from bench.bench_storm import emulator_entries
from bench.storm_screenshots import draw

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXPR = "rate(prometheus_http_requests_total[15s]) > 0.5"


def notification(prom: str, port: int) -> dict[str, object]:
    """One firing alert of the rule ``EXPR`` on Prometheus' own ``/metrics`` handler."""
    labels = {
        "alertname": "HighRequestRate", "handler": "/metrics", "code": "200",
        "instance": f"127.0.0.1:{port}", "job": "prometheus", "severity": "warning",
    }  # fmt: skip
    started = (datetime.now(UTC) - timedelta(seconds=20)).isoformat()
    return {
        "version": "4", "status": "firing", "receiver": "wecom",
        "groupKey": '{}:{alertname="HighRequestRate"}',
        "groupLabels": {"alertname": labels["alertname"]},
        "commonLabels": labels, "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
        "commonAnnotations": {"summary": "Prometheus 的 /metrics 请求速率过高",
                              "description": "每秒请求数超过 0.5（15 秒窗口）"},
        "alerts": [{"status": "firing", "labels": labels,
                    "annotations": {"summary": "Prometheus 的 /metrics 请求速率过高",
                                    "description": "每秒请求数超过 0.5（15 秒窗口）"},
                    "startsAt": started, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "shot",
                    "generatorURL": f"{prom}/graph?g0.expr={quote(EXPR)}&g0.tab=1"}],
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Draw the picture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", type=float, default=90.0, help="seconds of history first")
    args = parser.parse_args(argv)
    key = new_key()
    with (
        prometheus() as prom,
        emulator_process(None) as emu,
        tempfile.TemporaryDirectory(prefix="wecom-shot-") as tmp,
    ):
        time.sleep(args.warm)
        port = free_port()
        config = Path(tmp) / "gateway.yaml"
        config.write_text(
            f"listen_host: 127.0.0.1\nlisten_port: {port}\nbase_url: {emu.url}\n"
            f"store: sqlite:///{tmp}/outbox.db\n"
            "bots:\n  ops:\n    key_env: WECOM_SHOT_KEY\n    msgtype: markdown\n"
            f"graphs:\n  prometheus: ['{prom}']\n  window: 90s\n",
            "utf-8",
        )
        with gateway_process(config, port, env={"WECOM_SHOT_KEY": key}) as gw:
            prom_port = int(prom.rsplit(":", 1)[1])
            httpx.post(f"{gw.url}/alertmanager", json=notification(prom, prom_port), timeout=30)
            deadline = time.monotonic() + 60
            while len(emulator_entries(emu.url, key)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
        kinds = [e["msgtype"] for e in emulator_entries(emu.url, key)]
        if kinds != ["markdown", "image"]:
            raise SystemExit(f"expected the text then the chart, got {kinds}")
        draw(emu.url, key, 2, DOCS / "graph-alert.png")
    print(f"{DOCS / 'graph-alert.png'}: {kinds}", flush=True)


if __name__ == "__main__":
    main()
