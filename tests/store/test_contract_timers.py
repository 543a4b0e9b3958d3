"""The alert-group and timer part of the outbox contract: every implementation (see conftest)
must pass every test here. Timers fire exactly once: one holder at a time, and firing stores
the messages and removes the timer in one step, only for the holder."""

from __future__ import annotations

import asyncio

import pytest

from wecom_bot.store import Acknowledged, NewTimer, Outbox, Status, TimerLostError, TimerRecord

from ._support import START, FakeClock, content, text

INFO = {"labels": [["alertname", "HighCPU"]], "title": "HighCPU 告警"}


def timers(*dues: float) -> list[NewTimer]:
    return [NewTimer(f"route/escalate/{i}", due, {"step": i}) for i, due in enumerate(dues)]


async def test_open_group_schedules_its_timers_once(store: Outbox, clock: FakeClock) -> None:
    assert await store.open_group("g1", INFO, timers(START + 60, START + 30))
    group = await store.get_group("g1")
    assert group is not None
    assert group.id == "g1" and group.info == INFO
    assert group.opened_at == START and group.updated_at == START
    assert group.acknowledged_by is None and group.silenced_until is None
    assert [(t.key, t.due_at, t.payload) for t in group.timers] == [
        ("route/escalate/1", START + 30, {"step": 1}),
        ("route/escalate/0", START + 60, {"step": 0}),
    ]
    assert group.next_timer is not None and group.next_timer.key == "route/escalate/1"
    # A repeated firing notification: new info, same timers, same opening time.
    clock.advance(10)
    assert not await store.open_group("g1", {"title": "newer"}, timers(START + 999))
    again = await store.get_group("g1")
    assert again is not None and again.info == {"title": "newer"}
    assert again.opened_at == START and again.updated_at == START + 10
    assert [t.due_at for t in again.timers] == [START + 30, START + 60]
    assert await store.get_group("nope") is None


async def test_open_group_checks_its_arguments_and_stores_nothing_when_bad(store: Outbox) -> None:
    with pytest.raises(ValueError, match="share a key"):
        await store.open_group("g", INFO, [NewTimer("k", START), NewTimer("k", START + 1)])
    with pytest.raises(ValueError, match="JSON"):
        await store.open_group("g", {"x": {1, 2}}, [])
    with pytest.raises(ValueError, match="JSON"):
        await store.open_group("g", INFO, [NewTimer("k", START, {"x": float("nan")})])
    with pytest.raises(ValueError, match="group id"):
        await store.open_group("", INFO, [])
    with pytest.raises(ValueError, match="key"):
        NewTimer("", START)
    assert await store.list_groups() == []
    assert await store.next_timer_at() is None


async def test_only_due_timers_are_claimed_soonest_first(store: Outbox, clock: FakeClock) -> None:
    await store.open_group("a", INFO, timers(START + 20, START + 5))
    await store.open_group("b", INFO, timers(START + 10))
    assert await store.next_timer_at() == START + 5
    assert await store.claim_timers(limit=10, lease_seconds=30) == []
    clock.advance(15)
    claimed = await store.claim_timers(limit=10, lease_seconds=30)
    assert [(t.group_id, t.due_at) for t in claimed] == [("a", START + 5), ("b", START + 10)]
    assert all(t.claim and t.lease_until == START + 45 for t in claimed)
    # Held: nobody else gets them, and the next claimable time is the remaining timer's.
    assert await store.claim_timers(limit=10, lease_seconds=30) == []
    assert await store.next_timer_at() == START + 20
    clock.advance(10)
    [last] = await store.claim_timers(limit=10, lease_seconds=30)
    assert (last.group_id, last.due_at) == ("a", START + 20)


async def test_claim_respects_its_limit_and_refuses_nonsense(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, timers(START, START + 1, START + 2))
    clock.advance(5)
    assert len(await store.claim_timers(limit=2, lease_seconds=5)) == 2
    assert len(await store.claim_timers(limit=2, lease_seconds=5)) == 1
    with pytest.raises(ValueError):
        await store.claim_timers(limit=0, lease_seconds=5)
    with pytest.raises(ValueError):
        await store.claim_timers(limit=1, lease_seconds=0)


async def test_firing_stores_the_messages_and_removes_the_timer_in_one_step(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, timers(START + 1))
    clock.advance(2)
    [timer] = await store.claim_timers(limit=1, lease_seconds=30)
    ids = await store.fire_timer(
        timer, [text("⏫ escalation", notification_id="esc-1"), text("cc", bot="lead")]
    )
    assert len(ids) == 2
    first = await store.get(ids[0])
    assert first is not None and first.status is Status.PENDING
    assert content(first.payload) == "⏫ escalation" and first.notification_ids == ("esc-1",)
    assert first.created_at == START + 2
    assert [r.id for r in await store.claim("lead", limit=5, lease_seconds=5)] == [ids[1]]
    group = await store.get_group("g")
    assert group is not None and group.timers == ()
    # Fired once: firing again, or claiming again, finds nothing.
    with pytest.raises(TimerLostError):
        await store.fire_timer(timer, [text("twice")])
    assert await store.claim_timers(limit=5, lease_seconds=30) == []
    assert await store.pending_count() == 2  # "twice" was not stored


