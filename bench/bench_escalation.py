"""New alerts while thousands of alert groups escalate: does the budget go to what matters?

``wecom-bot gateway`` (SQLite, then Redis) delivers to ``wecom-bot emulator`` at 20 messages
per window. ``N`` one-alert notifications open ``N`` alert groups on a route that escalates
each group ``after`` seconds (mentioning a lead). Once the groups' own alerts have been
delivered and their escalations are due, ten new alerts are posted, one every fifth of a
window, and each is timed from the gateway's 200 to the emulator's acceptance. Also counted:
the escalation messages sent (folded ones say how many groups they carry), the most messages
in any one window, and any message the emulator refused (45009).

The window is scaled (``--window 6``: ten times WeCom's speed, so "a minute" reads "6 s"):
latencies are also given in windows. ``--before DIR`` runs the same against the ``src``
folder of another checkout (the release before the change), in the same run.

Run: ``.venv/bin/python -m bench.bench_escalation [--groups 2000,20000] [--before DIR]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.gateway.harness import group_alert

from bench._common import percentile, table
from bench.bench_ingest import free_port, gateway_process, redis_process
from bench.bench_sdk import emulator_process, new_key
from wecom_bot.masking import key_fingerprint

KEY_ENV = "WECOM_BENCH_ESCALATION_KEY"
NEW_ALERTS = 10
FOLDED = re.compile(r"(\d+) 组告警仍未认领")


@dataclass
class Result:
    """One run: a version of the gateway, a store, a number of groups."""

    version: str
    store: str
    groups: int
    window: float
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    escalation_messages: int = 0
    groups_escalated: int = 0
    busiest_window: int = 0
    rejected: int = 0
    post_seconds: float = 0.0

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99) if self.latencies else float("inf")


def _config(
    directory: Path, emulator: str, store: str, window: float, after: float, extra: str = ""
) -> Path:
    text = (
        "listen_host: 127.0.0.1\n"
        f"listen_port: {free_port()}\n"
        f"base_url: {emulator}\n"
        f"store: {store}\n"
        f"rate: 20/{window:g}s\n"
        f"coalesce_after: {window / 2:g}s\n"
        "external_url: http://127.0.0.1:1\n"
        "actions: {secret: a-benchmark-secret-long-enough}\n"
        f"bots:\n  ops:\n    key_env: {KEY_ENV}\n    msgtype: markdown\n"
        "routes:\n  - name: paging\n    matchers: ['severity=\"critical\"']\n    bots: [ops]\n"
        f"    escalate: [{{after: {after:g}s, mention: [lead]}}]\n"
        "default_route: {name: default, bots: [ops]}\n" + extra
    )
    path = directory / "gateway.yaml"
    path.write_text(text, "utf-8")
    return path


def _messages(emulator: str, key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        answer = httpx.get(
            f"{emulator}/api/groups/{key_fingerprint(key)}/messages",
            params={"since_id": since, "limit": 1000}, timeout=30,
        )  # fmt: skip
        if answer.status_code == 404:
            return out
        page = answer.json()
        out.extend(page["messages"])
        if not page["more"]:
            return out
        since = page["next_since_id"]


def _text(entry: dict[str, Any]) -> str:
    payload = entry["payload"]
    return str(payload.get(payload.get("msgtype"), {}).get("content", ""))


def _metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_one(
    version: str, src: Path | None, store: str, groups: int, window: float
) -> Result:
    """One gateway on ``store``, ``groups`` groups escalating, ten new alerts timed."""
    result = Result(version, store.split(":", 1)[0], groups, window)
    key = new_key()
    env = {KEY_ENV: key, **({"PYTHONPATH": str(src)} if src is not None else {})}
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        emulator = stack.enter_context(emulator_process(f"20/{window:g}s"))
        if store == "sqlite":
            store_url = f"sqlite:///{directory / 'outbox.db'}"
        else:
            store_url = store
        # Posting takes a while: the escalations are due once it and the storm are done.
        after = 20.0 + groups / 200
        # Every group escalates (the release before has no such bound, nor the setting).
        extra = f"max_open_groups: {max(groups, 10_000)}\n" if src is None else ""
        config = _config(directory, emulator.url, store_url, window, after, extra)
        port = int(re.search(r"listen_port: (\d+)", config.read_text()).group(1))  # type: ignore[union-attr]
        gateway = stack.enter_context(gateway_process(config, port, env))
        client = stack.enter_context(httpx.Client(base_url=gateway.url, timeout=30))
        opened = time.monotonic()

        def post(i: int) -> int:
            body = group_alert("DiskFull", f"host-{i}")
            return client.post("/alertmanager", json=body).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, range(groups)))
        result.post_seconds = time.monotonic() - opened
        assert all(s == 200 for s in statuses), {s for s in statuses if s != 200}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            depth = _metric(gateway.url, "wecom_bot_inbox_depth")
            depth += _metric(gateway.url, "wecom_bot_queue_depth")
            if depth == 0:
                break
            time.sleep(0.5)
        time.sleep(max(opened + after + 1 - time.monotonic(), 0))
        posted: dict[str, float] = {}
        for n in range(NEW_ALERTS):
            name = f"NewOutage{n}"
            assert client.post("/alertmanager", json=group_alert(name, "db-1")).status_code == 200
            posted[name] = time.time()
            time.sleep(window / 5)
        arrived: dict[str, float] = {}
        limit = time.monotonic() + 10 * window
        while len(arrived) < NEW_ALERTS and time.monotonic() < limit:
            for entry in _messages(emulator.url, key):
                for name in posted:
                    if name not in arrived and name in _text(entry):
                        arrived[name] = entry["received_at"]
            time.sleep(window / 10)
        result.latencies = [arrived[n] - posted[n] for n in arrived]
        result.lost = NEW_ALERTS - len(arrived)
        entries = _messages(emulator.url, key)
    accepted = [e for e in entries if e["status"] == "accepted"]
    result.rejected = len(entries) - len(accepted)
    for entry in accepted:
        text = _text(entry)
        if "Escalation" in text:
            result.escalation_messages += 1
            folded = FOLDED.search(text)
            result.groups_escalated += int(folded[1]) if folded else 1
    times = sorted(e["received_at"] for e in accepted)
    result.busiest_window = max(
        (sum(1 for t in times if start <= t < start + window) for start in times), default=0
    )
    return result


def run(
    groups: list[int], window: float, before: Path | None, stores: list[str]
) -> list[Result]:
    """Every combination; Redis only where ``redis-server`` is installed."""
    results: list[Result] = []
    versions: list[tuple[str, Path | None]] = [("now", None)]
    if before is not None:
        versions.insert(0, ("before", before / "src"))
    for count in groups:
        for version, src in versions:
            for store in stores:
                if store == "redis":
                    with redis_process() as url:
                        if url is None:
                            continue
                        results.append(run_one(version, src, url, count, window))
                else:
                    results.append(run_one(version, src, "sqlite", count, window))
    return results


def report(results: list[Result]) -> str:
    """The Markdown table of ``results``."""
    rows = [
        [
            r.version, r.store, f"{r.groups:,}", f"{r.post_seconds:.0f} s",
            f"{r.p99:.2f} s ({r.p99 / r.window:.2f} windows)"
            + (f", {r.lost} of {NEW_ALERTS} not there after 10 windows" if r.lost else ""),
            f"{r.escalation_messages} for {r.groups_escalated:,} groups",
            f"{r.busiest_window} / 20", str(r.rejected),
        ]
        for r in results
    ]  # fmt: skip
    return table(
        ["gateway", "store", "groups", "posting", "new alert p99 (10)",
         "escalation messages sent by the end", "busiest window", "45009"],
        rows,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", default="2000,20000", help="comma-separated group counts")
    parser.add_argument("--window", type=float, default=6.0, help="the rate window (s)")
    parser.add_argument("--before", type=Path, help="a checkout of the release before")
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    results = run(
        [int(g) for g in args.groups.split(",")], args.window, args.before,
        args.stores.split(","),
    )  # fmt: skip
    print(report(results))


if __name__ == "__main__":
    main()
