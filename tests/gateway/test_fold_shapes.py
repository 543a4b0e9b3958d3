"""What ingest tells the dispatcher about a queued message, and the running total's way into
the summary template (in the event loop and in a render worker)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.conftest import new_key
from tests.gateway.harness import gateway_config, one_alert
from wecom_bot.digest import SHAPE_KEY, packable
from wecom_bot.gateway.intake.ingest import plan
from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic
from wecom_bot.gateway.runtime import build_runtime
from wecom_bot.gateway.templates.render_pool import RenderPool
from wecom_bot.storm import AlertBrief, briefs_of, detach

NOW = 1.8e9


def storm(count: int, description: str = "") -> dict[str, Any]:
    """One notification of ``count`` alerts named ``Storm``."""
    payload = one_alert("Storm")
    first = payload["alerts"][0]
    payload["alerts"] = [
        {
            **first,
            "labels": {**first["labels"], "instance": f"host-{i}"},
            "annotations": {**first["annotations"], "description": description},
            "fingerprint": f"storm-{i}",
        }
        for i in range(count)
    ]
    return payload


async def queued(payload: dict[str, Any]) -> list[dict[str, Any]]:
    config = gateway_config("http://127.0.0.1:9", new_key(), "memory://")
    runtime = build_runtime(config, store=None, metrics=None, clock=lambda: NOW)
    planned = await plan(runtime, parse_alertmanager(payload), None, now=NOW)
    return [m.payload for m in planned.messages]


async def test_a_whole_message_written_per_alert_says_so() -> None:
    (payload,) = await queued(storm(2))
    assert payload[SHAPE_KEY] == {"form": "alerts", "part": 1, "parts": 1}
    assert packable(payload) and len(briefs_of(payload) or []) == 2
    assert SHAPE_KEY not in detach(payload)  # never sent


async def test_a_storm_summary_says_it_is_one() -> None:
    (payload,) = await queued(storm(30))  # past max_alerts_per_message (20)
    assert "告警汇总" in payload["markdown"]["content"]
    assert payload[SHAPE_KEY]["form"] == "summary" and not packable(payload)


async def test_each_part_of_a_split_notification_says_which_it_is() -> None:
    # one alert is always written by its route's template: a long one is split in parts
    payloads = await queued(storm(1, "x" * 9000))
    assert len(payloads) > 1
    shapes = [p[SHAPE_KEY] for p in payloads]
    assert shapes == [
        {"form": "alerts", "part": i, "parts": len(payloads)} for i in range(1, len(payloads) + 1)
    ]
    assert not any(packable(p) for p in payloads)
    # each part carries every alert of the notification, for a summary written anew
    assert all(len(briefs_of(p) or []) == 1 for p in payloads)


async def test_a_message_that_carries_no_alerts_is_left_as_it_was() -> None:
    config = gateway_config("http://127.0.0.1:9", new_key(), "memory://")
    runtime = build_runtime(config, store=None, metrics=None, clock=lambda: NOW)
    notification = parse_generic("deploy", {"title": "deploy 42", "text": "done"})
    planned = await plan(runtime, notification, "webhook:deploy", now=NOW)
    (message,) = planned.messages
    assert SHAPE_KEY not in message.payload and briefs_of(message.payload) is None


RUNNING = (
    "{{ total }} 条"
    "{% if running_total.firing %} · 累计 {{ running_total.firing }}{% endif %}"
    "{% if running_total.resolved %} · 恢复累计 {{ running_total.resolved }}{% endif %}"
    "{% if not running_total %} · 首批{% endif %}"
)


@pytest.mark.parametrize("in_worker", [False, True])
async def test_the_summary_template_reads_the_running_total(in_worker: bool) -> None:
    config = gateway_config(
        "http://127.0.0.1:9", new_key(), "memory://", templates={"summary": RUNNING}
    )
    pool = RenderPool(workers=1, memory_bytes=512 << 20) if in_worker else None
    runtime = build_runtime(config, store=None, metrics=None, clock=lambda: NOW, render_pool=pool)
    briefs = [AlertBrief({"alertname": "X", "instance": f"h-{i}"}, "firing") for i in range(30)]
    briefs += [AlertBrief({"alertname": "X", "instance": f"h-{i}"}, "resolved") for i in range(5)]
    try:

        async def write(running: Any) -> list[str]:
            return await runtime.summarize(
                briefs, syntax="markdown", max_messages=2, notifications=3, running_total=running
            )

        assert await write({"firing": 1000, "resolved": 386}) == [
            "35 条 · 累计 1000 · 恢复累计 386"
        ]
        assert await write({"firing": 1000}) == ["35 条 · 累计 1000"]
        assert await write(None) == ["35 条 · 首批"]
        # a total no more than the summary's own count is not stated
        assert await write({"firing": 30, "resolved": 5}) == ["35 条 · 首批"]
    finally:
        if pool is not None:
            pool.close()
