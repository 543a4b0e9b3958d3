"""The dispatcher over real HTTP against the emulator, with scaled windows on both sides."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.emulator.conftest import Emu, new_key, running
from wecom_bot.digest import with_shape
from wecom_bot.dispatcher import BotTarget, Dispatcher, DispatcherSettings, local_limiter
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.templates.renderer import Renderer, TemplateRenderError
from wecom_bot.masking import key_fingerprint
from wecom_bot.repeats import MAY_REPEAT
from wecom_bot.retry import RetryPolicy
from wecom_bot.store import MemoryOutbox, NewMessage, Outbox, OutboxRecord, Priority, open_store
from wecom_bot.storm import ALERTS_KEY, STORM_GRAPH_KEY, AlertBrief, attach, briefs_of, expand

WINDOW = 1.0
CLIENT_RATE = "20/1.05s"  # a 5 % margin absorbs loopback jitter between the two clocks
FAST_RETRY = RetryPolicy(max_attempts=30, base_delay=0.02, max_delay=0.2, rate_window=WINDOW)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open interval of length ``window``."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def accepted(emu: Emu, key: str) -> list[dict[str, Any]]:
    return [e for e in all_entries(emu, key) if e["status"] == "accepted"]


def accepted_texts(emu: Emu, key: str) -> list[str]:
    """The text of every message the emulator accepted for ``key`` (empty for an image)."""
    payloads = [e["payload"] for e in accepted(emu, key)]
    return [str(p[p["msgtype"]].get("content", "")) for p in payloads]


def all_entries(emu: Emu, key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        answer = emu.client.get(
            f"/api/groups/{key_fingerprint(key)}/messages",
            params={"since_id": since, "limit": 1000},
        )
        if answer.status_code == 404:  # the emulator has not heard of the key yet
            return out
        page = answer.json()
        out.extend(page["messages"])
        if not page["more"]:
            return out
        since = page["next_since_id"]


def inject(emu: Emu, key: str, count: int = 1, **fault: Any) -> None:
    answer = emu.client.post(
        f"/api/groups/{key_fingerprint(key)}/faults", json={**fault, "count": count}
    )
    assert answer.status_code == 201, answer.text


async def run_until_drained(
    store: Outbox, dispatcher: Dispatcher, bots: list[str], timeout: float = 30.0
) -> float:
    await dispatcher.start()
    start = time.monotonic()
    try:
        while any([await store.pending_count(b) for b in bots]):
            if time.monotonic() - start > timeout:
                raise AssertionError(f"not drained in {timeout}s: {await store.depth_by_bot()}")
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
    return time.monotonic() - start


def make_dispatcher(
    store: Outbox, emu: Emu, targets: dict[str, tuple[str, ...]], **settings: Any
) -> Dispatcher:
    return Dispatcher(
        store,
        {
            name: BotTarget(name=name, keys=keys, base_url=emu.url, timeout=0.5)
            for name, keys in targets.items()
        },
        limiter=local_limiter(CLIENT_RATE),
        retry=FAST_RETRY,
        settings=DispatcherSettings(**settings),
    )


def text(i: int) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": f"alert {i:03d}"}}


async def test_every_message_delivered_through_faults_and_never_over_the_limit(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(i), coalescible=False) for i in range(60)]
    )
    inject(emu, key, 3, kind="http_status", status=502)
    inject(emu, key, 2, kind="drop")
    inject(emu, key, 2, kind="errcode", errcode=45009)
    inject(emu, key, 2, kind="delay", delay_ms=900)  # past the 0.5 s client timeout
    inject(emu, key, 2, kind="errcode", errcode=-1)
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    await run_until_drained(store, dispatcher, ["ops"])

    got = accepted(emu, key)
    contents = [e["payload"]["text"]["content"] for e in got]
    plain = [c.removeprefix(MAY_REPEAT + "\n") for c in contents]
    assert set(plain) == {f"alert {i:03d}" for i in range(60)}
    # a timed-out request may have been processed after all: only those can be duplicates,
    # and their resends (after a drop or a timeout: 4 at most) say so
    assert len(contents) - 60 <= 2
    unmarked = [c for c in contents if not c.startswith(MAY_REPEAT)]
    assert len(unmarked) == len(set(unmarked)) and len(contents) - len(unmarked) <= 4
    assert max_in_window([e["received_at"] for e in got], WINDOW) <= 20
    real_limits = [e for e in all_entries(emu, key) if e["errcode"] == 45009 and not e["injected"]]
    assert real_limits == []
    assert await store.dead_count() == 0


async def test_permanent_rejection_is_dead_lettered_with_the_reason(
    emu: Emu, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    store = MemoryOutbox()
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(1)), NewMessage(bot="ops", payload=text(2))]
    )
    inject(emu, key, 1, kind="errcode", errcode=93000)
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    await run_until_drained(store, dispatcher, ["ops"])
    (dead,) = await store.list_dead()
    assert "93000" in (dead.last_error or "")
    assert key not in (dead.last_error or "")
    # the store counts the one try the log names (the console shows the store's count)
    assert dead.attempts == 1
    assert f"message {dead.id} dead-lettered after 1 attempt(s)" in caplog.text
    assert [e["payload"]["text"]["content"] for e in accepted(emu, key)] == ["alert 002"]


async def test_invalid_stored_payload_is_dead_lettered_not_sent(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    await store.enqueue(
        [NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": ""}})]
    )
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    await run_until_drained(store, dispatcher, ["ops"])
    (dead,) = await store.list_dead()
    assert "invalid message" in (dead.last_error or "") and "text.content" in (
        dead.last_error or ""
    )
    # the emulator never heard of this key: nothing was sent
    assert emu.client.get(f"/api/groups/{key_fingerprint(key)}").status_code == 404


async def test_backlog_of_500_becomes_a_few_full_digests_with_every_item(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    items = [
        {
            "msgtype": "markdown",
            "markdown": {"content": f'<font color="warning">[FIRING]</font> disk {i:03d} full'},
        }
        for i in range(500)
    ]
    await store.enqueue([NewMessage(bot="ops", payload=p) for p in items])
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)}, coalesce_after=2 * WINDOW)
    await run_until_drained(store, dispatcher, ["ops"])
    got = accepted(emu, key)
    assert len(got) <= 10
    text_all = "\n".join(e["payload"]["markdown"]["content"] for e in got)
    for i in range(500):
        assert f"disk {i:03d} full" in text_all
    assert all(e["content_bytes"] <= 4096 for e in got)


class ClaimLog(MemoryOutbox):
    """A memory outbox that records the limit of every claim."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: list[int] = []

    async def claim(
        self, bot: str, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[OutboxRecord]:
        self.limits.append(limit)
        return await super().claim(bot, limit=limit, lease_seconds=lease_seconds, now=now)


async def test_a_digest_round_claims_in_steps_and_still_folds_every_item(emu: Emu) -> None:
    key = new_key()
    store = ClaimLog()
    items = [
        {"msgtype": "markdown", "markdown": {"content": f"job {i:03d} failed"}} for i in range(150)
    ]
    await store.enqueue([NewMessage(bot="ops", payload=p) for p in items])
    dispatcher = make_dispatcher(
        store, emu, {"ops": (key,)}, batch=5, digest_batch=60, digest_claim=7,
        coalesce_after=2 * WINDOW,
    )  # fmt: skip
    await run_until_drained(store, dispatcher, ["ops"])
    # A round gathers its 60 in claims of 7 (8 x 7 + 4): no single claim takes the round.
    assert max(store.limits) == 7 and 4 in store.limits
    got = accepted(emu, key)
    text_all = "\n".join(e["payload"]["markdown"]["content"] for e in got)
    assert all(f"job {i:03d} failed" in text_all for i in range(150))
    assert len(got) < len(items) // 3  # folded into digests, not sent one by one


async def test_a_pool_of_keys_multiplies_throughput(emu: Emu) -> None:
    keys = (new_key(), new_key(), new_key())
    store = MemoryOutbox()
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(i), coalescible=False) for i in range(60)]
    )
    dispatcher = make_dispatcher(store, emu, {"ops": keys})
    elapsed = await run_until_drained(store, dispatcher, ["ops"])
    counts = [len(accepted(emu, k)) for k in keys]
    assert sum(counts) == 60 and all(c == 20 for c in counts)
    assert elapsed < 1.0  # 60 messages fit in one window across three keys


