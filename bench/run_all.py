"""Run every benchmark, print the Markdown and write ``docs/benchmarks.md``.

Run: ``make bench`` or ``.venv/bin/python -m bench.run_all`` (``--only sdk,storm`` runs a
subset and leaves the document alone unless ``--write`` is given, which replaces those
sections and their goals in the document and keeps the others; ``--quick`` shrinks sizes for
a smoke run, whose figures are not written either).

Every benchmark stops by itself within a few minutes: counts and time budgets are in each
module. Goals are those of issues 2, 4, 5, 9, 27 and 28; each is reported met or not met.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import (
    bench_chart,
    bench_escalation,
    bench_graph_latency,
    bench_ingest,
    bench_outbox,
    bench_sdk,
    bench_startup,
    bench_storm,
    bench_storm_am,
    bench_storm_kinds,
)
from bench._common import machine, per_call_us, table, today

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
ALL = (
    "messages",
    "sdk",
    "storm",
    "storm_am",
    "storm_kinds",
    "escalation",
    "outbox",
    "ingest",
    "startup",
    "chart",
    "graph_latency",
)
COMMAND = "make bench  (= .venv/bin/python -m bench.run_all)"


@dataclass
class Section:
    """One benchmark's Markdown and its goals."""

    title: str
    body: str
    goals: list[tuple[str, str, bool]] = field(default_factory=list)
    seconds: float = 0.0


def messages_section(quick: bool) -> Section:
    """Per-message build + validate + serialize cost (bench_messages' cases)."""
    from bench.bench_messages import cases

    repeat = 3 if quick else 7
    timings = {name: per_call_us(fn, repeat=repeat) for name, fn in cases().items()}
    rows = [[name, f"{us:.1f}"] for name, us in timings.items()]
    text = timings["text"]
    cards = {k: v for k, v in timings.items() if k.startswith("template_card")}
    worst_card = max(cards.values())
    goals = [
        ("text message build+validate+serialize <= 20 µs", f"{text:.1f} µs", text <= 20),
        (
            "template card build+validate+serialize <= 100 µs",
            f"{worst_card:.1f} µs (slowest card)",
            worst_card <= 100,
        ),
    ]
    body = (
        "`python -m bench.bench_messages`: each case builds the model (validation "
        "included) and serializes it to the JSON the API gets; best of "
        f"{repeat} runs of at least 0.2 s.\n\n" + table(["message type", "µs per message"], rows)
    )
    return Section("Per-message CPU cost (issue 2)", body, goals)


def sdk_section(quick: bool) -> Section:
    """SDK throughput against the emulator, apprise in the same run, 45009 reporting."""
    if quick:
        result = bench_sdk.run(count=300, budget=2, concurrency=(10,), shipped_apprise=0)
    else:
        result = bench_sdk.run()
    sync = result.by_client("wecom_bot.Bot (sync")
    apprise = result.by_client("apprise wecombot:// (throttle off)")
    best_async = max(
        (t for t in result.throughput if t.client.startswith("wecom_bot.AsyncBot")),
        key=lambda t: t.per_second,
    )
    body = bench_sdk.report(result)
    summary = (
        f"\n\nRatios in this run: `Bot` sync = {sync.per_second / apprise.per_second:.2f}× "
        f"apprise (throttle off); best `AsyncBot` ({best_async.client.split('(')[1][:-1]}) = "
        f"{best_async.per_second / apprise.per_second:.2f}× apprise."
    )
    lied = [r for r in result.limit_reports if r.reported_ok > r.accepted]
    goals = [
        (
            "SDK reports every 45009 as a failure (apprise does not)",
            "; ".join(
                f"{r.client.split(' (')[0]}: reported {r.reported_ok} sent, {r.accepted} accepted"
                for r in result.limit_reports
            ),
            all(not r.client.startswith("wecom_bot") for r in lied),
        )
    ]
    return Section("SDK throughput vs apprise (issue 9)", body + summary, goals)


