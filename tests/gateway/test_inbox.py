"""Journal first: an accepted notification is one "~inbox" record, rendered behind the 200.

Three levels: :class:`InboxProcessor` on a :class:`MemoryOutbox` and an injected clock (no
HTTP); a served gateway talking to the emulator; and gateway subprocesses on one SQLite file,
the first one killed with SIGKILL right after answering.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.console.support import (
    BASIC,
    Console,
    canary_key,
    console_config,
    secrets_of,
)
from tests.gateway.harness import (
    GatewayProcess,
    content_of,
    emulator_contents,
    gateway_config,
    renamed_alert,
    running_gateway,
    wait_for,
    write_config,
)
from tests.redis_server import free_port
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.config import GatewayConfig, load_config
from wecom_bot.gateway.intake.inbox import (
    INBOX_BOT,
    Accepted,
    InboxProcessor,
    accept,
    decode_body,
    inbox_message,
    parse_stored,
)
from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic
from wecom_bot.gateway.recording import HistoryRecorder
from wecom_bot.gateway.runtime import Runtime, build_runtime
from wecom_bot.store import MemoryOutbox, OutboxRecord, Status
from wecom_bot.store.history import MemoryHistory

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday, 03:00 in Shanghai (inside the night, outside business hours), and 09:00.
NIGHT = datetime(2026, 11, 25, 3, 0, tzinfo=SHANGHAI).timestamp()
NINE = datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI).timestamp()

# The alerts' start time: fixed, so the same payload built twice is the same notification.
FIRED = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)

INTERVALS = {
    "business_hours": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "18:00"}]}
    ],
    "night": [{"times": [{"start_time": "22:00", "end_time": "06:00"}]}],
}

# Fails at run time for an alert named Boom only (no sample is named so: it still loads).
BOOM = (
    '{% if common_labels.alertname == "Boom" %}{{ 1 // (firing_count - firing_count) }}'
    "{% endif %}ok {{ common_labels.alertname }}"
)
FIXED = "ok {{ common_labels.alertname }}"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    """One emulator for the module, rate limit off; tests keep apart by key."""
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def alert(name: str, **labels: str) -> dict[str, Any]:
    """A distinct notification named ``name``, fired at :data:`FIRED`."""
    return renamed_alert(name, FIRED, **labels)


def route(name: str, team: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "matchers": [f'team="{team}"'], "bots": ["ops"], **extra}


# ------------------------------------------------------------------------- processor unit level


@dataclass
class Journal:
    """A runtime on a memory outbox, its history and an inbox processor, on one clock."""

    clock: Clock
    store: MemoryOutbox
    history: HistoryRecorder
    runtime: Runtime
    processor: InboxProcessor

    def swap(self, config: GatewayConfig) -> None:
        """What a reload does: later claims render with ``config``."""
        self.runtime = build_runtime(
            config, store=self.store, metrics=None, clock=self.clock, history=self.history
        )

    async def accept_alert(self, payload: dict[str, Any], route: str | None = None) -> Accepted:
        return await accept(
            self.runtime, parse_alertmanager(payload), json.dumps(payload), route_name=route
        )

    async def inbox_records(self) -> list[OutboxRecord]:
        found = [await self.store.get(i) for i in range(1, 200)]
        return [r for r in found if r is not None and r.bot == INBOX_BOT]

    async def state(self, notification_id: str) -> str | None:
        entry = await self.history.history.get(notification_id)
        return None if entry is None else entry.state


def journal(config: GatewayConfig, now: float) -> Journal:
    clock = Clock(now)
    store = MemoryOutbox(clock=clock)
    history = HistoryRecorder(MemoryHistory(), store, clock=clock, secrets=lambda: [])
    runtime = build_runtime(config, store=store, metrics=None, clock=clock, history=history)
    holder: list[Journal] = []
    processor = InboxProcessor(lambda: holder[0].runtime, clock=clock)
    holder.append(Journal(clock, store, history, runtime, processor))
    return holder[0]


def unit_config(**overrides: Any) -> GatewayConfig:
    # Nothing is sent at unit level: the dispatcher is never started.
    return gateway_config("http://127.0.0.1:9", new_key(), "memory://", **overrides)


async def test_muting_is_decided_for_the_receive_time_not_the_render_time() -> None:
    config = unit_config(
        time_intervals=INTERVALS,
        routes=[
            route("deferred", "c", active_time_intervals=["business_hours"], muted="defer"),
            route("dropped", "b", mute_time_intervals=["night"], muted="drop"),
        ],
    )
    j = journal(config, NIGHT)
    deferred = await j.accept_alert(alert("Deferred", team="c"))
    dropped = await j.accept_alert(alert("Dropped", team="b"))
    assert (deferred.duplicate, deferred.routes) == (False, ["deferred"])
    assert (dropped.duplicate, dropped.routes) == (False, ["dropped"])
    # Only the journal holds them: one record each, received at 03:00.
    assert await j.store.depth_by_bot() == {INBOX_BOT: 2}
    assert [r.created_at for r in await j.inbox_records()] == [NIGHT, NIGHT]

    # Rendered at 09:10: both routes are active now, but they were muted when received.
    j.clock.now = NINE + 600
    assert await j.processor.process_once() is True
    assert j.processor.processed == 2

    [message] = await j.store.find_by_notification(deferred.notification_id)
    assert message.bot == "ops" and message.status is Status.PENDING
    assert message.next_attempt_at == NINE  # held until the interval ended, not "now"
    assert message.created_at == NIGHT
    assert "Deferred" in content_of(message.payload)
    assert await j.state(deferred.notification_id) == "deferred"

    assert await j.store.find_by_notification(dropped.notification_id) == []
    assert await j.state(dropped.notification_id) == "dropped"

    assert all(r.status is Status.SENT for r in await j.inbox_records())
    assert await j.store.pending_count(INBOX_BOT) == 0
    assert await j.processor.process_once() is False


async def test_a_processor_that_lost_its_lease_stores_nothing_twice() -> None:
    # Two processors on one journal (two gateways on one Redis): the first claims, stalls past
    # its lease; the second claims the same records and renders them; the first, resuming,
    # must find its settle refused and store nothing.
    j = journal(unit_config(lease="30s"), NINE)
    first = await j.accept_alert(alert("Slow"))
    second = await j.accept_alert(alert("Slower"))
    store = j.store
    stale = await store.claim(INBOX_BOT, limit=10, lease_seconds=30, now=j.clock.now)
    assert len(stale) == 2

    j.clock.now += 31  # the first processor's lease ran out while it was stalled
    other = InboxProcessor(lambda: j.runtime, clock=j.clock)
    assert await other.process_once() is True and other.processed == 2

    # The stalled one resumes with what it claimed: rendered, then refused at the store.
    for record in stale:
        done = await j.processor._render_or_detach(j.runtime, record)
        assert done is not None and not isinstance(done, str)
        await j.processor._store(j.runtime, record, done)
    assert j.processor.processed == 0
    for outcome in (first, second):
        [message] = await store.find_by_notification(outcome.notification_id)
        assert message.bot == "ops" and message.status is Status.PENDING
    assert await store.pending_count("ops") == 2
    assert await store.pending_count(INBOX_BOT) == 0


async def test_a_journaled_notification_becomes_its_messages_once() -> None:
    j = journal(unit_config(coalesce_after="1h"), NINE)
    payload = alert("DiskFull", severity="critical")
    first = await j.accept_alert(payload)
    retry = await j.accept_alert(payload)  # the sender retries before it is rendered
    assert first.duplicate is False and first.routes == ["critical"]
    assert retry.duplicate is True and retry.notification_id == first.notification_id
    [record] = await j.inbox_records()
    assert record.status is Status.PENDING and record.kind == "notification"
    assert record.payload["notification"]["source"] == "alertmanager"
    assert json.loads(record.payload["notification"]["body"]) == payload
    # Nothing rendered on the request path.
    assert await j.store.find_by_notification(first.notification_id) == []

    with pytest.raises(LookupError, match="nope"):
        await j.accept_alert(alert("Forced"), route="nope")
    assert len(await j.inbox_records()) == 1

    j.clock.now = NINE + 5
    assert await j.processor.process_once() is True
    [message] = await j.store.find_by_notification(first.notification_id)
    assert message.bot == "ops" and message.status is Status.PENDING
    assert message.notification_ids == (first.notification_id,)
    assert message.next_attempt_at == NINE + 5
    assert "DiskFull" in content_of(message.payload)
    assert "<@oncall>" in content_of(message.payload)  # the critical route's mention
    [record] = await j.inbox_records()
    assert record.status is Status.SENT
    assert await j.state(first.notification_id) == "pending"
    assert await j.store.depth_by_bot() == {"ops": 1}
    assert await j.processor.process_once() is False
    assert j.processor.processed == 1


async def test_what_cannot_render_is_dead_lettered_until_fixed_and_requeued() -> None:
    templated = {
        "templates": {"boomy": BOOM},
        "routes": [],
        "default_route": {"name": "default", "bots": ["ops"], "template": "boomy"},
    }
    j = journal(unit_config(**templated), NINE)
    boom = await j.accept_alert(alert("Boom"))
    fine = await j.accept_alert(alert("Fine"))
    hook = parse_generic("deploy", {"text": "v2 is out"})
    deploy = await accept(j.runtime, hook, '{"text": "v2 is out"}', route_name="webhook:deploy")
    # A record whose stored body no longer parses (an older or damaged record).
    broken = inbox_message(parse_alertmanager(alert("Old")), "{not json", None, "0" * 16)
    await j.store.enqueue([broken])

    # A reload removed the webhook before the processor got to it.
    j.swap(unit_config(**templated, webhooks={}))
    assert await j.processor.process_once() is True
    assert j.processor.processed == 1  # only Fine
    [fine_message] = await j.store.find_by_notification(fine.notification_id)
    assert content_of(fine_message.payload) == "ok Fine"

    dead = await j.store.list_dead(INBOX_BOT)
    assert len(dead) == 3 and await j.store.dead_count(INBOX_BOT) == 3
    reasons = {r.payload["notification"]["id"]: r.last_error or "" for r in dead}
    assert all(text.startswith("could not render the notification: ") for text in reasons.values())
    assert "template 'boomy'" in reasons[boom.notification_id]
    assert reasons[boom.notification_id].endswith(": integer division or modulo by zero at line 1")
    # Each was tried once, as the log says.
    assert all(r.attempts == 1 for r in dead)
    assert "no webhook named 'deploy'" in reasons[deploy.notification_id]
    assert "is not JSON text" in reasons["0" * 16]
    assert await j.store.find_by_notification(boom.notification_id) == []
    assert await j.store.find_by_notification(deploy.notification_id) == []

    # Fixed and reloaded, then requeued: the same records render now.
    j.swap(unit_config(**{**templated, "templates": {"boomy": FIXED}}))
    requeued = [r.id for r in dead if r.payload["notification"]["id"] != "0" * 16]
    assert await j.store.requeue_dead(requeued) == 2
    j.clock.now = NINE + 60
    assert await j.processor.process_once() is True
    [boom_message] = await j.store.find_by_notification(boom.notification_id)
    assert boom_message.bot == "ops" and content_of(boom_message.payload) == "ok Boom"
    [deploy_message] = await j.store.find_by_notification(deploy.notification_id)
    assert "v2 is out" in content_of(deploy_message.payload)
    assert await j.store.dead_count(INBOX_BOT) == 1  # the unparseable one stays dead
    assert await j.store.pending_count(INBOX_BOT) == 0


async def test_a_forced_route_removed_before_rendering_falls_back_to_matching() -> None:
    j = journal(unit_config(), NINE)
    forced = await j.accept_alert(alert("Slow", team="web"), route="db")
    assert forced.routes == ["db"]
    data = j.runtime.config.model_dump(mode="json", by_alias=True)
    data["routes"] = [r for r in data["routes"] if r["name"] != "db"]
    j.swap(GatewayConfig.model_validate(data))
    assert await j.processor.process_once() is True
    [message] = await j.store.find_by_notification(forced.notification_id)
    assert message.bot == "ops" and "Slow" in content_of(message.payload)
    entry = await j.history.history.get(forced.notification_id)
    assert entry is not None and entry.routes == ("default",)
    assert await j.store.dead_count(INBOX_BOT) == 0


# ------------------------------------------------------------------------------------ over HTTP


def test_template_failure_dead_letters_then_fix_reload_requeue_delivers(
    emu: Emu, tmp_path: Path
) -> None:
    key = canary_key()
    default = {"name": "default", "bots": ["ops"], "template": "boomy"}
    config = console_config(
        emu.url, key, "memory://", routes=[], default_route=default, templates={"boomy": BOOM}
    )
    path = write_config(tmp_path / "gw.yaml", config)
    # The start-up check accepts it: no sample it might render with is named Boom.
    assert load_config(path).templates == {"boomy": BOOM}
    build_runtime(load_config(path), store=None, metrics=None, clock=lambda: NINE)
    auth = {"Authorization": BASIC}

    with running_gateway(config, config_path=path) as gw:
        console = Console(gw, secrets_of(key))
        answer = gw.post("/alertmanager", alert("Boom"), headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "accepted" and body["routes"] == ["default"]
        boom_id = body["notification_id"]

        def dead_letters() -> list[dict[str, Any]]:
            letters: list[dict[str, Any]] = console.json("/api/v1/dead-letters")["dead_letters"]
            return letters

        wait_for(lambda: len(dead_letters()) == 1, what="the inbox dead letter")
        [letter] = dead_letters()
        assert letter["bot"] == INBOX_BOT and letter["status"] == "dead"
        assert letter["last_error"].startswith("could not render the notification: ")
        assert "template 'boomy'" in letter["last_error"]
        # In the template's words (no Python class name), where it failed, tried once.
        assert "division or modulo by zero at line " in letter["last_error"]
        assert "ZeroDivisionError" not in letter["last_error"]
        assert letter["attempts"] == 1
        # Drawn as what it is, a notification as received, not as a WeCom message.
        assert "Unsupported" not in letter["html"]
        assert f"alertmanager notification {boom_id}" in letter["html"]
        assert "not rendered" in letter["html"] and "Boom" in letter["html"]
        assert console.metric("wecom_bot_inbox_dead_letters") == 1
        assert console.metric("wecom_bot_inbox_depth") == 0
        assert console.json("/api/v1/status")["inbox"] == {"depth": 0, "dead_letters": 1}

        # The journal is not stuck behind it: another alert renders and arrives.
        fine = gw.post("/alertmanager", alert("Fine"), headers=auth)
        assert fine.status_code == 200 and fine.json()["status"] == "accepted"
        wait_for(lambda: len(emulator_contents(emu, key)) == 1, what="the fine alert")
        assert [content_of(p) for p in emulator_contents(emu, key)] == ["ok Fine"]

        # A retry while dead-lettered is recognised; ?wait=true renders now, and fails.
        again = gw.post("/alertmanager", alert("Boom"), headers=auth)
        assert again.json() == {**body, "status": "duplicate"}
        waited = gw.post("/alertmanager?wait=true", alert("Boom"), headers=auth)
        assert waited.status_code == 422, waited.text
        assert waited.json()["reason"] == "render_failed"
        assert "ZeroDivisionError" in waited.json()["error"]
        assert len(dead_letters()) == 1

        # Fix the template, reload, requeue: it arrives once.
        write_config(path, config.model_copy(update={"templates": {"boomy": FIXED}}))
        reloaded = gw.client.post("/-/reload", headers=auth)
        assert reloaded.status_code == 200 and reloaded.json()["ok"] is True, reloaded.text
        requeued = console.post("/api/v1/dead-letters/requeue", {"ids": [letter["id"]]})
        assert requeued.json() == {"requeued": 1, "ids": [letter["id"]]}

        def boom_delivered() -> bool:
            found = console.get(f"/api/v1/history/{boom_id}")
            return found.status_code == 200 and found.json()["state"] == "delivered"

        wait_for(boom_delivered, what="the requeued notification delivered")
        contents = [content_of(p) for p in emulator_contents(emu, key)]
        assert sorted(contents) == ["ok Boom", "ok Fine"]
        assert dead_letters() == []
        assert console.metric("wecom_bot_inbox_dead_letters") == 0
        assert console.json("/api/v1/status")["inbox"] == {"depth": 0, "dead_letters": 0}


def test_a_senders_retries_are_duplicates_and_delivered_once(emu: Emu) -> None:
    key = canary_key()
    config = console_config(emu.url, key, "memory://", coalesce_after="1h")
    with running_gateway(config) as gw:
        console = Console(gw, secrets_of(key))
        payload = alert("Twice", team="web")
        headers = {"Authorization": BASIC}
        answers = [gw.post("/alertmanager", payload, headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        bodies = [a.json() for a in answers]
        assert [b["status"] for b in bodies] == ["accepted", "duplicate", "duplicate"]
        nid = bodies[0]["notification_id"]
        assert {b["notification_id"] for b in bodies} == {nid}
        assert all(b["routes"] == ["default"] for b in bodies)

        def delivered() -> bool:
            found = console.get(f"/api/v1/history/{nid}")
            return found.status_code == 200 and found.json()["state"] == "delivered"

        wait_for(delivered, what="the notification delivered")
        entry = console.json(f"/api/v1/history/{nid}")
        assert [r["bot"] for r in entry["records"]] == ["ops"]
        kinds = [e["kind"] for e in entry["events"]]
        assert kinds.count("sent") == 1 and kinds.count("duplicate") == 2
        assert console.json("/api/v1/status")["inbox"] == {"depth": 0, "dead_letters": 0}
        texts = [content_of(p) for p in emulator_contents(emu, key)]
        assert len(texts) == 1 and "Twice" in texts[0]
        assert console.metric("wecom_bot_notifications_duplicate_total") == 2


# ------------------------------------------------------------------------ the record's body


def test_a_strict_json_body_is_embedded_in_the_record_verbatim() -> None:
    payload = alert("Verbatim", team="web")
    raw = json.dumps(payload, indent=2, ensure_ascii=False).encode()
    body = decode_body(raw)
    assert body.verbatim and body.value == payload and body.text == raw.decode()
    notification = parse_alertmanager(body.value)
    record = inbox_message(notification, body, "db", "a" * 16)
    stored = record.encoded()
    # The request's own text, not an encoding of the decoded value.
    assert raw.decode() in stored
    assert json.loads(stored) == record.payload
    data = record.payload["notification"]
    assert (data["id"], data["source"], data["route"]) == ("a" * 16, "alertmanager", "db")
    again = parse_stored(json.loads(stored)["notification"])
    assert again.dedup_key() == notification.dedup_key()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"text": "nan: ", "value": NaN}', "NaN is not JSON"),
        ('{"text": "le café"}'.encode("utf-16"), "UTF-16"),
        ('{"text": "le café", "value": Infinity}'.encode("utf-32"), "UTF-32 and Infinity"),
    ],
)
def test_a_body_json_reads_but_json_lacks_is_kept_as_text(raw: bytes, why: str) -> None:
    body = decode_body(raw)
    assert not body.verbatim, why
    assert json.loads(body.text)["text"] == body.value["text"]
    record = inbox_message(parse_generic("deploy", body.value), body, "webhook:deploy", "b" * 16)
    stored = json.loads(record.encoded())
    assert isinstance(stored["notification"]["body"], str) and "json" not in stored["notification"]
    again = parse_stored(stored["notification"])
    assert again.raw["text"] == body.value["text"]


def test_a_byte_order_mark_is_not_part_of_the_json() -> None:
    body = decode_body('\ufeff{"text": "with BOM"}'.encode())
    assert body.verbatim and body.value == {"text": "with BOM"}
    assert not body.text.startswith("\ufeff")
    assert json.loads(inbox_message(parse_generic("x", body.value), body, None, "c" * 16).encoded())


@pytest.mark.parametrize("raw", [b"", b"{", b"{'a': 1}", b"\xff\xfe{", b"[1] [2]"])
def test_what_is_not_json_is_refused_by_decode_body(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_body(raw)


def test_every_body_form_is_delivered_through_a_served_gateway(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}")
    bodies = {
        "plain": b'{"text": "plain body"}',
        "bom": '\ufeff{"text": "body with a byte order mark"}'.encode(),
        "nan": b'{"text": "body with NaN", "ratio": NaN}',
        "utf16": '{"text": "UTF-16 body, le caf\u00e9"}'.encode("utf-16"),
    }
    with running_gateway(config) as gw:
        for name, raw in bodies.items():
            answer = gw.client.post(
                "/webhook/deploy", content=raw, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 200, (name, answer.text)
            assert answer.json()["status"] == "accepted"

        def all_delivered() -> bool:
            return len(emulator_contents(emu, key)) == len(bodies)

        wait_for(all_delivered, what="every body delivered")
        texts = " | ".join(content_of(p) for p in emulator_contents(emu, key))
        for expected in ("plain body", "byte order mark", "body with NaN", "le café"):
            assert expected in texts


# ------------------------------------------------------------------------------ across SIGKILL

# About 20 ms of work per render, so the journal is still full when the first process dies.
SLOW = (
    "{% for i in range(500) %}{% for j in range(500) %}{% endfor %}{% endfor %}"
    "{{ common_labels.alertname }} fired"
)


def undelivered(db: Path) -> dict[str, int]:
    """Records not yet sent, per bot, read from the SQLite file directly."""
    with sqlite3.connect(db, timeout=5) as conn:
        rows = conn.execute(
            "SELECT bot, COUNT(*) FROM outbox WHERE status IN ('pending', 'leased') GROUP BY bot"
        ).fetchall()
    conn.close()
    return {str(bot): int(count) for bot, count in rows}


def test_nothing_is_lost_or_doubled_when_the_gateway_is_killed(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    db = tmp_path / "o.db"
    settings: dict[str, Any] = {
        "routes": [],
        "default_route": {"name": "default", "bots": ["ops"], "template": "slow"},
        "templates": {"slow": SLOW},
        "coalesce_after": "1h",
        "storm_interval": 0,  # one message per notification: this is about kills, not storms
        "lease": "1s",
    }
    # The first process delivers nowhere (nothing listens there), so whatever reaches the
    # emulator twice was rendered twice, not sent twice by an interrupted send.
    first = gateway_config(f"http://127.0.0.1:{free_port()}", key, f"sqlite:///{db}", **settings)
    path = write_config(tmp_path / "gw.yaml", first)
    gateway = GatewayProcess(path, free_port())
    names = [f"Storm{i}" for i in range(30)]
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=5) as client:
            for name in names:
                answer = client.post("/alertmanager", json=alert(name))
                assert answer.status_code == 200, answer.text
                assert answer.json()["status"] == "accepted"
        gateway.kill()
        left = undelivered(db)
        journaled = left.get(INBOX_BOT, 0)
        # Each notification is in exactly one place: still journaled, or rendered.
        assert journaled + left.get("ops", 0) == len(names), left
        assert journaled > 0, f"every notification was rendered before the kill: {left}"

        write_config(path, first.model_copy(update={"base_url": emu.url}))
        gateway.start()
        wait_for(
            lambda: len(emulator_contents(emu, key)) >= len(names),
            timeout=30,
            what="every accepted notification after the restart",
        )
        wait_for(lambda: undelivered(db) == {}, what="an empty outbox")
    finally:
        gateway.stop()
    arrived = Counter(content_of(p) for p in emulator_contents(emu, key))
    assert arrived == Counter(f"{name} fired" for name in names)
    with sqlite3.connect(db) as conn:
        [(dead,)] = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'dead'").fetchall()
    conn.close()
    assert dead == 0


# ---------------------------------------------------------------------------------------- config


def test_a_bot_named_like_the_journal_is_refused() -> None:
    text = yaml.safe_dump({"bots": {INBOX_BOT: {"key": "k"}}})
    message = "bots.~inbox: a bot name cannot be empty or start with '~'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(text=text)
    with pytest.raises(ConfigError, match=re.escape("bots.~ops:")):
        load_config(text=yaml.safe_dump({"bots": {"~ops": {"key": "k"}}}))