async def test_fifo_per_bot(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(i), coalescible=False) for i in range(15)]
    )
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    await run_until_drained(store, dispatcher, ["ops"])
    contents = [e["payload"]["text"]["content"] for e in accepted(emu, key)]
    assert contents == [f"alert {i:03d}" for i in range(15)]


async def test_sqlite_outbox_survives_a_restart(emu: Emu, tmp_path: Any) -> None:
    key = new_key()
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    store = open_store(url)
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(i), coalescible=False) for i in range(5)]
    )
    await store.close()
    store = open_store(url)
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    await run_until_drained(store, dispatcher, ["ops"])
    await store.close()
    assert len(accepted(emu, key)) == 5


async def test_worker_killed_mid_drain_loses_nothing(emu: Emu, tmp_path: Any) -> None:
    import signal
    import subprocess
    import sys

    key = new_key()
    db = tmp_path / "outbox.db"
    store = open_store(f"sqlite:///{db}")
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(i), coalescible=False) for i in range(80)]
    )
    await store.close()
    command = [sys.executable, "-m", "tests.dispatch_worker", str(db), emu.url, key]

    worker = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 20
        while len(accepted(emu, key)) < 25:  # mid-drain: after the first window
            assert time.monotonic() < deadline and worker.poll() is None
            await asyncio.sleep(0.02)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    delivered_before_restart = len(accepted(emu, key))
    assert delivered_before_restart < 80

    restarted = subprocess.run(command, timeout=60)
    assert restarted.returncode == 0
    contents = [e["payload"]["text"]["content"] for e in accepted(emu, key)]
    assert set(contents) == {f"alert {i:03d}" for i in range(80)}
    duplicates = len(contents) - 80
    assert duplicates <= 1  # only a send in flight at the kill can be repeated