async def test_a_reminder_is_rescheduled_unclaimed_and_counted(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, [NewTimer("route/remind", START + 60, {"kind": "remind"})])
    clock.advance(60)
    [timer] = await store.claim_timers(limit=1, lease_seconds=30)
    assert await store.fire_timer(timer, [], next_due_at=START + 120) == []
    [again] = (await store.get_group("g")).timers  # type: ignore[union-attr]
    assert (again.due_at, again.fired, again.claim, again.lease_until) == (
        START + 120,
        1,
        None,
        None,
    )
    assert again.payload == {"kind": "remind"}
    assert await store.claim_timers(limit=1, lease_seconds=30) == []
    clock.advance(60)
    [second] = await store.claim_timers(limit=1, lease_seconds=30)
    assert second.fired == 1
    with pytest.raises(TimerLostError):  # the first claim does not hold it any more
        await store.fire_timer(timer, [text("stale")])


async def test_a_lease_that_runs_out_lets_another_holder_fire_and_the_first_lose(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, timers(START))
    [first] = await store.claim_timers(limit=1, lease_seconds=10)
    assert await store.next_timer_at() == START + 10
    clock.advance(11)  # the first holder died or stalled
    [second] = await store.claim_timers(limit=1, lease_seconds=10)
    assert second.claim != first.claim
    with pytest.raises(TimerLostError):
        await store.fire_timer(first, [text("late")])
    assert await store.fire_timer(second, [text("once")])
    assert await store.pending_count() == 1


async def test_a_claim_token_from_elsewhere_holds_nothing(store: Outbox) -> None:
    await store.open_group("g", INFO, timers(START))
    forged = TimerRecord("g", "route/escalate/0", START, {}, claim="not-the-holder")
    with pytest.raises(TimerLostError):
        await store.fire_timer(forged, [text("x")])
    unclaimed = TimerRecord("g", "route/escalate/0", START, {})
    with pytest.raises(TimerLostError):
        await store.fire_timer(unclaimed, [text("x")])
    assert await store.pending_count() == 0


async def test_acknowledging_cancels_the_timers_even_one_in_flight(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, timers(START, START + 60))
    [held] = await store.claim_timers(limit=5, lease_seconds=30)
    clock.advance(5)
    assert await store.acknowledge_group("g", by="王五") is Acknowledged.FIRST
    with pytest.raises(TimerLostError):
        await store.fire_timer(held, [text("too late")])
    group = await store.get_group("g")
    assert group is not None and group.timers == ()
    assert (group.acknowledged_by, group.acknowledged_at) == ("王五", START + 5)
    assert group.silenced_until is None
    clock.advance(100)
    assert await store.claim_timers(limit=5, lease_seconds=30) == []
    assert await store.next_timer_at() is None
    # A repeated firing notification does not bring them back.
    assert not await store.open_group("g", INFO, timers(START + 200))
    assert (await store.get_group("g")).timers == ()  # type: ignore[union-attr]
    assert await store.acknowledge_group("unknown", by="x") is Acknowledged.NOT_OPEN
    assert await store.pending_count() == 0


async def test_acknowledging_again_says_so_and_records_the_latest(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, timers(START + 60))
    assert await store.acknowledge_group("g", by="王五") is Acknowledged.FIRST
    clock.advance(3)
    assert await store.acknowledge_group("g", by="赵六") is Acknowledged.AGAIN
    assert await store.acknowledge_group("g", by="赵六") is Acknowledged.AGAIN
    group = await store.get_group("g")
    assert group is not None
    assert (group.acknowledged_by, group.acknowledged_at) == ("赵六", START + 3)
    # A silence counts as the first acknowledgement; a resolved group is not open any more.
    await store.open_group("s", INFO, timers(START + 60))
    assert await store.acknowledge_group("s", by="a", silenced_until=START + 99) is (
        Acknowledged.FIRST
    )
    assert await store.acknowledge_group("s", by="b") is Acknowledged.AGAIN
    assert await store.resolve_group("g")
    assert await store.acknowledge_group("g", by="王五") is Acknowledged.NOT_OPEN
    assert await store.get_group("g") is None


