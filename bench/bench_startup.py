"""CLI start-up (issue 27): ``import wecom_bot`` and ``wecom-bot send text --dry-run`` beside
``python -c 'import pydantic'``, the one import the message models need.

Run: ``python -m bench.bench_startup [--runs 21]``. Each command is a fresh interpreter; the
commands are run in turn, round after round, so a change in the machine's load touches all
of them alike. Bytecode is compiled once beforehand into a temporary ``PYTHONPYCACHEPREFIX``
(as an installed wheel has it), whatever ``PYTHONDONTWRITEBYTECODE`` says.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import machine, median, table

TITLE = "CLI start-up (issue 27)"
SRC = Path(__file__).resolve().parents[1] / "src"
RUNS = 21
BASELINE = "import pydantic"

COMMANDS: dict[str, list[str]] = {
    BASELINE: ["-c", "import pydantic"],
    "import wecom_bot": ["-c", "import wecom_bot"],
    "wecom-bot send text --dry-run": ["-m", "wecom_bot", "send", "text", "--dry-run", "hello"],
}
_TEXT = "from wecom_bot.messages import TextMessage; TextMessage(content='hello').to_payload()"
FLOOR: dict[str, list[str]] = {
    "floor: pydantic's model machinery": ["-c", "from pydantic import BaseModel"],
    "floor: a text message built": ["-c", _TEXT],
    "floor: the models and typer": ["-c", f"import typer; {_TEXT}"],
}  # fmt: skip
"""What ``send text --dry-run`` cannot go below while it validates with the SDK's pydantic
models and parses its arguments with Typer: timed in the same rounds, for the reader."""
GOALS = {"import wecom_bot": 1.3, "wecom-bot send text --dry-run": 2.0}
"""Median of the command / median of the baseline, at most."""


@dataclass
class Timing:
    """The wall and CPU times of one command, in milliseconds."""

    name: str
    argv: list[str]
    times: list[float]
    src: Path = SRC
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.times)

    @property
    def cpu_median(self) -> float:
        return median(self.cpu)


def _environment(cache: str, src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(src)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run.

    The child is reaped with a blocking ``wait4``: ``subprocess.run(timeout=...)`` polls with
    sleeps of up to 50 ms, which rounded every earlier figure of this table to 50 ms steps."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        watchdog.cancel()
    wall = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def run(runs: int = RUNS, before: Path | None = None) -> list[Timing]:
    """Time every command ``runs`` times, interleaved, after one warm-up run each; with
    ``before`` (another checkout) its wecom-bot commands too, in the same rounds."""
    timings = [Timing(name, argv, []) for name, argv in {**COMMANDS, **FLOOR}.items()]
    if before is not None:
        timings += [Timing(f"{name} (before)", argv, [], before / "src")
                    for name, argv in COMMANDS.items() if name != BASELINE]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wecom-bench-pyc-") as cache:
        envs = {t.src: _environment(cache, t.src) for t in timings}
        for t in timings:
            _once(t.argv, envs[t.src])
        for _ in range(runs):
            for t in timings:
                wall, cpu = _once(t.argv, envs[t.src])
                t.times.append(wall)
                t.cpu.append(cpu)
    return timings


def _ratio(t: Timing, timings: list[Timing]) -> float:
    base = next(b for b in timings if b.name == BASELINE)
    return t.median / base.median


def _cpu_ratio(t: Timing, timings: list[Timing]) -> float:
    base = next(b for b in timings if b.name == BASELINE)
    return t.cpu_median / base.cpu_median


def goals(timings: list[Timing]) -> list[tuple[str, str, bool]]:
    """Each goal of issue 27 with its measured ratio."""
    out = []
    for t in timings:
        if t.name in GOALS:
            ratio = _ratio(t, timings)
            out.append(
                (
                    f"`{t.name}` <= {GOALS[t.name]}× `python -c 'import pydantic'` (medians)",
                    f"{ratio:.2f}× ({t.median:.0f} ms vs {timings[0].median:.0f} ms)",
                    ratio <= GOALS[t.name],
                )
            )
    return out


def _floor_sentence(timings: list[Timing]) -> str:
    by_name = {t.name: t for t in timings}
    command = by_name["wecom-bot send text --dry-run"]
    floor = by_name["floor: the models and typer"]
    base = by_name[BASELINE]
    return (
        f"The command costs {command.cpu_median - floor.cpu_median:.0f} ms of CPU more than "
        "the last floor row (what the send module imports besides the text message: the other "
        "message types, the client, the split planner). The floor itself is "
        f"{floor.cpu_median / base.cpu_median:.1f}× the baseline, so the 2× goal is out of "
        "reach without taking pydantic or Typer off the command line's path."
    )


def report(timings: list[Timing], runs: int, before: str = "") -> str:
    """The Markdown section (``before``: a sentence on the other checkout, if any)."""
    rows = [
        [
            f"`{t.name}`",
            f"`python {' '.join(t.argv)}`",
            f"{t.median:.0f}",
            f"{min(t.times):.0f}",
            f"{_ratio(t, timings):.2f}×",
            f"{t.cpu_median:.0f}",
            f"{_cpu_ratio(t, timings):.2f}×",
        ]
        for t in timings
    ]
    return (
        f"`python -m bench.bench_startup --runs {runs}`: wall time of a fresh interpreter per "
        f"command, {runs} rounds of the commands in turn after one warm-up each, bytecode "
        "compiled beforehand; `wecom-bot` is run as `python -m wecom_bot` (the same code as "
        f"the console script). Machine: {machine()}.{before} CPU is user + system time of "
        "the process, steadier than wall time on a shared machine.\n\n"
        "The *floor* rows time what the command cannot do without while it validates with "
        "the SDK's pydantic models and parses its arguments with Typer: importing pydantic's "
        "`BaseModel`, building the text message, and the same with Typer imported. "
        + _floor_sentence(timings)
        + "\n\n"
        + table(
            ["what", "command", "median ms", "fastest ms", "× pydantic",
             "CPU median ms", "CPU × pydantic"], rows,
        )  # fmt: skip
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--before", type=Path, help="another checkout, timed in the same rounds")
    args = parser.parse_args()
    timings = run(args.runs, args.before)
    print(report(timings, args.runs))
    for name, measured, ok in goals(timings):
        print(f"- {name}: {measured} ({'met' if ok else 'not met'})")


if __name__ == "__main__":
    main()