def storm_alert(i: int) -> dict[str, Any]:
    """A rendered single-alert message carrying its alert, as the gateway queues it."""
    brief = AlertBrief({"alertname": "HighLatency", "instance": f"host-{i}"}, "firing", 1.7e9)
    content = f"## 🔥 告警 FIRING · 1 HighLatency\n> 标签：instance=host-{i}"
    return attach({"msgtype": "markdown", "markdown": {"content": content}}, [brief])


async def summarize_with_templates(
    briefs: Any, *, syntax: Any, max_messages: int, notifications: int, running_total: Any = None
) -> list[str]:
    report = Renderer().render_summary(
        briefs, msgtype=syntax, max_messages=max_messages, notifications=notifications,
        running_total=running_total,
    )  # fmt: skip
    return [p[syntax]["content"] for p in report.payloads]


async def test_a_storm_of_single_alerts_is_paced_and_summarised_with_every_host(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    dispatcher = Dispatcher(
        store,
        {"ops": BotTarget(name="ops", keys=(key,), base_url=emu.url, timeout=2.0)},
        limiter=local_limiter(CLIENT_RATE),
        retry=FAST_RETRY,
        settings=DispatcherSettings(storm_burst=3, storm_interval=0.1 * WINDOW),
        summarize=summarize_with_templates,
    )
    await dispatcher.start()
    try:
        for i in range(300):  # over 0.15 windows: 1,000 alerts within 10 s of WeCom's 60
            await store.enqueue([NewMessage(bot="ops", payload=storm_alert(i))])
            dispatcher.notify("ops")
            if i % 60 == 59:
                await asyncio.sleep(0.03 * WINDOW)
        deadline = time.monotonic() + 10
        while await store.pending_count("ops") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
    got = accepted(emu, key)
    contents = [e["payload"]["markdown"]["content"] for e in got]
    hosts = {h for c in contents for w in expand(c) for h in re.findall(r"host-\d+", w)}
    assert hosts == {f"host-{i}" for i in range(300)}
    assert len(got) <= 10, contents
    # the first sends of a quiet window leave as they are; what piles up after is summarised
    assert contents[0].startswith("## 🔥 告警 FIRING · 1 HighLatency")
    assert any("告警汇总" in c for c in contents)
    assert all(ALERTS_KEY not in e["payload"] for e in got)  # the carried alerts never leave
    assert [e for e in all_entries(emu, key) if e["errcode"] == 45009] == []
    assert max_in_window([e["received_at"] for e in got], WINDOW) <= 20


async def test_without_pacing_every_message_of_a_small_burst_leaves_as_it_is(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    await store.enqueue([NewMessage(bot="ops", payload=storm_alert(i)) for i in range(8)])
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)}, storm_interval=0)
    await run_until_drained(store, dispatcher, ["ops"])
    contents = [e["payload"]["markdown"]["content"] for e in accepted(emu, key)]
    assert contents == [storm_alert(i)["markdown"]["content"] for i in range(8)]