async def test_a_silence_is_an_acknowledgement_until_a_time(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("g", INFO, timers(START + 60))
    assert await store.acknowledge_group("g", by="ops", silenced_until=START + 3600)
    clock.advance(1)
    assert await store.acknowledge_group("g", by="lead")  # keeps the silence
    group = await store.get_group("g")
    assert group is not None
    assert (group.acknowledged_by, group.silenced_until) == ("lead", START + 3600)


async def test_resolving_forgets_the_group_and_its_timers(store: Outbox, clock: FakeClock) -> None:
    await store.open_group("g", INFO, timers(START + 1))
    await store.open_group("other", INFO, timers(START + 2))
    clock.advance(5)
    [held, _] = await store.claim_timers(limit=5, lease_seconds=30)
    assert held.group_id == "g"
    assert await store.resolve_group("g")
    assert not await store.resolve_group("g")
    assert await store.get_group("g") is None
    with pytest.raises(TimerLostError):
        await store.fire_timer(held, [text("resolved meanwhile")])
    # It fires anew if it fires again later: a new episode with new timers.
    assert await store.open_group("g", INFO, timers(START + 100))
    assert [g.id for g in await store.list_groups()] == ["other", "g"]


async def test_list_groups_oldest_first_with_a_limit(store: Outbox, clock: FakeClock) -> None:
    for name in ("c", "a", "b"):
        await store.open_group(name, {"name": name}, timers(START + 60))
        clock.advance(1)
    await store.open_group("x", {}, [])
    await store.open_group("y", {}, [])  # same time as x: by id
    listed = await store.list_groups()
    assert [g.id for g in listed] == ["c", "a", "b", "x", "y"]
    assert listed[0].info == {"name": "c"} and len(listed[0].timers) == 1
    assert [g.id for g in await store.list_groups(limit=2)] == ["c", "a"]
    assert await store.list_groups(limit=0) == []


async def test_purge_forgets_stale_groups_and_ended_silences(
    store: Outbox, clock: FakeClock
) -> None:
    await store.open_group("stale", INFO, timers(START + 1))
    clock.advance(20)
    await store.open_group("silenced", INFO, [])
    await store.acknowledge_group("silenced", by="x", silenced_until=START + 50)
    clock.advance(20)
    await store.open_group("fresh", INFO, [])
    assert await store.purge_groups(before=START + 10) == 1  # stale only: the silence runs
    assert [g.id for g in await store.list_groups()] == ["silenced", "fresh"]
    clock.advance(10)
    assert await store.purge_groups(before=START + 10) == 1
    assert [g.id for g in await store.list_groups()] == ["fresh"]
    assert await store.next_timer_at() is None


async def test_concurrent_claims_never_share_a_timer(store: Outbox, clock: FakeClock) -> None:
    for g in range(10):
        await store.open_group(f"g{g}", INFO, timers(START, START + 1, START + 2))
    clock.advance(5)
    batches = await asyncio.gather(
        *(store.claim_timers(limit=4, lease_seconds=30) for _ in range(12))
    )
    claimed = [(t.group_id, t.key) for batch in batches for t in batch]
    assert len(claimed) == 30 and len(set(claimed)) == 30
    fired = await asyncio.gather(
        *(store.fire_timer(t, [text(f"{t.group_id}/{t.key}")]) for b in batches for t in b)
    )
    assert len(fired) == 30 and await store.pending_count() == 30
    assert await store.next_timer_at() is None


async def test_trim_forgets_the_least_recently_seen_unacknowledged_groups_past_the_bound(
    store: Outbox, clock: FakeClock
) -> None:
    for i in range(6):
        await store.open_group(f"g{i}", {"n": i}, [NewTimer("remind", START + 60)])
        clock.advance(1)
    await store.open_group("g1", {"n": "again"}, [])  # seen again: most recently mentioned
    await store.acknowledge_group("g0", by="王五")  # acknowledged: kept, with its name
    assert await store.trim_groups(keep=10) == 0
    assert await store.trim_groups(keep=3) == 2  # of g1..g5, g2 and g3 were seen longest ago
    assert sorted(g.id for g in await store.list_groups()) == ["g0", "g1", "g4", "g5"]
    assert await store.get_group("g2") is None and await store.get_group("g3") is None
    acknowledged = await store.get_group("g0")
    assert acknowledged is not None and acknowledged.acknowledged_by == "王五"
    clock.advance(120)
    claimed = await store.claim_timers(limit=10, lease_seconds=5)
    assert sorted(t.group_id for t in claimed) == ["g1", "g4", "g5"]  # theirs went too
    assert await store.trim_groups(keep=0) == 3
    assert [g.id for g in await store.list_groups()] == ["g0"]
    with pytest.raises(ValueError):
        await store.trim_groups(keep=-1)
