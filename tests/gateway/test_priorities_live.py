"""The 20 messages a minute go to what matters first, on real servers: with 2,000 alert groups
escalating at once, a new alert still reaches the group within one rate window, and the
escalations arrive folded (every group counted once), never more than the rate allows.

The rate is 20 per 6 s (ten times WeCom's speed) on the gateway and the emulator alike, so
"within a minute" reads "within 6 s" here. SQLite and a real redis-server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import gateway_config, group_alert, running_gateway, wait_for
from tests.redis_server import redis_server
from tests.test_dispatcher import all_entries
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec

pytestmark = pytest.mark.slow

WINDOW = 6.0
GROUPS = 2000
ESCALATE_AFTER = 20.0
FOLDED = re.compile(r"(\d+) 组告警仍未认领")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


def _accepted(emu: Emu, key: str) -> list[tuple[float, str]]:
    out = []
    for entry in all_entries(emu, key):
        assert entry["status"] == "accepted", entry  # no 45009, nothing refused
        payload = entry["payload"]
        out.append((entry["received_at"], str(payload[payload["msgtype"]].get("content", ""))))
    return out


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.db'}"
        return
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as url:
        yield url


def test_a_new_alert_goes_before_thousands_of_escalations(emu: Emu, store_url: str) -> None:
    key = new_key()
    config = gateway_config(
        emu.url, key, store_url, rate=f"20/{WINDOW:g}s", external_url="http://127.0.0.1:1",
        actions={"secret": "a-priorities-secret-long-enough"},
        routes=[{"name": "paging", "matchers": ['severity="critical"'], "bots": ["ops"],
                 "escalate": [{"after": f"{ESCALATE_AFTER:g}s", "mention": ["lead"]}]}],
    )  # fmt: skip
    with running_gateway(config) as gw:
        opened = time.time()
        for i in range(GROUPS):
            assert gw.post("/alertmanager", group_alert("DiskFull", f"host-{i}")).status_code == 200
        # The storm of the groups' own alerts is delivered (folded) first; then every group
        # escalates ESCALATE_AFTER after it opened, and new alerts arrive while they do.
        wait_for(
            lambda: gw.metric("wecom_bot_inbox_depth") + gw.metric("wecom_bot_queue_depth") == 0,
            timeout=90, what="the storm's own alerts delivered",
        )  # fmt: skip
        time.sleep(max(opened + ESCALATE_AFTER - time.time(), 0))
        latencies = []
        for n in range(5):
            time.sleep(1.0)
            posted = time.time()
            assert gw.post("/alertmanager", group_alert(f"NewOutage{n}", "db-1")).status_code == 200
            wait_for(
                lambda n=n: any(f"NewOutage{n}" in text for _, text in _accepted(emu, key)),
                timeout=3 * WINDOW, what=f"new alert {n}",
            )  # fmt: skip
            arrived = min(at for at, text in _accepted(emu, key) if f"NewOutage{n}" in text)
            latencies.append(arrived - posted)

        def escalated() -> int:
            counted = 0
            for _, text in _accepted(emu, key):
                folded = FOLDED.search(text)
                counted += int(folded[1]) if folded else ("升级 Escalation · " in text)
            return counted

        wait_for(lambda: escalated() >= GROUPS + 5, timeout=120, what="every escalation")
        messages = _accepted(emu, key)

    escalation_messages = sum(1 for _, t in messages if "升级 Escalation" in t)
    print(f"new-alert latencies {[round(x, 2) for x in latencies]} s; {escalation_messages} "
          f"escalation messages for {GROUPS + 5} groups")  # fmt: skip
    assert max(latencies) <= WINDOW + 2, latencies
    escalations = [(at, t) for at, t in messages if "升级 Escalation" in t]
    folds = [t for _, t in escalations if FOLDED.search(t)]
    # 2,005 groups escalated; each counted once, in a few folded messages.
    assert escalated_count(escalations) == GROUPS + 5
    assert len(escalations) <= GROUPS // 25, len(escalations)  # folded: 25 groups a message or more
    assert folds and all(t.rstrip().endswith("<@lead>") for t in folds)
    times = sorted(at for at, _ in messages)
    busiest = max(sum(1 for t in times if start <= t < start + WINDOW) for start in times)
    assert busiest <= 20


def escalated_count(escalations: list[tuple[float, str]]) -> int:
    total = 0
    for _, text in escalations:
        folded = FOLDED.search(text)
        total += int(folded[1]) if folded else 1
    return total


def test_a_notice_whose_group_was_acknowledged_while_queued_is_dropped_and_says_so(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    # Three sends per 12 s: the groups' own alerts fill the window, so their escalations wait
    # in the outbox for it to free, and one group is acknowledged meanwhile.
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", external_url="http://127.0.0.1:1",
        actions={"secret": "a-priorities-secret-long-enough"}, rate="3/12s",
        routes=[{"name": "paging", "matchers": ['severity="critical"'], "bots": ["ops"],
                 "escalate": [{"after": "1s"}]}],
    )  # fmt: skip
    with running_gateway(config) as gw:
        for instance in ("db-1", "db-2", "db-3"):
            assert gw.post("/alertmanager", group_alert("Lag", instance)).status_code == 200

        def fired() -> list[dict[str, Any]]:
            answer = gw.client.get("/api/v1/history", params={"source": "escalation"}).json()
            return list(answer["entries"])

        wait_for(lambda: len(fired()) == 3, what="three escalations fired")
        assert len(_accepted(emu, key)) == 3  # the alerts, not yet any escalation
        open_groups = gw.client.get("/api/v1/alerts").json()["groups"]
        groups = {dict(map(tuple, g["labels"]))["instance"]: g["id"] for g in open_groups}
        same = {"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}
        answer = gw.client.post(
            f"/api/v1/alerts/{groups['db-1']}/acknowledge", json={"name": "王五"}, headers=same
        )
        assert answer.status_code == 200, answer.text
        wait_for(lambda: any("2 组告警仍未认领" in t for _, t in _accepted(emu, key)),
                 timeout=20, what="the fold of the two groups left")  # fmt: skip
        wait_for(
            lambda: sorted(e["state"] for e in fired()) == ["delivered", "delivered", "dropped"],
            timeout=10, what="the acknowledged group's notice marked dropped",
        )  # fmt: skip
        [fold] = [t for _, t in _accepted(emu, key) if "组告警仍未认领" in t]
    assert "instance=db-2" in fold and "instance=db-3" in fold and "db-1" not in fold
