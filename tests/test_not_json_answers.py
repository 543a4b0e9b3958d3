"""An HTTP 200 that is not the API's JSON (a captive portal's page, an empty body) is a transient
failure (issue 26, item 7): retried with backoff like a 502, a dead letter with its reason only
after the attempts run out. Over real HTTP against the emulator's ``not_json`` fault, through the
dispatcher and through a whole gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import gateway_config, one_alert, running_gateway, wait_for
from tests.test_dispatcher import WINDOW, accepted, inject, make_dispatcher, run_until_drained, text
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.masking import key_fingerprint
from wecom_bot.retry import RetryPolicy
from wecom_bot.store import MemoryOutbox, NewMessage


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


def faults_injected(emu: Emu, key: str) -> int:
    return int(emu.client.get(f"/api/groups/{key_fingerprint(key)}").json()["faults_injected"])


async def test_three_portal_pages_are_retried_and_every_message_arrives(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    await store.enqueue(
        [NewMessage(bot="ops", payload=text(i), coalescible=False) for i in range(6)]
    )
    inject(emu, key, 2, kind="not_json", body="html")
    inject(emu, key, 1, kind="not_json", body="empty")
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    await run_until_drained(store, dispatcher, ["ops"])

    contents = sorted(e["payload"]["text"]["content"] for e in accepted(emu, key))
    assert contents == [f"alert {i:03d}" for i in range(6)]  # each once: nothing reached WeCom
    assert faults_injected(emu, key) == 3
    assert await store.dead_count() == 0


async def test_a_portal_that_stays_ends_in_a_dead_letter_with_the_reason(emu: Emu) -> None:
    key = new_key()
    store = MemoryOutbox()
    (record_id,) = await store.enqueue([NewMessage(bot="ops", payload=text(1))])
    attempts = 4
    inject(emu, key, attempts, kind="not_json", body="html")
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)})
    dispatcher.retry = RetryPolicy(
        max_attempts=attempts, base_delay=0.02, max_delay=0.05, rate_window=WINDOW
    )
    await run_until_drained(store, dispatcher, ["ops"])

    (dead,) = await store.list_dead()
    assert dead.id == record_id
    reason = dead.last_error or ""
    assert "HTTP 200 with an HTML page" in reason and "title 'Network login required'" in reason
    assert "captive portal" in reason and key not in reason
    assert faults_injected(emu, key) == attempts  # every attempt was made, none reached WeCom
    assert accepted(emu, key) == []


def test_a_gateway_retries_portal_pages_and_delivers_every_alert(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'outbox.db'}")
    inject(emu, key, 3, kind="not_json", body="html")

    def delivered() -> str:
        return " ".join(str(e["payload"]) for e in accepted(emu, key))

    with running_gateway(config) as gw:
        for i in range(3):
            assert gw.post("/alertmanager", one_alert(f"Portal{i}")).status_code == 200
        # Retried messages may be folded into one digest on the way: look for every alert.
        wait_for(
            lambda: all(f"Portal{i}" in delivered() for i in range(3)),
            timeout=30,
            what="every alert delivered",
        )
        assert gw.metric("wecom_bot_messages_retried_total") >= 3
        assert gw.metric("wecom_bot_messages_dead_lettered_total") == 0
        assert gw.metric("wecom_bot_dead_letters") == 0
    assert faults_injected(emu, key) == 3
    for i in range(3):  # each in exactly one message: nothing went twice
        assert sum(f"Portal{i}" in str(e["payload"]) for e in accepted(emu, key)) == 1
