"""Standing groups (heartbeats) in the outbox contract: every implementation (see conftest)
must pass every test here. A heartbeat is a group ``heartbeat:<name>`` whose one timer is armed
again at every beat; the timer firing is the miss, and the next beat after it stores the
recovery messages, for exactly one caller."""

from __future__ import annotations

import asyncio

import pytest

from wecom_bot.store import STANDING_PREFIX, Armed, NewTimer, Outbox, Status, TimerLostError

from ._support import START, FakeClock, content, text

GID = STANDING_PREFIX + "prod"


def miss(due: float) -> list[NewTimer]:
    return [NewTimer("miss", due, {"kind": "heartbeat", "name": "prod"})]


async def test_arming_opens_then_rearms_and_a_held_timer_is_lost(
    store: Outbox, clock: FakeClock
) -> None:
    assert await store.arm_group(GID, {"seen": 1}, miss(START + 5)) == (Armed.OPENED, [])
    clock.advance(6)
    [held] = await store.claim_timers(limit=1, lease_seconds=30)
    # A beat arrives while someone holds the due timer: armed anew, the holder fires nothing.
    state, ids = await store.arm_group(GID, {"seen": 2}, miss(START + 11), resumed=[text("back")])
    assert (state, ids) == (Armed.REARMED, [])
    with pytest.raises(TimerLostError):
        await store.fire_timer(held, [text("missed")])
    group = await store.get_group(GID)
    assert group is not None and group.info == {"seen": 2} and group.opened_at == START
    assert group.updated_at == START + 6
    [timer] = group.timers
    assert (timer.due_at, timer.claim, timer.fired) == (START + 11, None, 0)
    assert await store.pending_count() == 0
    assert await store.next_timer_at() == START + 11


async def test_only_new_keeps_an_open_group_untouched(store: Outbox, clock: FakeClock) -> None:
    assert (await store.arm_group(GID, {"seen": 1}, miss(START + 5), only_new=True))[0] == (
        Armed.OPENED
    )
    clock.advance(3)
    state, _ = await store.arm_group(GID, {"seen": None}, miss(START + 99), only_new=True)
    assert state is Armed.KEPT
    group = await store.get_group(GID)
    assert group is not None and group.info == {"seen": 1} and group.updated_at == START
    assert [t.due_at for t in group.timers] == [START + 5]


async def test_the_beat_after_a_miss_stores_the_recovery_once(
    store: Outbox, clock: FakeClock
) -> None:
    await store.arm_group(GID, {"seen": 1}, miss(START + 5))
    clock.advance(5)
    [timer] = await store.claim_timers(limit=1, lease_seconds=30)
    [missed] = await store.fire_timer(timer, [text("missed", notification_id="hb-1")])
    group = await store.get_group(GID)
    assert group is not None and group.timers == ()  # the missed state: open, no timer
    clock.advance(20)
    back = [text("back", notification_id="hb-2"), text("back", bot="lead")]
    state, ids = await store.arm_group(GID, {"seen": 2}, miss(START + 30), resumed=back)
    assert state is Armed.RESUMED and len(ids) == 2
    record = await store.get(ids[0])
    assert record is not None and record.status is Status.PENDING
    assert content(record.payload) == "back" and record.notification_ids == ("hb-2",)
    assert record.created_at == START + 25 and ids[0] > missed
    # The next beat only re-arms.
    state, again = await store.arm_group(GID, {"seen": 3}, miss(START + 40), resumed=back)
    assert (state, again) == (Armed.REARMED, [])
    assert await store.pending_count() == 3


async def test_of_many_callers_arming_a_missed_group_one_resumes(
    store: Outbox, clock: FakeClock
) -> None:
    await store.arm_group(GID, {}, miss(START))
    [timer] = await store.claim_timers(limit=1, lease_seconds=30)
    await store.fire_timer(timer, [])
    results = await asyncio.gather(
        *(
            store.arm_group(GID, {"by": i}, miss(START + 10), resumed=[text(f"back {i}")])
            for i in range(8)
        )
    )
    assert sorted(state for state, _ in results) == [Armed.REARMED] * 7 + [Armed.RESUMED]
    assert await store.pending_count() == 1


async def test_a_bad_recovery_payload_changes_nothing(store: Outbox, clock: FakeClock) -> None:
    from wecom_bot.store import NewMessage

    await store.arm_group(GID, {"seen": 1}, miss(START))
    [timer] = await store.claim_timers(limit=1, lease_seconds=30)
    await store.fire_timer(timer, [])
    bad = NewMessage("ops", {"msgtype": "text", "text": {"content": float("nan")}})
    with pytest.raises(ValueError, match="JSON"):
        await store.arm_group(GID, {"seen": 2}, miss(START + 9), resumed=[bad])
    group = await store.get_group(GID)
    assert group is not None and group.info == {"seen": 1} and group.timers == ()
    with pytest.raises(ValueError, match="share a key"):
        await store.arm_group(GID, {}, [NewTimer("k", START), NewTimer("k", START)])


async def test_standing_groups_are_not_alert_groups(store: Outbox, clock: FakeClock) -> None:
    await store.arm_group(GID, {"seen": 1}, miss(START + 3600))
    # An id that only looks alike in another case is an ordinary group.
    await store.open_group("HEARTBEAT:x", {}, [NewTimer("k", START + 3600)])
    await store.open_group("g", {}, [NewTimer("k", START + 3600)])
    assert [g.id for g in await store.list_groups()] == ["HEARTBEAT:x", "g"]
    clock.advance(86400)
    assert await store.purge_groups(before=START + 1) == 2
    await store.open_group("a", {}, [NewTimer("k", START + 90000)])
    await store.open_group("b", {}, [NewTimer("k", START + 90000)])
    assert await store.trim_groups(keep=1) == 1
    assert [g.id for g in await store.list_groups()] == ["b"]
    assert await store.trim_groups(keep=0) == 1
    group = await store.get_group(GID)
    assert group is not None and [t.key for t in group.timers] == ["miss"]
