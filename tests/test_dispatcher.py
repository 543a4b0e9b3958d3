"""The dispatcher over real HTTP against the emulator, with scaled windows on both sides."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from wecom_bot.dispatcher import BotTarget, Dispatcher, DispatcherSettings, local_limiter
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.templates.renderer import Renderer, TemplateRenderError
from wecom_bot.masking import key_fingerprint
from wecom_bot.repeats import MAY_REPEAT
from wecom_bot.retry import RetryPolicy
from wecom_bot.store import MemoryOutbox, NewMessage, Outbox, OutboxRecord, open_store
from wecom_bot.storm import ALERTS_KEY, AlertBrief, attach, expand

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


async def test_permanent_rejection_is_dead_lettered_with_the_reason(emu: Emu) -> None:
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
    briefs: Any, *, syntax: Any, max_messages: int, notifications: int
) -> list[str]:
    report = Renderer().render_summary(
        briefs, msgtype=syntax, max_messages=max_messages, notifications=notifications
    )
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
        briefs: Any, *, syntax: Any, max_messages: int, notifications: int
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
        briefs: Any, *, syntax: Any, max_messages: int, notifications: int
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
        NewMessage(bot="ops", payload=storm_alert(i), notification_id=f"n-{i}")
        for i in range(1, 8)
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
    folded = [
        int(n) for c in contents for n in re.findall(r"(\d+) (?:条通知合并|notifications)", c)
    ]
    assert folded and all(n <= 8 for n in folded), contents
