"""Storms as a reader sees them: a real Alertmanager → the gateway → the emulator.

1,000 alerts ``HighLatency`` on ``instance=host-0..999`` (severities mixed) are posted to a
real Alertmanager 0.25 within 10 s; Alertmanager notifies ``wecom-bot gateway`` (built-in
``default`` template, defaults everywhere), which delivers to ``wecom-bot emulator`` at
WeCom's 20 messages per window. Then all 1,000 are resolved the same way. Cases:

* ``group_by: [alertname]``: one notification of 1,000 alerts (and its updates);
* ``group_by: ['...']``: 1,000 notifications of one alert each;
* a mix: 5 alertnames × 200 instances, 3 severities, ``group_by: [alertname, severity]``;
* ``group_by: ['...']`` with the gateway SIGKILLed 3 s into the storm and restarted.

An alert counts as **visible** when a reader can identify it in the messages the emulator
accepted: its alertname, then its instance in the text below it, written out or inside a
compressed range (``host-[0-999]`` is expanded, as a reader would read it). Times run from
the first alert posted to Alertmanager (earlier than it reaches the gateway: a stricter
clock than the goal's). The window is WeCom's real 60 s unless ``--window`` scales it.

Also measured: how long an alert at rest takes from the gateway's 200 to the emulator, and
what building a summary of 10,000 alerts costs.

Run: ``.venv/bin/python -m bench.bench_storm_am`` (``--window 6`` for a scaled run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._common import machine, table, today
from bench.bench_ingest import free_port, gateway_process
from bench.bench_sdk import ServerProcess, emulator_process, new_key, server_process
from bench.bench_storm import emulator_entries
from wecom_bot.limits import ERRCODE_RATE_LIMITED
from wecom_bot.storm import expand

# Debian's name, upstream's name, or where WECOM_TEST_ALERTMANAGER points (scripts/provision).
ALERTMANAGER = (
    os.environ.get("WECOM_TEST_ALERTMANAGER")
    or shutil.which("prometheus-alertmanager")
    or shutil.which("alertmanager")
)
KEY_ENV = "WECOM_STORM_KEY"
SEVERITIES = ("critical", "warning", "info")
_HOST = re.compile(r"host-(\d+)(?!\d)")


@dataclass(frozen=True)
class Case:
    """One storm: how Alertmanager groups it and which alerts it has."""

    name: str
    group_by: Sequence[str]
    alertnames: int = 1
    kill_at: float | None = None

    def alerts(self, count: int) -> list[dict[str, str]]:
        """The label sets of the storm."""
        per_name = count // self.alertnames
        return [
            {
                "alertname": "HighLatency" if self.alertnames == 1 else f"Svc{i // per_name}Down",
                "instance": f"host-{i % per_name if self.alertnames > 1 else i}",
                "severity": SEVERITIES[i % 3],
                "job": "api",
            }
            for i in range(per_name * self.alertnames)
        ]


CASES = (
    Case("group_by: [alertname]", ["alertname"]),
    Case("group_by: ['...']", ["..."]),
    Case("mix: 5 alertnames × 200, 3 severities", ["alertname", "severity"], alertnames=5),
    Case("group_by: ['...'], gateway SIGKILLed at 3 s", ["..."], kill_at=3.0),
)


@dataclass
class Phase:
    """What the group saw of one phase (the storm firing, or its resolve)."""

    case: str
    phase: str
    alerts: int
    visible: int = 0
    visible_in_60s: int = 0
    last_visible_s: float | None = None
    messages: int = 0
    rejected_45009: int = 0
    duplicated: int = 0  # messages whose content an earlier message of the phase had
    max_in_window: int = 0
    window: float = 60.0

    @property
    def visible_pct(self) -> float:
        """Share of the alerts visible, in percent."""
        return 100.0 * self.visible / max(self.alerts, 1)

    @property
    def in_time_pct(self) -> float:
        """Share of the alerts visible within one window of the first alert, in percent."""
        return 100.0 * self.visible_in_60s / max(self.alerts, 1)


@dataclass
class Setup:
    """The processes of one run."""

    emulator: str
    alertmanager: str
    gateway: ServerProcess
    key: str
    config: Path
    env: dict[str, str] = field(default_factory=dict)


# -- reading the group ------------------------------------------------------------------------


def identities(content: str, alertnames: Sequence[str]) -> list[tuple[str, str]]:
    """The (alertname, instance) pairs a reader finds in ``content``: an instance belongs to
    the alertname written last above it."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in content.splitlines():
        named = [n for n in alertnames if n in line]
        if named:
            current = max(named, key=line.rindex)
        for word in expand(line):
            for match in _HOST.finditer(word):
                found.append((current, f"host-{match.group(1)}"))
    return found


