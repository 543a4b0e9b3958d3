"""Several gateway instances sharing one Redis: one queue, one rate limit, no double sends,
and the loss of an instance loses nothing (issue 7)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    GatewayProcess,
    gateway_config,
    one_alert,
    wait_for,
    write_config,
)
from tests.redis_server import free_port, redis_server
from tests.test_dispatcher import all_entries, max_in_window
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec

pytestmark = [pytest.mark.redis, pytest.mark.slow]
WINDOW = 1.0


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def notification(team: str, i: int) -> dict[str, Any]:
    return one_alert(f"Storm-{team}-{i:03d}", team)


def accepted_texts(emu: Emu, key: str) -> list[dict[str, Any]]:
    return [e for e in all_entries(emu, key) if e["status"] == "accepted"]


def test_three_instances_one_limit_nothing_lost_when_one_is_killed(
    emu: Emu, tmp_path: Path, redis_url: str
) -> None:
    keys = {"a": new_key(), "b": new_key()}
    config = gateway_config(
        emu.url,
        keys["a"],
        redis_url,
        rate="20/1s",
        lease="2s",
        coalesce_after="2s",
        bots={"a": {"key": keys["a"]}, "b": {"key": keys["b"]}},
        routes=[
            {"name": "team-a", "matchers": ['team="a"'], "bots": ["a"]},
            {"name": "team-b", "matchers": ['team="b"'], "bots": ["b"]},
        ],
        default_route={"name": "default", "bots": ["a"]},
        webhooks={},
    )
    path = write_config(tmp_path / "gw.yaml", config)
    gateways = [GatewayProcess(path, free_port()) for _ in range(3)]
    for gateway in gateways:
        gateway.start()
    sent: list[str] = []
    try:
        cycle = itertools.cycle(gateways)
        with httpx.Client(timeout=10) as client:
            for i in range(150):
                for team in ("a", "b"):
                    target = next(cycle)
                    if target is gateways[1] and i == 60:
                        target.kill()  # SIGKILL mid-storm
                    if target.proc is not None and target.proc.poll() is not None:
                        target = gateways[0]  # what a load balancer would do
                    answer = client.post(target.url + "/alertmanager", json=notification(team, i))
                    assert answer.status_code == 200, answer.text
                    sent.append(f"Storm-{team}-{i:03d}")

        def delivered() -> bool:
            text = {
                team: "\n".join(
                    e["payload"]["markdown"]["content"] for e in accepted_texts(emu, key)
                )  # fmt: skip
                for team, key in keys.items()
            }
            return all(name in text[name.split("-")[1]] for name in sent)

        wait_for(delivered, timeout=90, what="every accepted alert in the emulator")
    finally:
        for gateway in gateways:
            gateway.stop()

    for team, key in keys.items():
        entries = all_entries(emu, key)
        accepted = [e for e in entries if e["status"] == "accepted"]
        assert max_in_window([e["received_at"] for e in accepted], WINDOW) <= 20
        real_limits = [e for e in entries if e["errcode"] == 45009 and not e["injected"]]
        assert len(real_limits) <= 2, f"bot {team}: {len(real_limits)} real 45009 answers"
        # a message is sent twice only if it was in flight in the killed instance
        repeats = sum(n - 1 for n in Counter(
            e["payload"]["markdown"]["content"] for e in accepted).values())  # fmt: skip
        assert repeats <= 1, f"bot {team}: {repeats} repeated messages"
        for name in sent:
            if f"-{team}-" in name:
                assert any(name in e["payload"]["markdown"]["content"] for e in accepted)
