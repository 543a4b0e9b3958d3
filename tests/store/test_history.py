"""The history contract: every implementation passes every test here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import fields
from pathlib import Path

import pytest

from wecom_bot.store import MemoryOutbox, Outbox, SQLiteOutbox
from wecom_bot.store.history import (
    HistoryEntry,
    HistoryEvent,
    HistoryQuery,
    HistoryStore,
    MemoryHistory,
    open_history,
)
from wecom_bot.store.history_redis import RedisHistory
from wecom_bot.store.history_sqlite import SQLiteHistory
from wecom_bot.store.redis import RedisOutbox

from ._support import START


@pytest.fixture(
    params=["memory", "sqlite", "sqlite-memory", pytest.param("redis", marks=pytest.mark.redis)]
)
async def history(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryStore]:
    outbox: Outbox
    if request.param == "redis":
        redis = RedisOutbox.from_url(request.getfixturevalue("redis_url"))
        await redis.client.flushdb()
        outbox = redis
    elif request.param == "sqlite":
        outbox = SQLiteOutbox(tmp_path / "o.db")
    elif request.param == "sqlite-memory":
        outbox = SQLiteOutbox(":memory:")
    else:
        outbox = MemoryOutbox()
    store = open_history(outbox)
    try:
        yield store
    finally:
        await store.close()
        await outbox.close()


def entry(
    entry_id: str,
    at: float = START,
    *,
    state: str = "pending",
    bots: tuple[str, ...] = ("ops",),
    labels: tuple[tuple[str, str], ...] = (("severity", "critical"),),
    title: str = "HighCPU on db-1",
    source: str = "alertmanager",
    messages: tuple[dict[str, object], ...] = (),
) -> HistoryEntry:
    return HistoryEntry(
        id=entry_id,
        received_at=at,
        updated_at=at,
        source=source,
        status="firing",
        state=state,
        title=title,
        labels=labels,
        routes=("critical",),
        bots=bots,
        alerts=1,
        messages=messages,
    )


def test_json_forms_carry_every_field_and_round_trip() -> None:
    full = HistoryEntry(
        id="n1",
        received_at=START,
        updated_at=START + 1,
        source="grafana",
        status="resolved",
        state="delivered",
        title="t",
        labels=(("team", "db"),),
        routes=("r",),
        bots=("ops",),
        alerts=3,
        messages=({"record_id": 1, "payload": {"msgtype": "text"}},),
        detail={"muted_by": "night"},
    )
    data = full.to_json()
    assert set(data) == {f.name for f in fields(HistoryEntry)}
    assert HistoryEntry.from_json(json.loads(full.encode())) == full
    event = HistoryEvent("n1", START, "retried", 7, "ops", "HTTP 503", 45009)
    assert set(event.to_json()) == {f.name for f in fields(HistoryEvent)}
    assert HistoryEvent.from_json(json.loads(event.encode())) == event


async def test_open_history_matches_the_outbox(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / "o.db")
    store = open_history(outbox)
    assert isinstance(store, SQLiteHistory) and store.path == outbox.path
    await store.close()
    await outbox.close()
    assert isinstance(open_history(MemoryOutbox()), MemoryHistory)


async def test_record_and_get_round_trip(history: HistoryStore) -> None:
    message = {
        "record_id": 7,
        "bot": "ops",
        "payload": {"msgtype": "text", "text": {"content": "告警"}},
    }
    stored = await history.record(entry("n1", messages=(message,)))
    got = await history.get("n1")
    assert got == stored
    assert got is not None and got.messages[0]["payload"] == message["payload"]
    assert got.labels == (("severity", "critical"),)
    assert await history.get("missing") is None


async def test_recording_again_merges(history: HistoryStore) -> None:
    await history.record(entry("n1", START, messages=({"record_id": 1},)))
    later = entry("n1", START + 60, state="deferred", bots=("dba",), messages=({"record_id": 2},))
    merged = await history.record(later)
    assert merged.received_at == START and merged.updated_at == START + 60
    assert merged.state == "deferred"
    assert merged.bots == ("ops", "dba")
    assert [m["record_id"] for m in merged.messages] == [1, 2]
    assert await history.get("n1") == merged
    found = await history.search(HistoryQuery(bot="dba"))
    assert [e.id for e in found] == ["n1"]


async def test_set_state(history: HistoryStore) -> None:
    await history.record(entry("n1"))
    assert await history.set_state("n1", "delivered", now=START + 5)
    got = await history.get("n1")
    assert got is not None and got.state == "delivered" and got.updated_at == START + 5
    assert not await history.set_state("nope", "dead", now=START)
    assert [e.id for e in await history.search(HistoryQuery(states=("delivered",)))] == ["n1"]
    assert await history.search(HistoryQuery(states=("pending",))) == []


async def test_events_keep_their_order(history: HistoryStore) -> None:
    await history.record(entry("n1"))
    events = [
        HistoryEvent("n1", START + 1, "queued", record_id=3, bot="ops"),
        HistoryEvent("n1", START + 2, "retried", 3, "ops", "WeCom API error 93000", 93000),
        HistoryEvent("n1", START + 3, "dead_lettered", 3, "ops", "gave up", 93000),
    ]
    await history.add_events(events[:1])
    await history.add_events(events[1:])
    assert await history.events("n1") == events
    assert await history.events("n2") == []


async def test_search_criteria(history: HistoryStore) -> None:
    await history.record(entry("a", START, state="delivered", title="Disk full"))
    await history.record(
        entry("b", START + 10, labels=(("severity", "warning"), ("team", "db")), bots=("dba",))
    )
    await history.record(entry("c", START + 20, state="dead", source="grafana"))
    everything = await history.search(HistoryQuery())
    assert [e.id for e in everything] == ["c", "b", "a"]
    assert [e.id for e in await history.search(HistoryQuery(limit=2))] == ["c", "b"]
    assert [e.id for e in await history.search(HistoryQuery(until=START + 20))] == ["b", "a"]
    assert [e.id for e in await history.search(HistoryQuery(since=START + 10))] == ["c", "b"]
    by_label = await history.search(HistoryQuery(labels=(("severity", "critical"),)))
    assert [e.id for e in by_label] == ["c", "a"]
    both = HistoryQuery(labels=(("severity", "warning"), ("team", "db")))
    assert [e.id for e in await history.search(both)] == ["b"]
    assert [e.id for e in await history.search(HistoryQuery(bot="dba"))] == ["b"]
    assert [e.id for e in await history.search(HistoryQuery(route="critical"))] == ["c", "b", "a"]
    assert [e.id for e in await history.search(HistoryQuery(source="grafana"))] == ["c"]
    assert [e.id for e in await history.search(HistoryQuery(text="disk"))] == ["a"]
    states = HistoryQuery(states=("dead", "delivered"))
    assert [e.id for e in await history.search(states)] == ["c", "a"]


async def test_search_text_is_literal(history: HistoryStore) -> None:
    await history.record(entry("a", title="100% CPU_load"))
    await history.record(entry("b", START + 1, title="1000 CPUxload"))
    assert [e.id for e in await history.search(HistoryQuery(text="0% CPU_"))] == ["a"]


async def test_purge_removes_old_entries_and_their_events(history: HistoryStore) -> None:
    await history.record(entry("old", START))
    await history.record(entry("new", START + 100))
    await history.add_events([HistoryEvent("old", START, "queued")])
    await history.add_events([HistoryEvent("new", START + 100, "queued")])
    assert await history.purge(before=START + 50) == 1
    assert await history.get("old") is None and await history.events("old") == []
    assert await history.get("new") is not None
    assert len(await history.events("new")) == 1
    assert [e.id for e in await history.search(HistoryQuery())] == ["new"]
    assert await history.purge(before=START + 50) == 0


async def test_many_labels_are_capped() -> None:
    labels = tuple((f"l{i}", "x" * 500) for i in range(1000))
    capped = entry("n", labels=labels)
    assert len(capped.labels) == 200 and all(len(v) == 200 for _, v in capped.labels)


def test_redis_history_is_what_a_redis_outbox_gets() -> None:
    outbox = RedisOutbox.from_url("redis://127.0.0.1:1/0")
    assert isinstance(open_history(outbox), RedisHistory)