def score(
    case: str,
    phase: str,
    expected: set[tuple[str, str]],
    entries: list[dict[str, Any]],
    started: float,
    window: float,
) -> Phase:
    """Score the emulator's entries received since ``started`` against ``expected``."""
    names = sorted({n for n, _ in expected}, key=len, reverse=True)
    result = Phase(case, phase, len(expected), window=window)
    seen: dict[tuple[str, str], float] = {}
    contents: set[str] = set()
    accepted_at: list[float] = []
    for entry in entries:
        if entry["received_at"] < started:
            continue
        if entry["errcode"] == ERRCODE_RATE_LIMITED:
            result.rejected_45009 += 1
        if entry["status"] != "accepted":
            continue
        accepted_at.append(entry["received_at"])
        content = str(entry["payload"].get(entry["msgtype"], {}).get("content", ""))
        result.duplicated += content in contents
        contents.add(content)
        for pair in set(identities(content, names)) & expected:
            seen.setdefault(pair, entry["received_at"])
    result.messages = len(accepted_at)
    result.visible = len(seen)
    result.visible_in_60s = sum(1 for t in seen.values() if t - started <= window)
    result.last_visible_s = max(seen.values()) - started if seen else None
    result.max_in_window = max_in_window(accepted_at, window)
    return result


def max_in_window(times: list[float], window: float) -> int:
    """The most accepted messages within any ``window`` seconds."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- the processes ----------------------------------------------------------------------------


def write_gateway_config(directory: Path, emulator: str, window: float) -> Path:
    """The gateway's config: one bot on the default route, defaults everywhere else."""
    text = (
        "listen_host: 127.0.0.1\n"
        f"listen_port: {free_port()}\n"
        f"base_url: {emulator}\n"
        f"store: sqlite:///{directory / 'outbox.db'}\n"
        f"rate: 20/{window:g}s\n"
        f"coalesce_after: {window / 2:g}s\n"
        f"bots:\n  ops:\n    key_env: {KEY_ENV}\n"
    )
    path = directory / "gateway.yaml"
    path.write_text(text, "utf-8")
    return path


def gateway(config: Path, env: dict[str, str]) -> contextlib.AbstractContextManager[ServerProcess]:
    """``wecom-bot gateway`` on ``config`` until it answers ``/readyz``."""
    port = int(re.search(r"listen_port: (\d+)", config.read_text("utf-8")).group(1))  # type: ignore[union-attr]
    return gateway_process(config, port, env)


@contextlib.contextmanager
def alertmanager(
    directory: Path,
    webhook: str,
    group_by: Sequence[str],
    window: float = 60.0,
    *,
    group_wait: float = 1.0,
    group_interval: float = 5.0,
) -> Iterator[str]:
    """A real Alertmanager posting to ``webhook``, grouped by ``group_by``; its waits
    (``group_wait``, ``group_interval``: seconds in a 60 s window) scaled with ``window``."""
    if ALERTMANAGER is None:
        raise RuntimeError("prometheus-alertmanager is not installed")
    port = free_port()
    config = directory / "am.yml"
    config.write_text(
        "route:\n"
        "  receiver: wecom\n"
        f"  group_by: {json.dumps(list(group_by))}\n"
        f"  group_wait: {round(window * group_wait * 1000 / 60)}ms\n"
        f"  group_interval: {round(window * group_interval * 1000 / 60)}ms\n"
        "  repeat_interval: 4h\n"
        "receivers:\n"
        "  - name: wecom\n"
        "    webhook_configs:\n"
        f"      - url: '{webhook}/alertmanager'\n"
        "        send_resolved: true\n",
        "utf-8",
    )
    url = f"http://127.0.0.1:{port}"

    def ready(server: ServerProcess) -> bool:
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    args = [
        ALERTMANAGER, f"--config.file={config}", f"--storage.path={directory / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
    ]  # fmt: skip
    with server_process(args, ready=ready, timeout=30):
        yield url


