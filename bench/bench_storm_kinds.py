"""Storms people can act on (issue 25): pods, probe URLs and hosts through a real Alertmanager.

Each storm of :mod:`bench.storm_shapes` is posted to a real Alertmanager (``group_wait: 5s``,
``group_interval: 30s``, ``repeat_interval: 4h``; both scaled with ``--window``) whose receiver
is ``wecom-bot gateway``'s ``/alertmanager`` endpoint; the gateway runs on its embedded
defaults with one bot pointing at ``wecom-bot emulator`` (WeCom's 20 messages per window). A
storm is fired (every alert posted within 15 % of a window), delivered, then resolved the same
way. Cases:

* 1,000 kube-prometheus pod alerts, ``group_by: [alertname, namespace]``;
* the same, ``group_by: [alertname]``;
* 500 blackbox ``ProbeFailed`` alerts with URL instances of 75-85 bytes, ``group_by: [alertname]``;
* 1,000 ``HostDown`` alerts ``instance=host-N:9100``, ``group_by: [alertname]``.

The messages the emulator accepted are read with :func:`wecom_bot.storm.read_message` (what a
reader finds in one summary message: label sets) and, for alerts the gateway wrote one by one
(a small notification, which ``read_message`` does not read), :func:`read_per_alert`. An
alert is *identifiable* in a message when a label set read from it names the alert's
alertname and status, holds its severity and its context labels (``namespace`` for pods),
agrees with its labels on every other label it has, and fits no other alert of the storm.
*Alone*: in one message read by itself; *overall*: in some message or in all the phase's
messages read in order, as one text.

``--before DIR`` runs the same storms on the ``src`` of another checkout (the release before
issue 25) in the same run; that release has no ``read_message``: its messages are read with
:func:`read_before`, a reader of the old summary and per-alert formats written here.

Run: ``.venv/bin/python -m bench.bench_storm_kinds [--window 60] [--before /work/before]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import bench_storm_am as storm_am
from bench._common import machine, table, today
from bench.bench_ingest import free_port, gateway_process
from bench.bench_sdk import emulator_process, new_key
from bench.bench_storm import emulator_entries
from bench.storm_shapes import CONTEXT_LABELS, alert_annotations, host_storm, pod_storm, url_storm
from wecom_bot.gateway.templates.escaping import (
    escape_markdown,
    escape_markdown_v2,
    escape_text,
)
from wecom_bot.limits import (
    ERRCODE_RATE_LIMITED,
    MARKDOWN_CONTENT_MAX_BYTES,
    TEXT_CONTENT_MAX_BYTES,
)
from wecom_bot.storm import expand

KEY_ENV = "WECOM_STORM_KINDS_KEY"
TITLE = "Storms people can act on (issue 25)"
Labels = dict[str, str]
Reader = Callable[[str], list[Labels]]
_HEADING = re.compile(r"(FIRING|RESOLVED) · (\d+)")
_FIRING_COUNT = re.compile(r"FIRING · (\d+)")
_RESOLVED_COUNT = re.compile(r"(?:RESOLVED · |已恢复 )(\d+)")
_PART = re.compile(r"\((\d+)/(\d+)\)")
_RUNNING = {
    "firing": re.compile(r"累计告警 (\d+)"),
    "resolved": re.compile(r"累计恢复 (\d+)"),
}
_PART_MARK = re.compile(r"\n\(\d+/\d+\)\s*$")
_ESCAPES = {"markdown": escape_markdown, "markdown_v2": escape_markdown_v2, "text": escape_text}
_LIMITS = {
    "markdown": MARKDOWN_CONTENT_MAX_BYTES,
    "markdown_v2": MARKDOWN_CONTENT_MAX_BYTES,
    "text": TEXT_CONTENT_MAX_BYTES,
}


@dataclass(frozen=True)
class Case:
    """One storm and how Alertmanager groups it."""

    name: str
    storm: Callable[[], list[Labels]]
    group_by: Sequence[str]


CASES = (
    Case("pods, group_by [alertname, namespace]", pod_storm, ["alertname", "namespace"]),
    Case("pods, group_by [alertname]", pod_storm, ["alertname"]),
    Case("URLs (blackbox), group_by [alertname]", url_storm, ["alertname"]),
    Case("hosts, group_by [alertname]", host_storm, ["alertname"]),
)


@dataclass
class Phase:
    """What the group saw of one phase (the storm firing, or its resolve)."""

    version: str
    case: str
    phase: str
    alerts: int
    window: float = 60.0
    identifiable: int = 0
    alone: int = 0
    messages: int = 0
    rejected_45009: int = 0
    over_limit: int = 0
    headings: list[int] = field(default_factory=list)  # per summary, in order; 0: none
    summaries: int = 0  # summaries (and per-alert notifications) with a heading
    summaries_true: int = 0  # those whose heading equals the alerts they list
    running: int | None = None  # the last running total stated
    final: int = 0  # the last running total, else the last summary's heading
    last_after_post: float | None = None  # s from the first post to Alertmanager
    last_after_notified: float | None = None  # s from Alertmanager's first post to the gateway
    notified_span: float | None = None  # s between Alertmanager's first and last post

    @property
    def identifiable_pct(self) -> float:
        """Share of the alerts identifiable overall, in percent."""
        return 100.0 * self.identifiable / max(self.alerts, 1)

    @property
    def alone_pct(self) -> float:
        """Share of the alerts identifiable in one message read alone, in percent."""
        return 100.0 * self.alone / max(self.alerts, 1)


# -- reading ------------------------------------------------------------------------------------


def reader_now() -> tuple[str, Reader]:
    """The reader of this release: ``wecom_bot.storm.read_message`` for summaries, and
    :func:`read_per_alert` for alerts written one by one (which it does not read)."""
    from wecom_bot import storm

    found = getattr(storm, "read_message", None)
    if found is None:
        raise RuntimeError("wecom_bot.storm.read_message is missing: this bench needs it")
    read_message: Reader = found

    def read(text: str) -> list[Labels]:
        return read_message(text) + read_per_alert(text)

    return "read_message", read


def read_per_alert(text: str) -> list[Labels]:
    """The alerts of the per-alert ``default`` template in ``text`` (a message, or the
    notifications a digest holds), read as :func:`read_before` reads them; summaries are
    left out."""
    out: list[Labels] = []
    for chunk in re.split(r"\n(?=\s*## )", text):
        first = chunk.lstrip().split("\n", 1)[0]
        if first.startswith("## ") and _HEADING.search(first) and "汇总" not in first:
            out += read_before(chunk)
    return out


_OLD_GROUP = re.compile(r"\*\*(?P<name>[^*]+)\*\*(?P<rest>.*)$")
_OLD_BADGE = re.compile(r"级别 `([^`]*)`")


def _pairs(text: str) -> Labels | None:
    """``k=v, k=v`` as a dict; None when ``text`` is not such a list."""
    out: Labels = {}
    for item in text.split(", "):
        name, sep, value = item.partition("=")
        if not sep or not name or " " in name:
            return None
        out[name] = value
    return out


def read_before(text: str) -> list[Labels]:
    """The label sets a reader finds in ``text`` written by the release before issue 25: its
    ``summary`` (heading, ``**name** × N`` group lines, a shared ``> k=v, …`` line, entry lines
    ``> key: e1, e2`` or ``> k=v, key: e1, …`` with ranges expanded) and its per-alert
    ``default`` template (``**name** 级别 `sev``` and ``> 标签：k=v, …``). Severity is read only
    where it is written per alert (a shared label, an identity key, a badge): counts
    (``· critical 40``) name no alert. Entries before any group line (a continued part) carry
    no alertname or status."""
    out: list[Labels] = []
    status = ""
    group: Labels = {}
    for raw in text.split("\n"):
        line = raw.strip()
        heading = _HEADING.search(line)
        if line.startswith("## ") and heading:
            status = heading.group(1).lower()
            group = {}
            continue
        plain = re.sub(r"</?font[^>]*>", "", line)
        named = _OLD_GROUP.match(plain)
        if named and not plain.startswith(">"):
            group = {"alertname": named["name"].strip()}
            if status:
                resolved = "已恢复" in named["rest"] or status == "resolved"
                group["status"] = "resolved" if resolved else "firing"
            badge = _OLD_BADGE.search(named["rest"])
            if badge:
                group["severity"] = badge.group(1)
            continue
        if not plain.startswith(">"):
            continue
        body = plain[1:].strip()
        if body.startswith("标签："):
            labels = _pairs(body[3:])
            if labels is not None:
                out.append({**group, **labels})
            continue
        if body.startswith(("摘要：", "详情：", "开始：", "结束：", "数值：", "👉")):
            continue
        shared = _pairs(body)
        if shared is not None:
            group = {**group, **shared}
            continue
        head, sep, entries = body.rpartition(": ")
        if not sep:
            continue
        prefix, _, key = head.rpartition(", ")
        fixed = _pairs(prefix) if prefix else {}
        if fixed is None or " " in key:
            continue
        for entry in entries.split(", "):
            out += [{**group, **fixed, key: value} for value in expand(entry)]
    return out


def read_conversation(contents: Sequence[str], reader: Reader) -> list[Labels]:
    """What a reader finds in all ``contents`` read in order as one text: a part that does not
    start with a heading continues the part before it (its ``(i/n)`` mark dropped)."""
    text = ""
    for content in contents:
        if text and not content.lstrip().startswith("#"):
            text = _PART_MARK.sub("", text) + content
        else:
            text += ("\n\n" if text else "") + content
    return reader(text) if text else []


class Truth:
    """The alerts of one phase, indexed to score label sets fast. Messages write values
    escaped for their msgtype (look-alike characters): the labels are compared escaped the
    same way."""

    def __init__(self, labels: list[Labels], status: str, msgtype: str = "markdown") -> None:
        esc = _ESCAPES.get(msgtype, escape_markdown)
        self.labels = [{k: esc(v) for k, v in alert.items()} for alert in labels]
        self.status = status
        self._index: dict[tuple[str, str], list[int]] = {}
        for i, alert in enumerate(self.labels):
            for pair in alert.items():
                self._index.setdefault(pair, []).append(i)

    def identified(self, found: list[Labels]) -> set[int]:
        """The alerts identifiable from the label sets ``found`` (issue 25's definition)."""
        out: set[int] = set()
        for d in found:
            if "severity" not in d:
                continue
            i = self._only_match(d)
            if i is not None and all(c in d for c in self._context(i)):
                out.add(i)
        return out

    def _context(self, i: int) -> tuple[str, ...]:
        return CONTEXT_LABELS.get(self.labels[i]["alertname"], ())

    def _only_match(self, d: Labels) -> int | None:
        if d.get("status") != self.status or "alertname" not in d:
            return None
        pairs = [(k, v) for k, v in d.items() if k != "status"]
        smallest = min((self._index.get(p, []) for p in pairs), key=len)
        matches = [i for i in smallest if all(self.labels[i].get(k) == v for k, v in pairs)]
        return matches[0] if len(matches) == 1 else None


def content_of(entry: dict[str, Any]) -> str:
    """The text of an emulator entry's message."""
    return str(entry["payload"].get(entry["msgtype"], {}).get("content", ""))


def heading_of(content: str, status: str) -> int:
    """The count of ``status`` alerts a message's heading line states: ``FIRING · N``
    (firing) or ``RESOLVED · N`` / ``已恢复 N`` (resolved); 0 without a heading."""
    first = content.lstrip().split("\n", 1)[0]
    if not first.startswith("#"):
        return 0
    pattern = _FIRING_COUNT if status == "firing" else _RESOLVED_COUNT
    found = pattern.search(first)
    return int(found.group(1)) if found else 0


def running_total(contents: Sequence[str], status: str) -> int | None:
    """The last running total of ``status`` alerts the messages state (``累计告警 N`` /
    ``累计恢复 N``), None when none does."""
    pattern = _RUNNING[status]
    found = [int(m.group(1)) for c in contents for m in pattern.finditer(c)]
    return found[-1] if found else None


def score(
    version: str,
    case: Case,
    phase: str,
    labels: list[Labels],
    entries: list[dict[str, Any]],
    reader: Reader,
    times: PhaseTimes,
) -> Phase:
    """Score the emulator's entries received since the phase started."""
    msgtypes = [e["msgtype"] for e in entries if e["received_at"] >= times.started]
    truth = Truth(labels, phase, max(set(msgtypes), key=msgtypes.count, default="markdown"))
    result = Phase(version, case.name, phase, len(labels), window=times.window)
    accepted: list[dict[str, Any]] = []
    for entry in entries:
        if entry["received_at"] < times.started:
            continue
        if entry["errcode"] == ERRCODE_RATE_LIMITED:
            result.rejected_45009 += 1
        size = len(content_of(entry).encode("utf-8"))
        result.over_limit += size > _LIMITS.get(entry["msgtype"], MARKDOWN_CONTENT_MAX_BYTES)
        if entry["status"] == "accepted":
            accepted.append(entry)
    contents = [content_of(e) for e in accepted]
    per_message = [reader(c) for c in contents]
    alone: set[int] = set()
    for found in per_message:
        alone |= truth.identified(found)
    result.alone = len(alone)
    result.identifiable = len(alone | truth.identified(read_conversation(contents, reader)))
    result.messages = len(accepted)
    units = summaries(contents, phase)
    result.headings = [count for count, _ in units]
    result.summaries, result.summaries_true = _headings_true(units, reader, phase)
    result.running = running_total(contents, phase)
    headed = [count for count in result.headings if count]
    result.final = result.running if result.running is not None else (headed or [0])[-1]
    if accepted:
        last = max(e["received_at"] for e in accepted)
        result.last_after_post = last - times.started
        if times.notified:
            result.last_after_notified = last - times.notified[0]
            result.notified_span = times.notified[-1] - times.notified[0]
    return result


def summaries(contents: Sequence[str], status: str) -> list[tuple[int, str]]:
    """The summaries and per-alert notifications the messages carry, in order: the count the
    heading of each states for ``status`` and its text. A message is cut at its heading lines
    (a digest holds several); a later part ``(i/n)`` of a summary, and text before any heading
    (a continued part of the release before, a digest's title), join the one before."""
    out: list[tuple[int, str]] = []
    for content in contents:
        chunks: list[list[str]] = [[]]
        for line in content.split("\n"):
            if line.lstrip().startswith("## ") and chunks[-1]:
                chunks.append([])
            chunks[-1].append(line)
        for lines in chunks:
            text = "\n".join(lines)
            first = lines[0].lstrip()
            part = _PART.search(first) if first.startswith("## ") else None
            if out and (not first.startswith("## ") or (part and part.group(1) != "1")):
                out[-1] = (out[-1][0], out[-1][1] + "\n" + text)
            else:
                out.append((heading_of(text, status), text))
    return out


def _headings_true(units: list[tuple[int, str]], reader: Reader, status: str) -> tuple[int, int]:
    """(Summaries with a heading, those whose heading equals the number of distinct alerts of
    ``status`` a reader finds in them)."""
    headed = [(count, text) for count, text in units if count]
    true = 0
    for count, text in headed:
        found = {tuple(sorted(d.items())) for d in reader(text) if d.get("status") == status}
        true += count == len(found)
    return len(headed), true


# -- the processes ------------------------------------------------------------------------------


def write_gateway_config(directory: Path, emulator: str, window: float) -> tuple[Path, int]:
    """The gateway's config: one bot, embedded defaults everywhere else (the rate and the
    coalescing delay scaled when the window is)."""
    port = free_port()
    text = (
        f"listen_host: 127.0.0.1\nlisten_port: {port}\nbase_url: {emulator}\n"
        f"store: sqlite:///{directory / 'outbox.db'}\n"
        f"bots:\n  ops:\n    key_env: {KEY_ENV}\n"
    )
    if window != 60.0:
        text += f"rate: 20/{window:g}s\ncoalesce_after: {window / 2:g}s\n"
    path = directory / "gateway.yaml"
    path.write_text(text, "utf-8")
    return path, port


@contextlib.contextmanager
def alertmanager(
    directory: Path, webhook: str, group_by: Sequence[str], window: float = 60.0
) -> Iterator[str]:
    """A real Alertmanager posting to ``webhook``: ``group_wait`` 5 s and ``group_interval``
    30 s in a 60 s window (the usual values), scaled with ``window``."""
    with storm_am.alertmanager(
        directory, webhook, group_by, window, group_wait=5.0, group_interval=30.0
    ) as url:
        yield url


def post_alerts(am: str, labels: list[Labels], *, resolve: bool, seconds: float) -> None:
    """Post the alerts (with their annotations) to Alertmanager's API v2 in ten batches
    spread over ``seconds``."""
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolve else now + timedelta(hours=1)
    batches = 10
    size = -(-len(labels) // batches)
    with httpx.Client(base_url=am, timeout=30) as client:
        for b in range(batches):
            body = [
                {
                    "labels": item,
                    "annotations": alert_annotations(item),
                    "startsAt": (now - timedelta(minutes=20)).isoformat(),
                    "endsAt": ends.isoformat(),
                }
                for item in labels[b * size : (b + 1) * size]
            ]
            client.post("/api/v2/alerts", json=body).raise_for_status()
            if b < batches - 1:
                time.sleep(seconds / (batches - 1))


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class PhaseTimes:
    """When a phase started (first post to Alertmanager) and when Alertmanager notified the
    gateway (seen as the gateway's received counter moving, polled every 0.1 s)."""

    started: float
    window: float
    notified: list[float] = field(default_factory=list)


class GatewayWatch:
    """Polls the gateway's metrics: notifications received, and whether work is pending."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received = 0.0
        self.pending = 0.0
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GatewayWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    text = client.get("/metrics").text
                    received = _metric(text, "wecom_bot_notifications_received_total")
                    if received > self.received:
                        self.times.append(time.time())
                    self.received = received
                    self.pending = _metric(text, "wecom_bot_inbox_depth") + _metric(
                        text, "wecom_bot_queue_depth"
                    )
                self._stop.wait(0.1)


def wait_delivered(
    emulator: str,
    key: str,
    truth: Truth,
    reader: Reader,
    watch: GatewayWatch,
    times: PhaseTimes,
    earliest: float,
) -> list[dict[str, Any]]:
    """Poll the emulator until the phase is over: past ``earliest`` (Alertmanager has sent
    everything), nothing pending in the gateway, no new message for a while, and either every
    alert identifiable or a quarter window more of quiet; at most four windows."""
    deadline = earliest + 4 * times.window
    quiet = max(times.window / 4, 3.0)
    while True:
        entries = [e for e in emulator_entries(emulator, key) if e["received_at"] >= times.started]
        now = time.time()
        last = max((e["received_at"] for e in entries), default=times.started)
        settled = now >= earliest and watch.pending == 0 and now - last >= 3.0
        if settled:
            contents = [content_of(e) for e in entries if e["status"] == "accepted"]
            found = [d for c in contents for d in reader(c)]
            found += read_conversation(contents, reader)
            if len(truth.identified(found)) == len(truth.labels) or now - last >= quiet:
                return entries
        if now > deadline:
            return entries
        time.sleep(1.0)


def run_case(
    case: Case, *, version: str, reader: Reader, src: Path | None, window: float
) -> list[Phase]:
    """Fire and resolve one storm on one release; what the group saw of each phase."""
    labels = case.storm()
    key = new_key()
    env = {KEY_ENV: key, **({"PYTHONPATH": str(src)} if src is not None else {})}
    posting = window * 0.15
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wecom-kinds-")))
        emu = stack.enter_context(emulator_process(f"20/{window:g}s"))
        config, port = write_gateway_config(directory, emu.url, window)
        gw = stack.enter_context(gateway_process(config, port, env))
        am = stack.enter_context(alertmanager(directory, gw.url, case.group_by, window))
        watch = stack.enter_context(GatewayWatch(gw.url))
        phases: list[Phase] = []
        for phase in ("firing", "resolved"):
            times = PhaseTimes(time.time(), window)
            seen = len(watch.times)
            post_alerts(am, labels, resolve=phase == "resolved", seconds=posting)
            # Alertmanager's last flush of the storm: group_wait, then one group_interval
            earliest = times.started + posting + window * 35 / 60 + 2.0
            truth = Truth(labels, phase)
            entries = wait_delivered(emu.url, key, truth, reader, watch, times, earliest)
            times.notified = watch.times[seen:]
            _keep(case, version, phase, entries, times)
            phases.append(score(version, case, phase, labels, entries, reader, times))
        return phases


def _keep(
    case: Case, version: str, phase: str, entries: list[dict[str, Any]], times: PhaseTimes
) -> None:
    """Save the phase's messages as JSON under ``$WECOM_BENCH_KEEP`` (when set), to look at."""
    folder = os.environ.get("WECOM_BENCH_KEEP")
    if not folder:
        return
    name = re.sub(r"\W+", "-", f"{version} {case.name} {phase}").strip("-")
    data = {"started": times.started, "notified": times.notified, "entries": entries}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")


def run(
    *, window: float = 60.0, before: Path | None = None, only: Sequence[int] = ()
) -> list[Phase]:
    """Every case (or those numbered in ``only``), on the release before and on this one."""
    versions: list[tuple[str, Reader, Path | None]] = []
    if before is not None:
        versions.append(("before", read_before, before / "src"))
    name, reader = reader_now()
    versions.append(("now", reader, None))
    phases: list[Phase] = []
    for number, case in enumerate(CASES, 1):
        if only and number not in only:
            continue
        for version, read, src in versions:
            print(f"storm {number}/{len(CASES)} ({version}): {case.name} …", flush=True)
            for result in run_case(case, version=version, reader=read, src=src, window=window):
                print(f"  {result}", flush=True)
                phases.append(result)
    return phases


# -- report -------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    # the notification time is polled every 0.1 s: a message may seem to come just before it
    return "—" if value is None else f"{max(value, 0.0):.1f}"


def rows(phases: list[Phase]) -> list[list[str]]:
    """The table's rows."""
    out = []
    for p in phases:
        headed = sorted({h for h in p.headings if h})
        seen = ", ".join(str(h) for h in headed[:4]) + (", …" if len(headed) > 4 else "")
        out.append(
            [
                p.version, p.case, p.phase, str(p.alerts),
                f"{p.identifiable_pct:.1f} %", f"{p.alone_pct:.1f} %",
                f"{p.summaries_true}/{p.summaries}", seen or "—",
                f"{p.final}{'' if p.running is not None else ' (heading)'}"
                + (" ✓" if p.final == p.alerts else " ✗"),
                str(p.messages), str(p.rejected_45009),
                _seconds(p.last_after_post), _seconds(p.last_after_notified),
                str(p.over_limit),
            ]
        )  # fmt: skip
    return out


HEADERS = [
    "release", "storm", "phase", "alerts", "identifiable", "alone", "headings true",
    "heading counts seen", "final total", "messages", "45009", "last message after s (post)",
    "(Alertmanager's 1st notification)", "over the size limit",
]  # fmt: skip

COLUMNS = """\
- *identifiable*: share of the alerts a reader can identify with their severity and context
  (`namespace` for pods) in some message, or in all the phase's messages read in order;
- *alone*: share identifiable in one message read by itself (a phone notification, a quote);
- *headings true*: summaries (all parts `(i/n)` of one together; each notification of a
  digest apart) whose heading count (`FIRING · N` / `RESOLVED · N`) equals the number of
  distinct alerts a reader finds listed in them, out of the summaries with a heading;
- *heading counts seen*: the distinct counts the phase's summary headings stated (first four);
- *final total*: the last running total the phase's messages stated (`累计告警 N`,
  `累计恢复 N`), or the last summary's heading count when none did (marked *heading*); ✓ when
  it equals the phase's alerts;
- *messages*: messages the emulator accepted in the phase; *45009*: messages it refused for
  the rate limit;
- *last message after s*: from the first alert posted to Alertmanager to the phase's last
  message, and from Alertmanager's first notification to the gateway to it;
- *over the size limit*: messages (accepted or not) longer than WeCom's limit of their type.
"""


def report(phases: list[Phase], command: str, readers: str, before: str = "") -> str:
    """The Markdown section for ``docs/benchmarks.md``."""
    window = phases[0].window if phases else 60.0
    scaled = "" if window == 60 else f" (scaled: {window:g} s stand for WeCom's 60 s)"
    return (
        f"`{command}`: a real Alertmanager (`group_wait` {window * 5 / 60:g} s, "
        f"`group_interval` {window * 30 / 60:g} s) → `wecom-bot gateway` (embedded defaults, "
        f"SQLite) → `wecom-bot emulator` at 20 messages per {window:g} s{scaled}. "
        f"Machine: {machine()}; {today()}.\n\n"
        "Storms (`bench/storm_shapes.py`): 1,000 kube-prometheus pod alerts "
        "(`KubePodCrashLooping`, 24 `KubePodNotReady`; 10 namespaces, Deployment pods "
        "`<workload>-<hash>-<suffix>`, a few StatefulSet pods, 19 % critical); 500 blackbox "
        "`ProbeFailed` alerts with URLs of 75-85 bytes; 1,000 `HostDown` "
        "`instance=host-N:9100`. Each is fired, delivered, then resolved.\n\n"
        + table(HEADERS, rows(phases))
        + "\n\n"
        + COLUMNS
        + f"\nMessages were read with {readers}.{before}\n"
    )


def goals(phases: list[Phase]) -> list[tuple[str, str, bool]]:
    """Issue 25's goals, on this release: (goal, what was measured, met)."""
    now = [p for p in phases if p.version == "now"]

    def each(fmt: Callable[[Phase], str]) -> str:
        return " / ".join(fmt(p) for p in now)

    return [
        ("storm kinds: 100 % identifiable with severity and context, every storm and phase",
         each(lambda p: f"{p.identifiable_pct:.0f} %"),
         all(p.identifiable == p.alerts for p in now)),
        ("storm kinds: >= 95 % identifiable reading each message alone",
         each(lambda p: f"{p.alone_pct:.0f} %"), all(p.alone_pct >= 95 for p in now)),
        ("storm kinds: every heading count equals the alerts its summary lists",
         each(lambda p: f"{p.summaries_true}/{p.summaries}"),
         all(p.summaries_true == p.summaries for p in now)),
        ("storm kinds: the final running total equals the truth",
         each(lambda p: f"{p.final}/{p.alerts}"), all(p.final == p.alerts for p in now)),
        ("storm kinds: <= 10 messages per storm phase", each(lambda p: str(p.messages)),
         all(p.messages <= 10 for p in now)),
        ("storm kinds: zero 45009", each(lambda p: str(p.rejected_45009)),
         all(p.rejected_45009 == 0 for p in now)),
        ("storm kinds: last message within 60 s of Alertmanager's first post",
         each(lambda p: _seconds(p.last_after_notified)),
         all(p.last_after_notified is not None and p.last_after_notified <= p.window
             for p in now)),
        ("storm kinds: no message over the size limit", each(lambda p: str(p.over_limit)),
         all(p.over_limit == 0 for p in now)),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Run the storms and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds of WeCom's window")
    parser.add_argument("--before", type=Path, help="a checkout of the release before")
    parser.add_argument("--only", default="", help="case numbers to run, e.g. 1,3")
    args = parser.parse_args(argv)
    only = [int(x) for x in args.only.split(",") if x]
    phases = run(window=args.window, before=args.before, only=only)
    readers = "`wecom_bot.storm.read_message` and `read_per_alert` (this release)"
    if args.before:
        readers += " and `read_before` (the release before)"
    print(report(phases, "python -m bench.bench_storm_kinds", readers))
    for goal, measured, met in goals(phases):
        print(f"{'met' if met else 'NOT MET'}: {goal}: {measured}")


if __name__ == "__main__":
    main()
