"""Hostile templates against a running gateway: refused quickly, probes answer throughout, the
gateway's memory stays where it was, a configured one is dead-lettered with the reason, and
SIGTERM stops a gateway whatever a render is doing (issue 18)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.harness import (
    GatewayProcess,
    gateway_config,
    one_alert,
    running_gateway,
    wait_for,
    write_config,
)
from tests.redis_server import free_port
from wecom_bot.gateway.intake.inbox import INBOX_BOT
from wecom_bot.gateway.intake.sources import parse_generic
from wecom_bot.gateway.templates.render_pool import RenderPool
from wecom_bot.gateway.templates.renderer import RendererSettings, TemplateLimitError
from wecom_bot.gateway.templates.sandbox import RenderLimits
from wecom_bot.store.sqlite import SQLiteOutbox

KEY = "0123456789abcdef0123456789abcdef0123"
NOWHERE = "http://127.0.0.1:9"  # nothing is delivered in these tests

HOSTILE = {
    "repeat": "{{ 'x' * 200000000 }}",
    "ljust": "{{ raw.title.ljust(1000000000) }}",
    "doubling list": (
        "{% set x=['aaaaaaaa'] %}{% for i in range(40) %}{% set _=x.extend(x) %}{% endfor %}"
    ),
    "nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"
    ),
    "format width": "{{ '{:>1000000000}'.format(raw.title) }}",
    "doubling text": (
        "{% set ns = namespace(s=raw.title) %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "macro buffer": (
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 900000 }}{% endfor %}{% endmacro %}"
        "{% set y = m() %}{{ y|length }}"
    ),
    "big integer": "{{ 7 ** (10 ** 9) }}",
}


def rss_mib() -> float:
    """This process's resident memory (the in-process gateway's), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Prober:
    """Polls ``/healthz`` in a thread, recording the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.failures: list[str] = []
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    self.failures.append(repr(exc))
                took = time.monotonic() - started
                self.slowest = max(self.slowest, took)
                self.count += 1
                if not ok:
                    self.failures.append(f"healthz failed after {took:.2f}s")
                self._stop.wait(0.05)

    def __enter__(self) -> Prober:
        self._thread.start()
        wait_for(lambda: self.count >= 1, timeout=10, what="the first probe")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)


def render(client: httpx.Client, source: str) -> httpx.Response:
    return client.post(
        "/api/v1/playground/render",
        json={"payload": {"title": "hello"}, "source": "generic", "msgtype": "text",
              "template_source": source},
    )  # fmt: skip


def routed_config(database: Path, template: str, **limits: Any) -> Any:
    """Every notification rendered by the configured ``template``, under ``limits`` (steps
    unbounded, so that the time limit is the one reached)."""
    return gateway_config(
        NOWHERE, KEY, f"sqlite:///{database}",
        templates={"mine": template},
        template_limits={"max_steps": 10**9, **limits},
        default_route={"name": "default", "bots": ["ops"], "template": "mine"},
        routes=[],
    )  # fmt: skip


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = tmp_path_factory.mktemp("render") / "outbox.db"
    config = gateway_config(NOWHERE, KEY, f"sqlite:///{store}")
    with running_gateway(config) as gw:
        warm = render(gw.client, "warm {{ raw.title }}")  # the worker starts on first use
        assert warm.status_code == 200, warm.text
        yield gw


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_playground_template_is_refused_while_probes_answer(
    gateway: Any, name: str
) -> None:
    before = rss_mib()
    with Prober(gateway.url) as prober:
        started = time.monotonic()
        answer = render(gateway.client, HOSTILE[name])
        took = time.monotonic() - started
    assert answer.status_code == 422, answer.text
    assert "render limits" in answer.json()["error"], answer.text
    assert took < 5.0, f"refused after {took:.1f}s"
    assert not prober.failures
    assert prober.slowest < 1.0, f"/healthz took {prober.slowest:.2f}s during the render"
    assert rss_mib() - before < 100, "the gateway's own memory grew"
    # The worker is fine afterwards: an ordinary template renders.
    fine = render(gateway.client, "still {{ raw.title }}")
    assert fine.status_code == 200 and fine.json()["parts"][0]["payload"]["text"]["content"] == (
        "still hello"
    )


def test_a_configured_template_past_its_limits_is_dead_lettered_with_the_reason(
    tmp_path: Path,
) -> None:
    config = routed_config(tmp_path / "outbox.db", HOSTILE["nested loops"], timeout="1s")
    with running_gateway(config) as gw, Prober(gw.url) as prober:
        accepted = gw.post("/alertmanager", one_alert("Slow"))
        assert accepted.status_code == 200, accepted.text

        def dead() -> list[dict[str, Any]]:
            answer = gw.client.get("/api/v1/dead-letters")
            items: list[dict[str, Any]] = answer.json()["dead_letters"]
            return items

        wait_for(lambda: bool(dead()), timeout=30, what="the notification in dead letters")
        [item] = dead()
        assert "mine" in item["last_error"] and "took longer than 1 s" in item["last_error"], item
        assert gw.client.get("/readyz").status_code == 200
    assert not prober.failures and prober.slowest < 1.0, prober.slowest


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_sigterm_stops_the_gateway_during_a_hostile_render(tmp_path: Path) -> None:
    config = gateway_config(
        NOWHERE, KEY, f"sqlite:///{tmp_path / 'outbox.db'}",
        template_limits={"playground_timeout": "120s", "max_steps": 10**9},
    )  # fmt: skip
    gateway = GatewayProcess(write_config(tmp_path / "gateway.yaml", config), free_port())
    gateway.start()
    try:
        assert gateway.proc is not None
        results: list[Any] = []

        def hostile() -> None:
            try:
                with httpx.Client(base_url=gateway.url, timeout=60) as client:
                    results.append(render(client, HOSTILE["nested loops"]).status_code)
            except httpx.HTTPError as exc:
                results.append(exc)

        thread = threading.Thread(target=hostile, daemon=True)
        thread.start()
        wait_for(lambda: bool(_children(gateway.proc.pid)), timeout=30, what="a render worker")
        workers = _children(gateway.proc.pid)
        time.sleep(2.0)  # well into the render
        assert httpx.get(gateway.url + "/healthz", timeout=1).status_code == 200
        started = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)
        gateway.proc.wait(15)
        took = time.monotonic() - started
        assert took < 10, f"stopped {took:.1f}s after SIGTERM"
        wait_for(lambda: all(_gone(w) for w in workers), timeout=5, what="the workers to end")
        thread.join(10)
    finally:
        gateway.kill()
    assert os.path.exists(gateway.log)


def test_a_notification_whose_render_is_abandoned_at_stop_stays_in_the_journal(
    tmp_path: Path,
) -> None:
    database = tmp_path / "outbox.db"
    config = routed_config(database, HOSTILE["nested loops"], timeout="120s")
    with running_gateway(config) as gw:
        assert gw.post("/alertmanager", one_alert("Slow")).status_code == 200
        pool = gw.app.state.gateway.render_pool
        busy = pool.processes
        wait_for(lambda: busy.idle == 0 and busy.started, what="the render to start")
        time.sleep(1.0)
        started = time.monotonic()
    stopped = time.monotonic() - started
    assert stopped < 10, f"stopping took {stopped:.1f}s"

    async def journal() -> tuple[int, int]:
        outbox = SQLiteOutbox(database)
        try:
            # Claimable at once (given back, not left leased): the next start renders it.
            claimed = await outbox.claim(INBOX_BOT, limit=10, lease_seconds=30, now=time.time())
            return len(claimed), await outbox.dead_count()
        finally:
            await outbox.close()

    assert asyncio.run(journal()) == (1, 0)  # kept for the next start, not dead-lettered


def test_a_hostile_playground_render_does_not_hold_up_notifications(tmp_path: Path) -> None:
    plain = "{{ title }}: {{ alerts|length }} alert(s)"
    config = routed_config(tmp_path / "outbox.db", plain, playground_timeout="60s")
    with running_gateway(config) as gw:

        def hostile() -> None:
            with httpx.Client(base_url=gw.url, timeout=90) as client:
                render(client, HOSTILE["nested loops"])

        busy = threading.Thread(target=hostile, daemon=True)
        busy.start()
        pool = gw.app.state.gateway.playground_pool
        workers = pool.processes
        wait_for(lambda: workers.idle == 0 and workers.started, what="the playground render")
        started = time.monotonic()
        answer = gw.post("/alertmanager?wait=true", one_alert("Meanwhile"))
        took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["messages"] == 1
        assert took < 30, f"rendered after {took:.1f}s"  # not after the playground's 60 s
        assert busy.is_alive()  # the hostile render was still going on


def test_a_render_past_the_workers_memory_limit_fails_and_the_pool_renders_on() -> None:
    # Sandbox budgets opened wide: only the worker's address-space limit stands in the way.
    wide = RenderLimits(timeout=20, max_text=10**10, max_built=10**11)
    settings = RendererSettings(templates=(("big", "{{ ('x' * 400000000)|length }}"),), limits=wide)
    notification = parse_generic("hook", {"title": "hello"})
    pool = RenderPool(workers=1, memory_bytes=256 << 20)

    async def run() -> None:
        now = datetime.now(UTC)
        with pytest.raises(TemplateLimitError, match="memory"):
            await pool.render_check(settings, "big", notification, msgtype="text", now=now)
        small = replace(settings, templates=(("big", "{{ raw.title }}"),))
        report = await pool.render_check(small, "big", notification, msgtype="text", now=now)
        assert report.content == "hello"

    try:
        asyncio.run(run())
    finally:
        pool.close()


SLOW_FILTERS = (  # each filter call builds 1 MB: few steps, much time
    "{% set s = 'ab ' * 300000 %}{% for i in range(31) %}{% set _ = s|wordwrap(2) %}"
    "{% endfor %}"
)


def storm_of(count: int) -> dict[str, Any]:
    """One notification with more alerts than a message lists (it renders as a summary)."""
    payload = one_alert("Storm")
    first = payload["alerts"][0]
    payload["alerts"] = [
        {**first, "labels": {**first["labels"], "instance": f"host-{i}"}, "fingerprint": str(i)}
        for i in range(count)
    ]
    return payload


def test_a_configured_summary_renders_in_the_pool_even_when_the_route_uses_a_builtin(
    tmp_path: Path,
) -> None:
    config = gateway_config(
        NOWHERE, KEY, f"sqlite:///{tmp_path / 'outbox.db'}",
        templates={"summary": SLOW_FILTERS},
        template_limits={"max_steps": 10**9, "timeout": "1s"},
        routes=[],
    )  # fmt: skip
    with running_gateway(config) as gw, Prober(gw.url) as prober:
        accepted = gw.post("/alertmanager", storm_of(25))
        assert accepted.status_code == 200, accepted.text
        nid = accepted.json()["notification_id"]

        def entry() -> dict[str, Any] | None:
            found = gw.client.get(f"/api/v1/history/{nid}")
            return found.json() if found.status_code == 200 else None

        # Stopped in its worker at its budget; the storm is written by the built-in summary
        # instead (never lost to its summary template), not dead-lettered.
        wait_for(lambda: entry() is not None, timeout=30, what="the storm rendered")
        found = entry()
        assert found is not None and found["state"] != "failed", found
        [message] = found["messages"]
        assert "Storm" in str(message["payload"]), message
        assert gw.client.get("/api/v1/dead-letters").json()["dead_letters"] == []
    assert not prober.failures and prober.slowest < 1.0, prober.slowest


def test_a_summary_the_dispatcher_folds_renders_in_a_worker_not_in_the_event_loop() -> None:
    from wecom_bot.storm import AlertBrief

    limits = RenderLimits(timeout=1, max_steps=10**9)
    settings = RendererSettings(templates=(("summary", SLOW_FILTERS),), limits=limits)
    briefs = [AlertBrief({"alertname": "X", "instance": f"h-{i}"}, "firing") for i in range(30)]
    pool = RenderPool(workers=1, memory_bytes=512 << 20)

    async def run() -> float:
        gaps: list[float] = []

        async def heartbeat() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.05)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        beat = asyncio.create_task(heartbeat())
        with pytest.raises(TemplateLimitError, match="took longer than 1 s"):
            await pool.render_summary(settings, briefs, msgtype="markdown", now=datetime.now(UTC))
        beat.cancel()
        return max(gaps)

    try:
        assert asyncio.run(run()) < 0.5  # the loop kept turning while the worker rendered
    finally:
        pool.close()