async def test_a_failing_summary_template_still_delivers_the_storm_line_by_line(emu: Emu) -> None:
    async def broken(
        briefs: Any, *, syntax: Any, max_messages: int, notifications: int, running_total: Any
    ) -> list[str]:
        raise TemplateRenderError("template 'summary', line 3 failed: ZeroDivisionError")

    key = new_key()
    store = MemoryOutbox()
    await store.enqueue([NewMessage(bot="ops", payload=storm_alert(i)) for i in range(40)])
    dispatcher = Dispatcher(
        store,
        {"ops": BotTarget(name="ops", keys=(key,), base_url=emu.url, timeout=2.0)},
        limiter=local_limiter(CLIENT_RATE),
        retry=FAST_RETRY,
        settings=DispatcherSettings(storm_burst=1, storm_interval=0.1 * WINDOW),
        summarize=broken,
    )
    await run_until_drained(store, dispatcher, ["ops"], timeout=10)
    contents = [e["payload"]["markdown"]["content"] for e in accepted(emu, key)]
    assert len(contents) < 40  # folded, not sent one by one
    lines = "\n".join(contents)
    assert {f"host-{i}" for i in range(40)} <= set(re.findall(r"host-\d+", lines))
    assert await store.dead_count("ops") == 0


async def test_a_news_message_marked_coalescible_leaves_with_a_folded_storm(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    news = {"msgtype": "news", "news": {"articles": [{"title": "runbook", "url": "https://e.x"}]}}
    await store.enqueue([NewMessage(bot="ops", payload=storm_alert(i)) for i in range(60)])
    await store.enqueue([NewMessage(bot="ops", payload=news, coalescible=True)])
    dispatcher = make_dispatcher(
        store, emu, {"ops": (key,)}, storm_interval=0, coalesce_after=0.1, lease_seconds=20
    )
    took = await run_until_drained(store, dispatcher, ["ops"], timeout=15)
    kinds = [e["payload"]["msgtype"] for e in accepted(emu, key)]
    assert kinds.count("news") == 1 and len(kinds) < 60  # the storm folded, the news sent
    assert took < 10  # not held until its lease ran out


async def test_a_summary_counts_notifications_not_the_parts_they_were_split_into(
    emu: Emu,
) -> None:
    seen: list[int] = []

    async def counting(
        briefs: Any, *, syntax: Any, max_messages: int, notifications: int, running_total: Any
    ) -> list[str]:
        seen.append(notifications)
        return await summarize_with_templates(
            briefs, syntax=syntax, max_messages=max_messages, notifications=notifications
        )

    key = new_key()
    store = MemoryOutbox()
    # One notification split into three parts (one id), and seven more of one part each.
    parts = [NewMessage(bot="ops", payload=storm_alert(0), notification_id="n-0")] * 3
    others = [
        NewMessage(bot="ops", payload=storm_alert(i), notification_id=f"n-{i}") for i in range(1, 8)
    ]
    await store.enqueue([*parts, *others])
    dispatcher = Dispatcher(
        store,
        {"ops": BotTarget(name="ops", keys=(key,), base_url=emu.url, timeout=2.0)},
        limiter=local_limiter(CLIENT_RATE),
        retry=FAST_RETRY,
        settings=DispatcherSettings(storm_burst=1, storm_interval=0.1 * WINDOW),
        summarize=counting,
    )
    await run_until_drained(store, dispatcher, ["ops"], timeout=10)
    contents = [e["payload"]["markdown"]["content"] for e in accepted(emu, key)]
    assert seen and max(seen) <= 8, seen  # never the 10 queued messages
    # Whatever form the fold took (the messages packed, or a summary), its count is of the
    # notifications: 8 at the most (one of the parts may have left on its own first).
    folded = [int(n) for c in contents for n in re.findall(r"(\d+) 条通知", c)]
    assert folded and all(n <= 8 for n in folded), contents


# --------------------------------------------------------------------------- what a fold may pack

DIGEST_HEADING = re.compile(r"^(?:\*\*)?合并 \d+/\d+ · \d+ 条通知")


def shaped_alert(i: int, name: str = "HighLatency") -> dict[str, Any]:
    """A whole single-alert message as ingest queues it: its alert and what it is."""
    brief = AlertBrief({"alertname": name, "instance": f"host-{i}"}, "firing", 1.7e9)
    content = f"## 🔥 告警 FIRING · 1 {name}\n> 标签：instance=host-{i}"
    payload = with_shape({"msgtype": "markdown", "markdown": {"content": content}}, "alerts")
    return attach(payload, [brief])


def queued_summary(first: int, count: int) -> dict[str, Any]:
    """A storm summary rendered at ingest for one notification, as queued."""
    briefs = [
        AlertBrief({"alertname": "DiskFull", "instance": f"disk-{i}"}, "firing", 1.7e9)
        for i in range(first, first + count)
    ]
    (payload,) = Renderer().render_summary(briefs).payloads
    return attach(with_shape(payload, "summary"), briefs)


def queued_parts(first: int, count: int) -> list[dict[str, Any]]:
    """One notification rendered into two parts, each carrying all its alerts."""
    briefs = [
        AlertBrief({"alertname": "PodCrash", "pod": f"pod-{i}"}, "firing", 1.7e9)
        for i in range(first, first + count)
    ]
    lines = [f"> pod: pod-{i}" for i in range(first, first + count)]
    half = len(lines) // 2
    contents = [
        "(1/2)\n## 🔥 告警 FIRING · PodCrash\n" + "\n".join(lines[:half]),
        "(2/2)\n" + "\n".join(lines[half:]),
    ]
    return [
        attach(
            with_shape({"msgtype": "markdown", "markdown": {"content": c}}, "alerts", i, 2), briefs
        )
        for i, c in enumerate(contents, 1)
    ]


class Recorder:
    """A summarizer writing with the built-in (or a given) summary template, recording what it
    was asked to write."""

    def __init__(self, renderer: Renderer | None = None) -> None:
        self.renderer = renderer or Renderer()
        self.calls: list[tuple[list[AlertBrief], Any]] = []

    async def __call__(
        self, briefs: Any, *, syntax: Any, max_messages: int, notifications: int,
        running_total: Any = None,
    ) -> list[str]:  # fmt: skip
        self.calls.append((list(briefs), running_total))
        report = self.renderer.render_summary(
            briefs, msgtype=syntax, max_messages=max_messages, notifications=notifications,
            running_total=running_total,
        )  # fmt: skip
        return [p[syntax]["content"] for p in report.payloads]


def paced(emu: Emu, store: Outbox, key: str, summarize: Recorder) -> Dispatcher:
    """A dispatcher whose first send of a quiet window leaves at once, the rest paced."""
    return Dispatcher(
        store,
        {"ops": BotTarget(name="ops", keys=(key,), base_url=emu.url, timeout=2.0)},
        limiter=local_limiter(CLIENT_RATE),
        retry=FAST_RETRY,
        settings=DispatcherSettings(storm_burst=1, storm_interval=0.1 * WINDOW),
        summarize=summarize,
    )


def carried_keys(payloads: list[dict[str, Any]]) -> set[Any]:
    return {b.key for p in payloads for b in briefs_of(p) or []}


async def test_a_backlog_of_summaries_parts_and_singles_is_written_anew_never_nested(
    emu: Emu,
) -> None:
    key = new_key()
    store = MemoryOutbox()
    plain = {"msgtype": "markdown", "markdown": {"content": "deploy 42 finished"}}
    backlog = [
        shaped_alert(0),
        queued_summary(0, 40),
        *queued_parts(0, 6),
        *[shaped_alert(i) for i in range(1, 9)],
        queued_summary(40, 40),
        plain,
    ]
    await store.enqueue(
        [NewMessage(bot="ops", payload=p, notification_id=f"n-{i}") for i, p in enumerate(backlog)]
    )
    recorder = Recorder()
    await run_until_drained(store, paced(emu, store, key, recorder), ["ops"], timeout=10)
    contents = [e["payload"]["markdown"]["content"] for e in accepted(emu, key)]

    assert contents[0] == shaped_alert(0)["markdown"]["content"]  # the burst: as it was
    digests = [c for c in contents if DIGEST_HEADING.match(c)]
    for digest in digests:  # a digest never holds a summary, nor a part of a split message
        assert "告警汇总" not in digest and "(1/2)" not in digest and "(2/2)" not in digest
    # the only digest is the plain message's line; every alert was written by the summarizer
    assert len(digests) == 1 and "deploy 42 finished" in digests[0]
    written = {b.key for briefs, _ in recorder.calls for b in briefs}
    assert written | carried_keys(backlog[:1]) == carried_keys(backlog)
    text = "\n".join(contents)
    found = {w for c in contents for w in expand(c)}
    assert {f"disk-{i}" for i in range(80)} <= {w for w in found if w.startswith("disk-")}
    assert all(f"pod-{i}" in text or f"pod-{i}" in found for i in range(6))
    assert all(ALERTS_KEY not in e["payload"] for e in accepted(emu, key))


@pytest.mark.parametrize("shaped", [True, False])
async def test_whole_single_alert_messages_are_packed_whole_only_when_they_say_so(
    emu: Emu, shaped: bool
) -> None:
    key = new_key()
    store = MemoryOutbox()
    payloads = [shaped_alert(i) if shaped else storm_alert(i) for i in range(12)]
    await store.enqueue([NewMessage(bot="ops", payload=p) for p in payloads])
    recorder = Recorder()
    await run_until_drained(store, paced(emu, store, key, recorder), ["ops"], timeout=10)
    contents = [e["payload"]["markdown"]["content"] for e in accepted(emu, key)]
    assert contents[0] == payloads[0]["markdown"]["content"]
    rest = contents[1:]
    if shaped:  # packed as they are, under a Chinese heading (the first one makes 12)
        assert rest[0].startswith("**合并 1/1 · 11 条通知 · 累计告警 12**\n\n")
        assert all(p["markdown"]["content"] in rest[0] for p in payloads[1:])
    else:  # queued without saying what they are (an earlier version): written anew
        assert not any(DIGEST_HEADING.match(c) for c in rest)
        assert any("告警汇总" in c for c in rest)
    # either way the summarizer saw the alerts
    assert {b.key for b in recorder.calls[0][0]} == carried_keys(payloads[1:])


RUNNING = (
    "{{ total }} 条"
    "{% if running_total.firing %} · 累计 {{ running_total.firing }}{% endif %}"
    "{% if running_total.resolved %} · 恢复累计 {{ running_total.resolved }}{% endif %}\n"
    "{% for g in groups %}{{ g.status }} {{ g.entries | join(' ') }}\n{% endfor %}"
)


async def until_sent(store: Outbox) -> None:
    deadline = time.monotonic() + 10
    while await store.pending_count("ops"):
        assert time.monotonic() < deadline, "not drained"
        await asyncio.sleep(0.02)


async def test_a_paced_storm_states_its_running_total_and_the_next_storm_starts_over(
    emu: Emu,
) -> None:
    key = new_key()
    store = MemoryOutbox()
    recorder = Recorder(Renderer({"summary": RUNNING}))
    dispatcher = paced(emu, store, key, recorder)

    def brief_payload(i: int, status: str = "firing") -> dict[str, Any]:
        brief = AlertBrief({"alertname": "PodDown", "pod": f"api-{i:04d}"}, status, 1.7e9)
        content = f"## PodDown {status}\n> pod: api-{i:04d}"
        return attach(
            with_shape({"msgtype": "markdown", "markdown": {"content": content}}, "alerts"),
            [brief],
        )

    async def batch(numbers: Any, status: str = "firing") -> None:
        await store.enqueue(
            [NewMessage(bot="ops", payload=brief_payload(i, status)) for i in numbers]
        )
        dispatcher.notify("ops")
        await until_sent(store)

    await dispatcher.start()
    try:
        # 1,000 alerts in five batches; each batch also repeats 20 alerts already sent
        for k in range(5):
            repeats = range(max(k * 200 - 20, 0), k * 200)
            await batch([*repeats, *range(k * 200, (k + 1) * 200)])
        firing_calls = len(recorder.calls)
        for k in range(2):  # then they resolve, in two batches
            await batch(range(k * 500, (k + 1) * 500), "resolved")
        resolved_calls = recorder.calls[firing_calls:]
        # quiet for more than a rate window: the storm is over
        await asyncio.sleep(1.5 * WINDOW)
        await batch(range(2000, 2050))
    finally:
        await dispatcher.stop()

    # Every summary's running total is the number of distinct alerts delivered so far: the
    # first message left on its own (the burst), the summaries count each alert once.
    truth: set[Any] = {brief_payload(0)[ALERTS_KEY][0]["l"]["pod"]}
    stated = []
    for briefs, total in recorder.calls[:firing_calls]:
        truth |= {b.labels["pod"] for b in briefs}
        assert total == {"firing": len(truth)}, (total, len(truth))
        stated.append(total["firing"])
    assert stated[-1] == 1000 and stated == sorted(stated)
    # the resolve phase counts its own: the first part needs no running total
    assert resolved_calls[0][1] is None or "firing" not in resolved_calls[0][1]
    assert resolved_calls[-1][1] == {"resolved": 1000}
    # the next storm starts from zero: its first message and its summary, 50 in all
    assert recorder.calls[-1][1] == {"firing": 50}
    contents = [e["payload"]["markdown"]["content"] for e in accepted(emu, key)]
    assert any(
        c.startswith(f"{len(recorder.calls[firing_calls - 1][0])} 条 · 累计 1000") for c in contents
    )
    assert any("恢复累计 1000" in c for c in contents)
    # its 49 whole messages fit one digest: packed as they are, the heading says the total
    assert contents[-1].startswith("**合并 1/1 · 49 条通知 · 累计告警 50**")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["single", "legacy", "summary", "parts", "plain"]), st.integers(1, 30)
        ),
        min_size=2,
        max_size=25,
    ),
    st.integers(1, 6),
)
def test_property_a_fold_packs_only_whole_single_alert_messages_and_keeps_every_alert(
    kinds: list[tuple[str, int]], share: int
) -> None:
    payloads: list[dict[str, Any]] = []
    for n, (kind, size) in enumerate(kinds):
        base = n * 100
        if kind == "single":
            payloads.append(shaped_alert(base))
        elif kind == "legacy":
            payloads.append(storm_alert(base))
        elif kind == "summary":
            payloads.append(queued_summary(base, size))
        elif kind == "parts":
            payloads.extend(queued_parts(base, size + 1))
        else:
            payloads.append({"msgtype": "markdown", "markdown": {"content": f"deploy {n} done"}})

    async def fold() -> tuple[list[dict[str, Any]], str, Recorder]:
        store = MemoryOutbox()
        await store.enqueue([NewMessage(bot="ops", payload=p) for p in payloads])
        records = await store.claim("ops", limit=len(payloads), lease_seconds=30)
        recorder = Recorder()
        dispatcher = Dispatcher(
            store, {"ops": BotTarget(name="ops", keys=("k",))}, limiter=local_limiter(),
            summarize=recorder,
        )  # fmt: skip
        out, form = await dispatcher._fold("ops", "markdown", records, share)
        return out, form, recorder

    out, form, recorder = asyncio.run(fold())
    contents = [p["markdown"]["content"] for p in out]
    carried = carried_keys(payloads)
    event(form)
    plain = [p for p in payloads if briefs_of(p) is None]
    if not carried:  # plain messages only: packed whole, or a line each, as before
        assert recorder.calls == [] and form in ("full", "compact")
    elif form == "full":
        assert all(kind == "single" for kind, _ in kinds)
        assert all(p["markdown"]["content"] in "\n".join(contents) for p in payloads)
    else:
        for content in contents:
            if DIGEST_HEADING.match(content):  # only the plain messages' lines
                assert "告警汇总" not in content and "(1/2)" not in content
        (call,) = recorder.calls
        assert {b.key for b in call[0]} == carried  # every alert, each once
        assert len(call[0]) == len(carried)
    assert all(p["markdown"]["content"] in "\n".join(contents) for p in plain)


