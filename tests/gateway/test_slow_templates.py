"""A configured template that is slow on some payload does not hold up the journal.

Through the real HTTP app (render pool, emulator, SQLite): while a template renders past its
time budget, the notifications behind it are rendered and delivered; it becomes a dead letter
naming the bound, the template is cut off, and while it is the built-in template renders
instead. A configured ``summary`` template that fails gives way to the built-in summary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    content_of,
    emulator_contents,
    gateway_config,
    one_alert,
    running_gateway,
    wait_for,
)
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.intake.inbox import INBOX_BOT
from wecom_bot.gateway.intake.sources import parse_alertmanager
from wecom_bot.gateway.runtime import build_runtime
from wecom_bot.gateway.templates.summaries import briefs_of_notification

# Endless for an alert named Slow (no start-up sample is named so), instant for any other.
SLOW = (
    '{% if common_labels.alertname == "Slow" %}{% for i in range(1000000) %}'
    "{% for j in range(1000000) %}{% endfor %}{% endfor %}{% endif %}"
    "ok {{ common_labels.alertname }}"
)
# Fails for a storm of exactly seven alerts (no start-up sample has seven).
BROKEN_SUMMARY = "{% if total == 7 %}{{ 1 // (total - 7) }}{% endif %}mine: {{ total }} alerts"
LIMITS = {"timeout": "3s", "max_steps": 10**11, "max_built": 10**11}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


def _alert(name: str, team: str, n: int = 0) -> dict[str, Any]:
    payload = one_alert(name, team)
    payload["alerts"][0]["labels"]["n"] = str(n)  # a distinct notification per n
    payload["alerts"][0]["fingerprint"] = f"{name}-{n}"
    return payload


def _state(gw: Any, nid: str) -> str:
    found = gw.client.get(f"/api/v1/history/{nid}")
    return str(found.json()["state"]) if found.status_code == 200 else "none"


def test_a_slow_template_does_not_hold_up_the_journal_and_is_cut_off(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    key = new_key()
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", coalesce_after="1h", rate="50/1s",
        templates={"slow": SLOW}, template_limits=LIMITS,
        routes=[{"name": "slow", "matchers": ['team="slow"'], "bots": ["ops"],
                 "template": "slow"}],
    )  # fmt: skip
    with running_gateway(config) as gw:
        slow = gw.post("/alertmanager", _alert("Slow", "slow"))
        assert slow.status_code == 200
        slow_id = slow.json()["notification_id"]
        names = [f"Behind{i}" for i in range(5)]
        ids = [gw.post("/alertmanager", _alert(n, "web")).json()["notification_id"] for n in names]

        def behind_delivered() -> bool:
            return all(_state(gw, nid) == "delivered" for nid in ids)

        wait_for(behind_delivered, what="the notifications behind the slow one")
        # They were delivered while the slow one was still rendering: it has not ended yet.
        assert _state(gw, slow_id) == "none"
        assert gw.metric("wecom_bot_inbox_dead_letters") == 0
        texts = [content_of(p) for p in emulator_contents(emu, key)]
        assert all(any(n in t for t in texts) for n in names)
        assert not any("Slow" in t for t in texts)

        # Stopped at its budget: a dead letter naming the bound, in history as failed.
        wait_for(lambda: _state(gw, slow_id) == "failed", what="the slow one dead-lettered")
        entry = gw.client.get(f"/api/v1/history/{slow_id}").json()
        assert "took longer than 3 s" in entry["detail"]["error"]
        dead = gw.client.get("/api/v1/dead-letters", params={"bot": INBOX_BOT}).json()
        assert dead["total"] == 1
        assert "took longer than 3 s" in dead["dead_letters"][0]["last_error"]
        assert "cut off" in caplog.text

        # Cut off now: the next notification for that template renders with the built-in one
        # at once instead of taking the worker for its whole budget again.
        again = gw.post("/alertmanager", _alert("Slow", "slow", 1)).json()["notification_id"]
        wait_for(lambda: _state(gw, again) == "delivered", what="the cut-off one, built-in")
        [built_in] = [t for t in map(content_of, emulator_contents(emu, key)) if "Slow" in t]
        assert "ok Slow" not in built_in  # not the configured template's output
        assert gw.metric("wecom_bot_inbox_dead_letters") == 1
        assert gw.metric("wecom_bot_inbox_depth") == 0


def test_a_failing_configured_summary_falls_back_to_the_built_in_one(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    key = new_key()
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", coalesce_after="1h",
        templates={"summary": BROKEN_SUMMARY}, max_alerts_per_message=3,
    )  # fmt: skip
    storm = _alert("Storm", "web")
    storm["alerts"] = [
        {**storm["alerts"][0], "labels": {"alertname": "Storm", "team": "web", "i": str(i)},
         "fingerprint": f"storm-{i}"}
        for i in range(7)
    ]  # fmt: skip
    with running_gateway(config) as gw:
        nid = gw.post("/alertmanager", storm).json()["notification_id"]
        wait_for(lambda: _state(gw, nid) == "delivered", what="the storm, summarized")
        [text] = [content_of(p) for p in emulator_contents(emu, key)]
        assert "Storm" in text and "mine:" not in text  # the built-in summary
        assert gw.metric("wecom_bot_inbox_dead_letters") == 0
        assert "the configured summary template failed" in caplog.text
        # Six alerts: the configured summary works, and is used.
        six = dict(storm, alerts=storm["alerts"][:6], groupKey="six")
        six_id = gw.post("/alertmanager", six).json()["notification_id"]
        wait_for(lambda: _state(gw, six_id) == "delivered", what="six alerts, summarized")
        assert "mine: 6 alerts" in [content_of(p) for p in emulator_contents(emu, key)]


async def test_digest_summaries_fall_back_to_the_built_in_one_too() -> None:
    config = gateway_config(
        "http://127.0.0.1:9", new_key(), "memory://", templates={"summary": BROKEN_SUMMARY}
    )
    runtime = build_runtime(config, store=None, metrics=None, clock=lambda: 1.8e9)
    storm = _alert("Storm", "web")
    storm["alerts"] = [
        {**storm["alerts"][0], "labels": {"alertname": "Storm", "i": str(i)}} for i in range(7)
    ]
    briefs = briefs_of_notification(parse_alertmanager(storm))
    contents = await runtime.summarize(briefs, syntax="markdown", max_messages=2, notifications=1)
    assert contents and "Storm" in contents[0] and "mine:" not in contents[0]
    six = await runtime.summarize(briefs[:6], syntax="markdown", max_messages=2, notifications=1)
    assert six == ["mine: 6 alerts"]