def storm_section(quick: bool) -> Section:
    """1,000 alerts to one key: dispatcher vs naive vs rate-limited Bot."""
    results = bench_storm.run(
        alerts=200 if quick else bench_storm.ALERTS,
        repeats=1 if quick else 3,
        limited_bot=not quick,
    )
    dispatcher_runs = [r for r in results if r.method.startswith("outbox")]
    goals = []
    names = list(bench_storm.goals(dispatcher_runs[0]))
    for name in names:
        met = [bench_storm.goals(r)[name] for r in dispatcher_runs]
        measured: Callable[[bench_storm.StormResult], str] = {
            "100 % delivered": lambda r: f"{r.delivered_pct:.1f} %",
            "zero 45009": lambda r: str(r.rejected_45009),
            "every alert visible within 2 windows": lambda r: f"{r.last_visible_windows:.2f}",
            "<= 40 messages": lambda r: str(r.messages),
        }[name]
        goals.append(
            (
                f"storm: {name}",
                " / ".join(measured(r) for r in dispatcher_runs)
                + f" ({len(dispatcher_runs)} run(s))",
                all(met),
            )
        )
    return Section("Storm delivery (issue 4)", bench_storm.report(results), goals)


def storm_am_section(quick: bool) -> Section:
    """Issue 17: storms through a real Alertmanager, scored by what a reader can identify."""
    count, window = (300, 6.0) if quick else (1000, 60.0)
    phases, latencies, summary_ms = bench_storm_am.run(count=count, window=window)
    return Section(
        "Storms a reader can follow (issue 17)",
        bench_storm_am.report(phases, latencies, summary_ms),
        bench_storm_am.goals(phases, latencies, summary_ms),
    )