def post_alerts(
    am: str, labels: list[dict[str, str]], *, resolve: bool, seconds: float = 9.0
) -> None:
    """Post the alerts to Alertmanager's API v2 in ten batches over ``seconds``."""
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolve else now + timedelta(hours=1)
    batches = 10
    size = -(-len(labels) // batches)
    with httpx.Client(base_url=am, timeout=10) as client:
        for b in range(batches):
            chunk = labels[b * size : (b + 1) * size]
            body = [
                {
                    "labels": item,
                    "annotations": {"summary": "p99 latency above 2 s"},
                    "startsAt": (now - timedelta(minutes=5)).isoformat(),
                    "endsAt": ends.isoformat(),
                }
                for item in chunk
            ]
            client.post("/api/v2/alerts", json=body).raise_for_status()
            if b < batches - 1:
                time.sleep(seconds / (batches - 1))


def wait_visible(
    emulator: str, key: str, expected: set[tuple[str, str]], started: float, limit: float
) -> list[dict[str, Any]]:
    """Poll the emulator until every expected alert is visible or ``limit`` seconds pass."""
    names = sorted({n for n, _ in expected}, key=len, reverse=True)
    deadline = started + limit
    while True:
        entries = emulator_entries(emulator, key)
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            if entry["received_at"] >= started and entry["status"] == "accepted":
                content = str(entry["payload"].get(entry["msgtype"], {}).get("content", ""))
                seen.update(identities(content, names))
        if expected <= seen or time.time() > deadline:
            return entries
        time.sleep(0.5)


class GatewayRun:
    """A gateway process that can be SIGKILLed and started again on the same config."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self._context: Any = None
        self.server: ServerProcess | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        assert self.server is not None
        return self.server.url

    def start(self) -> None:
        """Start it and wait until it is ready."""
        self._context = gateway(self.config, self.env)
        self.server = self._context.__enter__()

    def kill(self) -> None:
        """SIGKILL it (nothing is flushed or handed over)."""
        assert self.server is not None
        self.server.proc.kill()
        self.server.proc.wait(10)
        self.stop()

    def stop(self) -> None:
        """Stop it (SIGTERM) if it still runs."""
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None


def run_case(case: Case, *, count: int = 1000, window: float = 60.0) -> list[Phase]:
    """Fire and resolve one storm; what the group saw of each phase."""
    import threading

    labels = case.alerts(count)
    expected = {(x["alertname"], x["instance"]) for x in labels}
    key = new_key()
    with tempfile.TemporaryDirectory(prefix="wecom-storm-am-") as tmp:
        directory = Path(tmp)
        with emulator_process(f"20/{window:g}s") as emu:
            gw = GatewayRun(write_gateway_config(directory, emu.url, window), {KEY_ENV: key})
            gw.start()
            try:
                with alertmanager(directory, gw.url, case.group_by, window) as am:
                    phases: list[Phase] = []
                    for phase in ("firing", "resolved"):
                        started = time.time()
                        poster = threading.Thread(
                            target=post_alerts,
                            args=(am, labels),
                            kwargs={"resolve": phase == "resolved", "seconds": window * 0.15},
                        )
                        poster.start()
                        if phase == "firing" and case.kill_at is not None:
                            time.sleep(case.kill_at * window / 60)
                            gw.kill()
                            gw.start()
                        poster.join()
                        entries = wait_visible(emu.url, key, expected, started, 2.5 * window)
                        phases.append(score(case.name, phase, expected, entries, started, window))
                        time.sleep(2.0)  # let stragglers land in this phase, not the next
                    return phases
            finally:
                gw.stop()


# -- at rest and the summary's cost -------------------------------------------------------------


def at_rest_latency(samples: int = 24, spacing: float = 2.5, bots: int = 3) -> list[float]:
    """Milliseconds from the gateway's 200 to the emulator receiving the message, for alerts
    arriving at rest (each bot gets one every ``bots × spacing`` seconds)."""
    keys = {f"{KEY_ENV}_{b}": new_key() for b in range(bots)}
    latencies: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="wecom-rest-") as tmp,
        emulator_process("20/60s") as emu,
    ):
        directory = Path(tmp)
        bot_lines = "".join(f"  b{b}:\n    key_env: {KEY_ENV}_{b}\n" for b in range(bots))
        routes = "".join(
            f"  - name: r{b}\n    matchers: ['team=\"t{b}\"']\n    bots: [b{b}]\n"
            for b in range(bots)
        )
        config = directory / "gateway.yaml"
        config.write_text(
            f"listen_host: 127.0.0.1\nlisten_port: {free_port()}\nbase_url: {emu.url}\n"
            f"store: sqlite:///{directory / 'outbox.db'}\nbots:\n{bot_lines}routes:\n{routes}"
            "default_route:\n  name: default\n  bots: [b0]\n",
            "utf-8",
        )
        with gateway(config, keys) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
            for i in range(samples):
                bot = i % bots
                body = _one_alert(f"Rest{i}", team=f"t{bot}")
                answer = client.post("/alertmanager", json=body)
                answered = time.time()
                answer.raise_for_status()
                key = keys[f"{KEY_ENV}_{bot}"]
                deadline = answered + 10
                while time.time() < deadline:
                    got = [
                        e for e in emulator_entries(emu.url, key)
                        if e["status"] == "accepted" and f"Rest{i}" in json.dumps(e["payload"])
                    ]  # fmt: skip
                    if got:
                        latencies.append((got[0]["received_at"] - answered) * 1000)
                        break
                    time.sleep(0.005)
                time.sleep(max(spacing - (time.time() - answered), 0))
    return latencies


def _one_alert(name: str, *, team: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    labels = {"alertname": name, "team": team, "instance": "host-1"}
    return {
        "version": "4", "status": "firing", "receiver": "wecom", "groupKey": f"{{}}:{name}",
        "groupLabels": {"alertname": name}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://am", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": labels, "annotations": {}, "startsAt": now,
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": name}],
    }  # fmt: skip


def summary_cost_ms(count: int = 10_000, repeat: int = 5) -> dict[str, float]:
    """Best time to write ``count`` alerts as a summary (the built-in template, markdown, 19
    messages allowed): hosts in runs per alertname, and hosts scattered over the alertnames so
    that no run forms (the worst case: every number is listed)."""
    from wecom_bot.gateway.templates.renderer import Renderer
    from wecom_bot.storm import AlertBrief

    shapes = {
        "hosts in runs": lambda i: f"Svc{i * 5 // count}",
        "hosts scattered": lambda i: f"Svc{i % 5}",
    }
    renderer = Renderer()
    out: dict[str, float] = {}
    for label, alertname in shapes.items():
        briefs = [
            AlertBrief(
                {"alertname": alertname(i), "instance": f"host-{i}", "severity": SEVERITIES[i % 3]},
                "firing", 1.7e9, "p99 latency above 2 s",
            )  # fmt: skip
            for i in range(count)
        ]
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            report = renderer.render_summary(briefs, msgtype="markdown", max_messages=19)
            best = min(best, time.perf_counter() - start)
        out[f"{label} ({len(report.parts)} messages)"] = best * 1000
    return out


# -- report -----------------------------------------------------------------------------------


def report(phases: list[Phase], latencies: list[float], summary_ms: dict[str, float]) -> str:
    """The Markdown section for ``docs/benchmarks.md``."""
    rows = [
        [
            p.case, p.phase, f"{p.visible}/{p.alerts} ({p.visible_pct:.1f} %)",
            f"{p.in_time_pct:.1f} %",
            "—" if p.last_visible_s is None else f"{p.last_visible_s:.1f}",
            str(p.messages), str(p.rejected_45009), str(p.max_in_window), str(p.duplicated),
        ]
        for p in phases
    ]  # fmt: skip
    p99 = _percentile(latencies, 99)
    window = phases[0].window if phases else 60.0
    return (
        f"Real Alertmanager 0.25 → `wecom-bot gateway` (defaults, SQLite) → `wecom-bot emulator` "
        f"at 20 messages per {window:g} s. Machine: {machine()}; {today()}.\n\n"
        + table(
            ["case", "phase", "alerts visible", f"visible within {window:g} s",
             "last visible after s", "messages", "45009", f"most in any {window:g} s",
             "messages delivered twice"],
            rows,
        )  # fmt: skip
        + f"\nAt rest: {len(latencies)} alerts, gateway's 200 → emulator: median "
        f"{statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms.\n"
        "\nSummary of 10,000 alerts (group, compress, render, split; best of 5): "
        + "; ".join(f"{k}: {v:.1f} ms" for k, v in summary_ms.items())
        + ".\n"
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(
    *, count: int = 1000, window: float = 60.0
) -> tuple[list[Phase], list[float], dict[str, float]]:
    """Every case, then the at-rest latencies and the summary's cost."""
    phases: list[Phase] = []
    for number, case in enumerate(CASES, 1):
        print(f"storm {number}/{len(CASES)}: {case.name} …", flush=True)
        phases += run_case(case, count=count, window=window)
    return phases, at_rest_latency(), summary_cost_ms()


def goals(
    phases: list[Phase], latencies: list[float], summary_ms: dict[str, float]
) -> list[tuple[str, str, bool]]:
    """Issue 17's goals: (goal, what was measured, met)."""
    window = phases[0].window
    p99 = _percentile(latencies, 99)
    restart = [p for p in phases if "SIGKILL" in p.case]

    def each(fmt: str, value: Any) -> str:
        return " / ".join(fmt.format(value(p)) for p in phases)

    out = [
        (
            f"storm (real Alertmanager): 100 % of alerts identifiable within {window:g} s, "
            "firing and resolve, each case",
            each("{:.0f} %", lambda p: p.in_time_pct),
            all(p.visible_in_60s == p.alerts for p in phases),
        ),
        (
            "storm: <= 10 messages for the firing storm and for the resolve",
            each("{}", lambda p: p.messages),
            all(p.messages <= 10 for p in phases),
        ),
        ("storm: zero 45009", each("{}", lambda p: p.rejected_45009),
         all(p.rejected_45009 == 0 for p in phases)),
        (f"storm: never more than 20 accepted in any {window:g} s",
         each("{}", lambda p: p.max_in_window), all(p.max_in_window <= 20 for p in phases)),
        (
            "storm with the gateway SIGKILLed and restarted: 0 lost, 0 duplicated",
            " / ".join(f"{p.alerts - p.visible} lost, {p.duplicated} duplicated" for p in restart),
            all(p.visible == p.alerts and p.duplicated == 0 for p in restart),
        ),
        ("an alert at rest reaches the emulator within 100 ms (p99) of the gateway's 200",
         f"p99 {p99:.1f} ms ({len(latencies)} alerts)", p99 < 100),
        ("a summary of 10,000 alerts costs < 100 ms",
         " / ".join(f"{v:.1f} ms" for v in summary_ms.values()),
         max(summary_ms.values()) < 100),
    ]  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Run every case and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds of WeCom's window")
    parser.add_argument("--count", type=int, default=1000, help="alerts in a storm")
    parser.add_argument("--only", default="", help="case numbers to run, e.g. 1,2")
    args = parser.parse_args(argv)
    chosen = [int(x) for x in args.only.split(",") if x] or list(range(1, len(CASES) + 1))
    phases: list[Phase] = []
    for number in chosen:
        case = CASES[number - 1]
        print(f"storm {number}/{len(CASES)}: {case.name} …", flush=True)
        for phase in run_case(case, count=args.count, window=args.window):
            print(f"  {phase}", flush=True)
            phases.append(phase)
    print("at rest …", flush=True)
    latencies = at_rest_latency()
    print(report(phases, latencies, summary_cost_ms()))


if __name__ == "__main__":
    main()
