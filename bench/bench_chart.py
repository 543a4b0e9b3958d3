"""Alert chart rendering (issue 28): how long ``draw_chart`` takes and how big its PNG is.

Two requests: a *typical* alert (its own series and five others, one hour at a 15 s step: 240
points each, a threshold and the firing moment) and a *heavy* one (ten series of 10,000 noisy
points over a week, the most a range query is allowed to bring). Each is drawn a few times to
warm up, then timed call by call in this process (*warm*: matplotlib imported, fonts loaded).
The *cold* figure is a fresh interpreter timing its first chart, imports included, with
matplotlib's font cache already built (the gateway builds it once, on its first chart).

Run: ``python -m bench.bench_chart [--typical 60 --heavy 15 --cold 5]``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench._common import machine, median, percentile, table
from wecom_bot.gateway.graphs.chart import ChartRequest, Series, Threshold, draw_chart

TITLE = "Alert chart rendering (issue 28)"
SRC = Path(__file__).resolve().parents[1] / "src"
START = 1_796_600_000.0
GOAL_MS = 300.0
"""The issue's goal: a typical chart drawn within this, p95, warm."""
RUNS = {"typical": 60, "heavy": 15, "cold": 5}
WARM_UP = 3


def typical(seed: int = 1) -> ChartRequest:
    """An alert at rest: its own series crossing the threshold, five neighbours below."""
    rng = random.Random(seed)
    points = 240

    def series(base: float, slope: float) -> list[tuple[float, float]]:
        return [
            (
                START + i * 15,
                base + slope * i / points + 0.08 * math.sin(i / 30) + rng.gauss(0, 0.02),
            )
            for i in range(points)
        ]

    others = [
        Series({"__name__": "cpu", "instance": f"web-{k}:9100", "job": "node"}, series(0.5, 0.0))
        for k in range(5)
    ]
    own = Series(
        {"__name__": "cpu", "instance": "db-1:9100", "job": "node"}, series(0.6, 0.4), True
    )
    return ChartRequest(
        title="HighCPU 主机 CPU 使用率过高 · db-1:9100",
        subtitle='avg by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m])) > 0.9',
        series=[own, *others],
        start=START,
        end=START + 3600,
        timezone="Asia/Shanghai",
        threshold=Threshold(">", 0.9),
        firing_at=START + 2700,
    )


def heavy(seed: int = 2) -> ChartRequest:
    """Ten series of 10,000 uniformly noisy points over a week, one with a one-sample spike."""
    rng = random.Random(seed)
    count, span = 10_000, 7 * 86400.0
    series = []
    for k in range(10):
        points = [
            (
                START + i * span / count,
                1000 * k + rng.random() * 5000 + (80_000 if i == 6_000 else 0),
            )
            for i in range(count)
        ]
        series.append(Series({"pod": f"api-{k}", "code": "500"}, points, k == 0))
    return ChartRequest(
        title="ErrorBurst · api",
        subtitle='sum by (pod) (rate(http_requests_total{code=~"5.."}[1m])) > 1e5',
        series=series,
        start=START,
        end=START + span,
        timezone="Asia/Shanghai",
        threshold=Threshold(">", 1e5),
        firing_at=START + 3 * 86400,
    )


@dataclass
class Case:
    """The timings (ms) and PNG size of one request."""

    name: str
    times: list[float]
    png_bytes: int
    size: tuple[int, int] = (0, 0)

    @property
    def p50(self) -> float:
        return median(self.times)

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95)


def _warm(name: str, request: ChartRequest, runs: int) -> Case:
    for _ in range(WARM_UP):
        png = draw_chart(request)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        png = draw_chart(request)
        times.append((time.perf_counter() - start) * 1000)
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    return Case(name, times, len(png), (width, height))


COLD = """
import time
start = time.perf_counter()
from bench.bench_chart import typical
request = typical()
built = time.perf_counter()
from wecom_bot.gateway.graphs.chart import draw_chart
png = draw_chart(request)
print((time.perf_counter() - built) * 1000, len(png))
"""


def _cold(runs: int) -> Case:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(SRC.parent)]))
    times, size = [], 0
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD], env=env, capture_output=True, text=True, check=True,
            timeout=120,
        )  # fmt: skip
        ms, size_text = out.stdout.split()
        times.append(float(ms))
        size = int(size_text)
    return Case("typical, cold (first chart of a fresh process, imports included)", times, size)


def run(
    typical_runs: int = RUNS["typical"], heavy_runs: int = RUNS["heavy"],
    cold_runs: int = RUNS["cold"],
) -> list[Case]:  # fmt: skip
    """Both requests warm, then the cold first charts (the first case is the goal's)."""
    return [
        _warm("typical: 1 highlighted + 5 others × 240 points", typical(), typical_runs),
        _warm("heavy: 10 series × 10,000 noisy points", heavy(), heavy_runs),
        _cold(cold_runs),
    ]


def goals(cases: list[Case]) -> list[tuple[str, str, bool]]:
    """The issue's goal (typical chart, warm p95) and the 2 MB image limit for every case."""
    first = cases[0]
    biggest = max(cases, key=lambda c: c.png_bytes)
    return [
        (
            f"alert chart drawn <= {GOAL_MS:.0f} ms p95 warm (typical alert)",
            f"{first.p95:.0f} ms (p50 {first.p50:.0f} ms)",
            first.p95 <= GOAL_MS,
        ),
        (
            "alert chart PNG <= 2 MB (typical and 10 series × 10,000 noisy points)",
            f"{biggest.png_bytes / 1024:.0f} KiB (largest)",
            biggest.png_bytes <= 2 * 1024 * 1024,
        ),
    ]


def report(cases: list[Case], command: str, load: tuple[float, float] | None = None) -> str:
    """The Markdown section (``load``: the 1-minute load average before and after the run)."""
    rows = [
        [
            c.name,
            str(len(c.times)),
            f"{c.p50:.0f}",
            f"{c.p95:.0f}",
            f"{max(c.times):.0f}",
            f"{c.png_bytes / 1024:.0f} KiB" + (f" ({c.size[0]}×{c.size[1]})" if c.size[0] else ""),
        ]
        for c in cases
    ]
    return (
        f"`{command}`: `draw_chart` timed call by call in one process after {WARM_UP} "
        "warm-up draws (matplotlib imported, fonts loaded), and the first chart of a fresh "
        "interpreter (imports of matplotlib and numpy included, matplotlib's font cache "
        "already built). The typical alert is its own series and five others, one hour at a "
        "15 s step (240 points each), with a threshold and the firing moment; the heavy one "
        "ten series of 10,000 noisy points over a week, cut to two points per pixel column "
        f"before drawing. Machine: {machine()}"
        + (f"; load average {load[0]:.2f} before, {load[1]:.2f} after" if load else "")
        + ".\n\n"
        + table(["chart", "runs", "p50 ms", "p95 ms", "max ms", "PNG"], rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name, default in RUNS.items():
        parser.add_argument(
            f"--{name}", type=int, default=default, help=f"runs (default {default})"
        )
    args = parser.parse_args()
    before = os.getloadavg()[0]
    cases = run(args.typical, args.heavy, args.cold)
    print(report(cases, "python -m bench.bench_chart", (before, os.getloadavg()[0])))
    for name, measured, ok in goals(cases):
        print(f"- {name}: {measured} ({'met' if ok else 'not met'})")


if __name__ == "__main__":
    main()