def storm_kinds_section(quick: bool) -> Section:
    """Issue 25: pod, URL and host storms through a real Alertmanager, read message by message
    (and the release before, when ``WECOM_BENCH_BEFORE`` names its checkout)."""
    window = 6.0 if quick else float(os.environ.get("WECOM_BENCH_WINDOW", "60"))
    before = os.environ.get("WECOM_BENCH_BEFORE")
    before_dir = Path(before) if before and not quick else None
    phases = bench_storm_kinds.run(window=window, before=before_dir)
    command = f"python -m bench.bench_storm_kinds --window {window:g}"
    readers = (
        "`wecom_bot.storm.read_message` (this release's summaries; alerts written one by one, "
        "which it does not read, with `bench_storm_kinds.read_per_alert`)"
    )
    note = ""
    if before_dir is not None:
        command += f" --before {before_dir}"
        found = subprocess.run(
            ["git", "-C", str(before_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True,
        )  # fmt: skip
        revision = f" (commit {found.stdout.strip()})" if found.returncode == 0 else ""
        readers += " and, for `before`, `bench_storm_kinds.read_before`"
        readers += " (the same rules on the old summary and per-alert formats)"
        note = (
            f" `before` is the release before issue 25{revision}, run in the same session; it "
            "has no `read_message`. `read_before` counts a severity only where it is written "
            "for the alert (a badge, a shared label, an identity), not in a group's counts "
            "(`· critical 40`), and reads the parts of a split summary that carry no heading "
            "only in the conversation (*identifiable*), never alone."
        )
    return Section(
        bench_storm_kinds.TITLE,
        bench_storm_kinds.report(phases, command, readers, note),
        bench_storm_kinds.goals(phases),
    )


def escalation_section(quick: bool) -> Section:
    """Issue 24: new alerts while thousands of groups escalate (and the release before)."""
    groups = [300] if quick else [2000, 20000]
    before = os.environ.get("WECOM_BENCH_BEFORE")
    results = bench_escalation.run(
        groups, 6.0, Path(before) if before and not quick else None, ["sqlite", "redis"]
    )
    now = [r for r in results if r.version == "now"]
    worst = max(now, key=lambda r: r.p99)
    goals = [
        (
            "a new alert within one window (p99) while thousands of groups escalate",
            f"{worst.p99 / worst.window:.2f} windows (worst: {worst.store}, "
            f"{worst.groups:,} groups)",
            all(r.p99 <= r.window and not r.lost for r in now),
        ),
        (
            "escalations folded: at most 20 sends in any window, no 45009",
            ", ".join(f"{r.busiest_window}" for r in now) + " sends; "
            + f"{sum(r.rejected for r in now)} × 45009",
            all(r.busiest_window <= 20 and not r.rejected for r in now),
        ),
    ]
    revision = ""
    if before and not quick:
        found = subprocess.run(
            ["git", "-C", before, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        revision = f" (commit {found.stdout.strip()})" if found.returncode == 0 else ""
    body = (
        "`python -m bench.bench_escalation --window 6"
        + (f" --before {before}`{revision}" if before and not quick else "`")
        + ": the gateway and the emulator each in their own process, at 20 messages per "
        "6 s (ten times WeCom's speed, so one window reads one minute); N one-alert groups "
        "escalate at once, ten new alerts are timed from the gateway's 200 to the emulator. "
        "`before` is the release before issue 24 (escalations claimed oldest first, one "
        "message per group), run in the same session. Escalations are counted as the group "
        "received them by the end of the run (at 20,000 groups the escalator was still firing "
        "timers when it ended).\n\n" + bench_escalation.report(results)
    )
    return Section("Alerts first while groups escalate (issue 24)", body, goals)


def outbox_section(quick: bool) -> Section:
    """Latency of one durable outbox write, per backend."""
    calls = 300 if quick else bench_outbox.CALLS
    results = bench_outbox.run(calls)
    return Section("Outbox write latency", bench_outbox.report(results, calls))


def ingest_section(quick: bool) -> Section:
    """Gateway ingest on SQLite (and Redis), latency, memory."""
    if quick:
        settings = bench_ingest.IngestSettings(
            count=2000, budget=4, rate_seconds=3, fill=5000, fill_budget=20
        )
    else:
        settings = bench_ingest.IngestSettings()
    results = bench_ingest.run(settings)
    goals = []
    for r in results:
        met = bench_ingest.goals(r, settings)
        full, fixed = r.phase("full speed"), r.phase("fixed")
        measured = {
            next(iter(met)): f"{full.per_second:,.0f}/s",
            list(met)[1]: f"p99 {fixed.p(0.99):,.1f} ms ({fixed.ok}/{fixed.sent} answered 200)",
        }
        if len(met) > 2:
            measured[list(met)[2]] = f"{r.rss_mb:.0f} MB ({r.messages_queued:,} accepted)"
        goals += [(f"ingest, {r.store}: {k}", measured[k], v) for k, v in met.items()]
    return Section("Gateway ingest (issues 5 and 9)", bench_ingest.report(results, settings), goals)


def startup_section(quick: bool) -> Section:
    """Issue 27: how long ``import wecom_bot`` and a dry-run send take beside pydantic."""
    runs = 5 if quick else bench_startup.RUNS
    before = os.environ.get("WECOM_BENCH_BEFORE")
    before_dir = Path(before) if before and not quick else None
    timings = bench_startup.run(runs, before_dir)
    note = ""
    if before_dir is not None:
        found = subprocess.run(
            ["git", "-C", str(before_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True,
        )  # fmt: skip
        revision = f" (commit {found.stdout.strip()})" if found.returncode == 0 else ""
        note = (
            f" Rows marked *before* run the checkout {before_dir}{revision}, the release "
            "before issue 27, in the same rounds."
        )
    return Section(
        bench_startup.TITLE,
        bench_startup.report(timings, runs, note),
        bench_startup.goals(timings),
    )


def chart_section(quick: bool) -> Section:
    """Issue 28: the alert chart drawn warm (typical and heavy) and cold, with its PNG size."""
    runs = {"typical_runs": 10, "heavy_runs": 3, "cold_runs": 2} if quick else {}
    before = os.getloadavg()[0]
    cases = bench_chart.run(**runs)
    load = (before, os.getloadavg()[0])
    command = "python -m bench.bench_chart" + (" (quick sizes)" if quick else "")
    body = bench_chart.report(cases, command, load)
    return Section(bench_chart.TITLE, body, bench_chart.goals(cases))


def graph_latency_section(quick: bool) -> Section:
    """Issue 28: the alert's text latency at rest with graphs on and off."""
    alerts = 5 if quick else bench_graph_latency.ALERTS
    before = os.getloadavg()[0]
    modes = bench_graph_latency.run(alerts)
    load = (before, os.getloadavg()[0])
    command = f"python -m bench.bench_graph_latency --alerts {alerts}"
    body = bench_graph_latency.report(modes, command, load)
    return Section(bench_graph_latency.TITLE, body, bench_graph_latency.goals(modes))


RUNNERS: dict[str, Callable[[bool], Section]] = {
    "messages": messages_section,
    "sdk": sdk_section,
    "storm": storm_section,
    "storm_am": storm_am_section,
    "storm_kinds": storm_kinds_section,
    "escalation": escalation_section,
    "outbox": outbox_section,
    "ingest": ingest_section,
    "startup": startup_section,
    "chart": chart_section,
    "graph_latency": graph_latency_section,
}

PROFILES = """\
## Where the time goes (ingest)

Taken with `py-spy record --threads -f raw` on the gateway process under the same loads as
above, with per-thread CPU from `/proc/PID/task/*/stat`, and with a diagnostic wrapper that
logs garbage collections, event-loop stalls and store operations over 5 ms next to each slow
answer. Re-take them after a change: the figures move with the code.

- **Accepting** costs about 0.45 ms of CPU per notification on SQLite: ~0.33 ms in the
  event-loop thread and ~0.11 ms in the SQLite thread. The two share the GIL, so together
  they are what one core gives. In the event-loop thread uvloop/httptools and the response
  take about a third; decoding, validating and keying the payload about a fifth.
- **The same code moves by 15-25 % from run to run** on this shared 2-core machine. Spot runs
  of the full-speed phase after the last change gave 2,080-2,510/s on SQLite and
  1,990-2,600/s on Redis; the table above is one run of `make bench`.
- **Rendering** (behind the answers) costs about 2-2.5 ms per notification end to end: the
  Jinja2 sandbox about 1 ms, storing the messages and the history entry most of the rest. It
  takes at most a twentieth of the loop while requests are being answered, so a burst fills
  the journal and drains after it (the *journal empty after* column).
- **Latency at 500/s.** Two things made the p99 of an earlier run 73-116 ms:
  - *The garbage collector.* A full collection walked the ~85,000 objects a started
    gateway holds, with every thread stopped, for 50-90 ms, several times a minute.
    `wecom-bot gateway` now freezes them once started (`wecom_bot.gateway.heap`), and a
    full collection takes 2-5 ms.
  - *Digest rounds.* A round claimed 500 records in one store operation (20-30 ms) and
    swapped them in another (23-67 ms, most of it decoding payloads it did not need). Journal
    writes queued behind both. Rounds now claim 100 at a time (about 4 ms each), and the swap
    reads only ids, states and times (11-14 ms).

  With a digest round inside the fixed-rate phase, the p99 measured 17-21 ms on SQLite and
  29-31 ms on Redis in the runs after the change. On Redis, `hiredis` (now part of the
  `redis` extra) parses replies in C; without it, parsing the replies to claims held the
  loop for tens of milliseconds.
- **What changed in this round**, besides the two above:
  - the journal record embeds the request's JSON text verbatim, where the body used to be
    encoded again as a string;
  - history entries and events are encoded field by field (`dataclasses.asdict`
    deep-copied every message payload), and events are written 100 at a time;
  - Redis reads delivery states without payloads or folded ids, as SQLite already did;
  - small things on the request path: JSON encoders built once, a label set checked in one
    pass, the received counter's child looked up once, no proxy-header parsing (nothing uses
    the client's address).
- **What would go further**: render in a second process, since rendering holds the GIL that
  accepting needs; or run several gateways on Redis, which share the journal, the outbox and
  the rate limit.
"""


def render(sections: list[Section], started: str, load: tuple[str, str], argv: str) -> str:
    """The whole document."""
    goal_rows = [
        [name, measured, "met" if ok else "**not met**"]
        for s in sections
        for name, measured, ok in s.goals
    ]
    parts = [
        "# Benchmarks",
        "Generated by `bench/run_all.py`; do not edit by hand: re-run it.",
        f"- command: `{argv}`\n- date: {started}\n- machine: {machine()}\n"
        f"- load average (1 min) at start / end: {load[0]} / {load[1]} (the machine is shared; "
        "figures move with it)\n"
        "- sizes and time limits: see each module in `bench/`; every run stops by itself",
        "## Goals",
        table(["goal", "measured", "status"], goal_rows),
    ]
    for s in sections:
        parts += [f"## {s.title}", s.body, f"_(took {s.seconds:.0f} s)_"]
    if any(s.title.startswith("Gateway ingest") for s in sections):
        parts.append(PROFILES)
    return "\n\n".join(parts) + "\n"


def splice(document: str, sections: list[Section], command: str) -> str:
    """``document`` with ``sections`` (and their goals) put in place of those of the same
    title, or added before the profiles; the other sections and goals stay as they were."""
    head, *chunks = document.split("\n## ")
    titled = {chunk.split("\n", 1)[0]: chunk for chunk in chunks}
    goal_lines = titled.get("Goals", "").split("\n")
    rows = [line for line in goal_lines if line.startswith("| ") and "---" not in line][1:]
    new_goals = {name: f"| {name} | {measured} | {'met' if ok else '**not met**'} |"
                 for s in sections for name, measured, ok in s.goals}  # fmt: skip
    kept = [row for row in rows if row.split(" | ")[0][2:] not in new_goals]
    titled["Goals"] = "Goals\n\n" + table(["goal", "measured", "status"], [])
    titled["Goals"] += "\n" + "\n".join([*kept, *new_goals.values()])
    for s in sections:
        titled[s.title] = f"{s.title}\n\n{s.body}\n\n_(took {s.seconds:.0f} s; "
        titled[s.title] += f"`{command}`, {today()})_"
    order = list(dict.fromkeys([*titled]))
    profiles = [t for t in order if t.startswith("Where the time goes")]
    order = [t for t in order if t not in profiles] + profiles
    return "\n## ".join([head.rstrip("\n") + "\n", *(titled[t].rstrip("\n") + "\n" for t in order)])


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; print the document; write it when complete."""
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated of {ALL}")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--write", action="store_true", help="write the doc even for a subset")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {ALL}")
    started, load_start = today(), _load()
    sections = []
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        begin = time.monotonic()
        try:
            section = RUNNERS[name](args.quick)
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            print(f"{name} failed: {exc}", file=sys.stderr)
            last = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
            section = Section(
                f"{name} (failed)",
                f"This benchmark did not complete: `{type(exc).__name__}: {last[0]}`",
                [(f"{name}: benchmark completed", "failed", False)],
            )
        section.seconds = time.monotonic() - begin
        sections.append(section)
    command = (
        COMMAND
        if argv is None and len(sys.argv) == 1
        else "python -m bench.run_all " + (" ".join(argv if argv is not None else sys.argv[1:]))
    )
    document = render(sections, started, (load_start, _load()), command)
    print(document)
    complete = set(chosen) == set(ALL) and not args.quick
    if complete:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(document, "utf-8")
        print(f"wrote {DOC}", file=sys.stderr)
    elif args.write and not args.quick and DOC.exists():
        DOC.write_text(splice(DOC.read_text("utf-8"), sections, command), "utf-8")
        print(f"updated {len(sections)} section(s) of {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