def graph(marked: bool) -> dict[str, Any]:
    import base64
    import hashlib

    from tests.images import png_bytes

    data = png_bytes(8, 8)
    payload: dict[str, Any] = {"msgtype": "image", "image": {
        "base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()}}
    if marked:
        payload[STORM_GRAPH_KEY] = True
    return payload


async def test_graphs_queued_at_rest_are_dropped_once_a_storm_begins(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    dispatcher = make_dispatcher(
        store, emu, {"ops": (key,)}, storm_burst=2, storm_interval=0.1 * WINDOW
    )
    dropped: list[str] = []
    dispatcher.observer.dropped = lambda bot, record, reason: dropped.append(reason)  # type: ignore[method-assign]
    # Two alerts fill the burst; then a graph queued at rest, one let through a storm, and
    # alerts that keep the storm going.
    await dispatcher.start()
    try:
        await store.enqueue([NewMessage(bot="ops", payload=storm_alert(i)) for i in range(2)])
        dispatcher.notify("ops")
        deadline = time.monotonic() + 10
        while await store.pending_count("ops") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await store.enqueue([
            NewMessage(bot="ops", payload=graph(False), priority=Priority.GRAPH),
            NewMessage(bot="ops", payload=graph(True), priority=Priority.GRAPH),
            *[NewMessage(bot="ops", payload=storm_alert(i)) for i in range(2, 6)],
        ])  # fmt: skip
        dispatcher.notify("ops")
        deadline = time.monotonic() + 10
        while await store.pending_count("ops") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
    kinds = [e["payload"]["msgtype"] for e in accepted(emu, key)]
    assert kinds.count("image") == 1  # the marked one
    assert all(STORM_GRAPH_KEY not in e["payload"] for e in accepted(emu, key))
    assert len(dropped) == 1 and "a storm began" in dropped[0]
