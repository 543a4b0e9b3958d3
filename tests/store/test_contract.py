"""The outbox contract: every implementation must pass every test here (see conftest)."""

from __future__ import annotations

import asyncio

import pytest

from wecom_bot.store import (
    LeaseLostError,
    NewMessage,
    Outbox,
    Priority,
    SendMark,
    Status,
    StoreUnavailableError,
)
from wecom_bot.store.base import LEASE_EXPIRED_ERROR, MAX_ERROR_CHARS, PRIORITY_AGING

from ._support import START, FakeClock, content, text


async def test_enqueue_stores_pending_records_with_their_fields(store: Outbox) -> None:
    ids = await store.enqueue(
        [
            text("告警 ✓ — one", notification_id="n-1"),
            NewMessage(
                bot="ops", payload={"msgtype": "image", "image": {"base64": "x", "md5": "y"}}
            ),
            NewMessage(
                bot="ops",
                payload={"msgtype": "markdown", "markdown": {"content": "**b**"}},
                coalescible=False,
            ),
        ]
    )
    assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
    first = await store.get(ids[0])
    assert first is not None
    assert first.status is Status.PENDING
    assert first.attempts == 0
    assert first.created_at == START and first.next_attempt_at == START
    assert first.lease_until is None and first.last_error is None
    assert first.kind == "text" and first.coalescible is True
    assert content(first.payload) == "告警 ✓ — one"
    assert first.notification_ids == ("n-1",) and first.notification_id == "n-1"
    image = await store.get(ids[1])
    markdown = await store.get(ids[2])
    assert image is not None and image.kind == "image" and image.coalescible is False
    assert markdown is not None and markdown.coalescible is False  # explicit flag wins
    assert await store.get(10_000) is None


async def test_stored_payload_is_a_copy(store: Outbox) -> None:
    payload = {"msgtype": "text", "text": {"content": "before"}}
    [rid] = await store.enqueue([NewMessage(bot="ops", payload=payload)])
    payload["text"]["content"] = "after"  # type: ignore[index]
    record = await store.get(rid)
    assert record is not None and content(record.payload) == "before"


async def test_enqueue_is_all_or_nothing(store: Outbox) -> None:
    bad = NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": {1, 2}}})
    with pytest.raises(ValueError, match="JSON"):
        await store.enqueue([text("fine"), bad])
    assert await store.pending_count() == 0
    assert await store.claim("ops", limit=10, lease_seconds=30) == []


def test_new_message_is_validated() -> None:
    with pytest.raises(ValueError, match="bot"):
        NewMessage(bot="", payload={"msgtype": "text"})
    with pytest.raises(ValueError, match="msgtype"):
        NewMessage(bot="ops", payload={"text": {"content": "x"}})


async def test_claim_is_fifo_per_bot(store: Outbox) -> None:
    await store.enqueue([text(f"a{i}", bot="a") for i in range(3)])
    await store.enqueue([text("b0", bot="b")])
    await store.enqueue([text(f"a{i}", bot="a") for i in range(3, 5)])

    first = await store.claim("a", limit=2, lease_seconds=30)
    assert [content(r.payload) for r in first] == ["a0", "a1"]
    assert all(r.status is Status.LEASED and r.lease_until == START + 30 for r in first)
    assert [content(r.payload) for r in await store.claim("b", limit=10, lease_seconds=30)] == [
        "b0"
    ]
    rest = await store.claim("a", limit=10, lease_seconds=30)
    assert [content(r.payload) for r in rest] == ["a2", "a3", "a4"]
    assert await store.claim("a", limit=10, lease_seconds=30) == []


def _classed(name: str, priority: Priority, bot: str = "ops") -> NewMessage:
    payload = {"msgtype": "text", "text": {"content": name}}
    return NewMessage(bot=bot, payload=payload, priority=priority)


async def test_claim_puts_alerts_before_acks_escalations_and_reminders(
    store: Outbox, clock: FakeClock
) -> None:
    await store.enqueue([_classed("remind-1", Priority.REMINDER)])
    await store.enqueue([_classed("escalate-1", Priority.ESCALATION)])
    clock.advance(1)
    await store.enqueue([_classed("ack-1", Priority.ACTION)])
    clock.advance(1)
    await store.enqueue([_classed("alert-1", Priority.ALERT), _classed("alert-2", Priority.ALERT)])
    claimed = await store.claim("ops", limit=3, lease_seconds=30)
    assert [content(r.payload) for r in claimed] == ["alert-1", "alert-2", "ack-1"]
    assert [r.priority for r in claimed] == [Priority.ALERT, Priority.ALERT, Priority.ACTION]
    rest = await store.claim("ops", limit=10, lease_seconds=30)
    assert [content(r.payload) for r in rest] == ["escalate-1", "remind-1"]
    record = await store.get(rest[1].id)
    assert record is not None and record.priority is Priority.REMINDER


async def test_a_graph_goes_after_the_alert_texts_queued_within_its_delay(
    store: Outbox, clock: FakeClock
) -> None:
    image = {"msgtype": "image", "image": {"base64": "aGk=", "md5": "0" * 32}}
    await store.enqueue([NewMessage(bot="ops", payload=image, priority=Priority.GRAPH)])
    clock.advance(PRIORITY_AGING[Priority.GRAPH] - 1)
    await store.enqueue([_classed("alert-later", Priority.ALERT)])
    claimed = await store.claim("ops", limit=2, lease_seconds=30)
    assert [r.kind for r in claimed] == ["text", "image"]
    assert claimed[1].priority is Priority.GRAPH
    await store.unclaim([r.id for r in claimed])
    clock.advance(2)  # the graph has waited its delay: a new alert no longer goes first
    await store.enqueue([_classed("alert-newest", Priority.ALERT)])
    claimed = await store.claim("ops", limit=3, lease_seconds=30)
    assert [r.kind for r in claimed] == ["text", "image", "text"]


async def test_a_lower_class_that_waited_its_delay_goes_before_new_alerts(
    store: Outbox, clock: FakeClock
) -> None:
    await store.enqueue([_classed("escalate-old", Priority.ESCALATION)])
    clock.advance(PRIORITY_AGING[Priority.ESCALATION] + 1)
    await store.enqueue([_classed("alert-new", Priority.ALERT)])
    claimed = await store.claim("ops", limit=2, lease_seconds=30)
    assert [content(r.payload) for r in claimed] == ["escalate-old", "alert-new"]


async def test_a_released_record_keeps_its_class(store: Outbox, clock: FakeClock) -> None:
    await store.enqueue([_classed("remind", Priority.REMINDER)])
    [held] = await store.claim("ops", limit=1, lease_seconds=30)
    await store.release(held.id, next_attempt_at=START + 5, error="boom")
    await store.enqueue([_classed("alert", Priority.ALERT)])
    clock.advance(10)
    claimed = await store.claim("ops", limit=2, lease_seconds=30)
    assert [content(r.payload) for r in claimed] == ["alert", "remind"]


async def test_a_digest_takes_the_class_it_is_given(store: Outbox, clock: FakeClock) -> None:
    await store.enqueue([_classed(f"r{i}", Priority.REMINDER) for i in range(3)])
    held = await store.claim("ops", limit=3, lease_seconds=30)
    [digest] = await store.replace(
        [r.id for r in held], [_classed("folded", Priority.REMINDER)]
    )
    assert digest.priority is Priority.REMINDER
    await store.unclaim([digest.id])
    await store.enqueue([_classed("alert", Priority.ALERT)])
    claimed = await store.claim("ops", limit=2, lease_seconds=30)
    assert [content(r.payload) for r in claimed] == ["alert", "folded"]


def test_new_message_refuses_an_unknown_priority() -> None:
    with pytest.raises(ValueError, match="priority"):
        NewMessage(bot="ops", payload={"msgtype": "text"}, priority=7)  # type: ignore[arg-type]


async def test_claim_rejects_nonsense_arguments(store: Outbox) -> None:
    with pytest.raises(ValueError):
        await store.claim("ops", limit=0, lease_seconds=30)
    with pytest.raises(ValueError):
        await store.claim("ops", limit=1, lease_seconds=0)


async def test_claim_hands_out_only_due_records(store: Outbox, clock: FakeClock) -> None:
    later = NewMessage(
        bot="ops", payload={"msgtype": "text", "text": {"content": "later"}}, not_before=START + 60
    )
    await store.enqueue([later, text("now")])
    assert [content(r.payload) for r in await store.claim("ops", limit=5, lease_seconds=5)] == [
        "now"
    ]
    assert await store.next_due_at("ops") == START + 5  # the lease of "now" ends first
    clock.advance(61)
    due = await store.claim("ops", limit=5, lease_seconds=5)
    # Both were created at START; "later" was enqueued first, so FIFO puts it first.
    assert [content(r.payload) for r in due] == ["later", "now"]


async def test_release_counts_the_attempt_and_waits(store: Outbox, clock: FakeClock) -> None:
    await store.enqueue([text("first"), text("second")])
    [first] = await store.claim("ops", limit=1, lease_seconds=30)
    assert await store.release(first.id, next_attempt_at=START + 10, error="HTTP 502")
    record = await store.get(first.id)
    assert record is not None
    assert record.status is Status.PENDING
    assert record.attempts == 1 and record.last_error == "HTTP 502"
    assert record.next_attempt_at == START + 10 and record.lease_until is None

    # While it waits, the record behind it is not blocked.
    assert [content(r.payload) for r in await store.claim("ops", limit=5, lease_seconds=30)] == [
        "second"
    ]
    clock.advance(10)
    [again] = await store.claim("ops", limit=5, lease_seconds=30)
    assert again.id == first.id and again.attempts == 1
    assert await store.release(again.id, next_attempt_at=clock.now, error="busy")
    assert (await store.get(first.id)).attempts == 2  # type: ignore[union-attr]
    # Releasing what is not leased changes nothing.
    assert not await store.release(first.id, next_attempt_at=clock.now, error="x")
    assert not await store.release(99_999, next_attempt_at=clock.now, error="x")


async def test_a_released_older_record_goes_first_once_due(store: Outbox, clock: FakeClock) -> None:
    await store.enqueue([text("old")])
    [old] = await store.claim("ops", limit=1, lease_seconds=30)
    await store.release(old.id, next_attempt_at=START + 5, error="timeout")
    clock.advance(1)
    await store.enqueue([text("new")])
    clock.advance(5)
    claimed = await store.claim("ops", limit=5, lease_seconds=30)
    assert [content(r.payload) for r in claimed] == ["old", "new"]


async def test_error_text_is_bounded(store: Outbox) -> None:
    await store.enqueue([text("x")])
    [record] = await store.claim("ops", limit=1, lease_seconds=30)
    await store.release(record.id, next_attempt_at=START, error="e" * 10_000)
    stored = await store.get(record.id)
    assert stored is not None and stored.last_error is not None
    assert len(stored.last_error) == MAX_ERROR_CHARS


async def test_expired_leases_come_back(store: Outbox, clock: FakeClock) -> None:
    ids = await store.enqueue([text("one"), text("two")])
    claimed = await store.claim("ops", limit=5, lease_seconds=30)
    assert [r.id for r in claimed] == ids
    clock.advance(29)
    assert await store.claim("ops", limit=5, lease_seconds=30) == []
    assert await store.bots_with_due_work() == []
    clock.advance(1)
    assert await store.bots_with_due_work() == ["ops"]
    again = await store.claim("ops", limit=5, lease_seconds=30)
    assert [r.id for r in again] == ids
    assert all(r.attempts == 1 and r.last_error == LEASE_EXPIRED_ERROR for r in again)
    assert all(r.lease_until == clock.now + 30 for r in again)


async def test_a_renewed_lease_is_not_recovered(store: Outbox, clock: FakeClock) -> None:
    ids = await store.enqueue([text("one"), text("two"), text("three")])
    held = await store.claim("ops", limit=2, lease_seconds=30)
    clock.advance(20)
    assert await store.renew([r.id for r in held], lease_seconds=30) == 2
    clock.advance(20)  # 40 s after the claim, 20 s after the renewal
    assert await store.recover_expired_leases() == 0
    assert [r.id for r in await store.claim("ops", limit=5, lease_seconds=30)] == [ids[2]]
    renewed = await store.get(ids[0])
    assert renewed is not None and renewed.status is Status.LEASED
    assert renewed.lease_until == START + 20 + 30 and renewed.attempts == 0
    clock.advance(10.5)  # the renewed lease ran out: the record comes back, one attempt
    again = await store.claim("ops", limit=5, lease_seconds=30)
    assert [r.id for r in again] == ids[:2]
    assert all(r.attempts == 1 and r.last_error == LEASE_EXPIRED_ERROR for r in again)


async def test_renew_leaves_records_that_are_not_leased(store: Outbox, clock: FakeClock) -> None:
    ids = await store.enqueue([text("one"), text("two"), text("three")])
    held = await store.claim("ops", limit=3, lease_seconds=30)
    await store.ack([held[0].id])
    await store.release(held[1].id, next_attempt_at=START + 99, error="HTTP 502")
    assert await store.renew([*ids, 987_654], lease_seconds=60) == 1
    sent, released, leased = [await store.get(i) for i in ids]
    assert sent is not None and sent.status is Status.SENT and sent.lease_until is None
    assert released is not None and released.status is Status.PENDING
    assert released.lease_until is None and released.next_attempt_at == START + 99
    assert leased is not None and leased.lease_until == START + 60
    with pytest.raises(ValueError):
        await store.renew(ids, lease_seconds=0)


async def test_recover_expired_leases_covers_every_bot(store: Outbox, clock: FakeClock) -> None:
    await store.enqueue([text("a", bot="a"), text("b", bot="b"), text("c", bot="c")])
    await store.claim("a", limit=1, lease_seconds=10)
    await store.claim("b", limit=1, lease_seconds=100)
    clock.advance(50)
    assert await store.recover_expired_leases() == 1
    a = (await store.claim("a", limit=1, lease_seconds=10))[0]
    assert a.attempts == 1 and a.last_error == LEASE_EXPIRED_ERROR
    assert await store.recover_expired_leases() == 0
    assert await store.pending_count() == 3


async def test_ack_marks_sent_and_is_idempotent(store: Outbox) -> None:
    ids = await store.enqueue([text("one"), text("two"), text("three")])
    claimed = await store.claim("ops", limit=2, lease_seconds=30)
    assert await store.ack([r.id for r in claimed]) == 2
    assert await store.ack([r.id for r in claimed]) == 0
    assert await store.ack([123_456]) == 0
    sent = await store.get(ids[0])
    assert sent is not None and sent.status is Status.SENT and sent.lease_until is None
    assert await store.pending_count() == 1
    assert not await store.release(ids[0], next_attempt_at=START, error="late")
    assert not await store.dead(ids[0], "late")
    # A delivery that succeeded after its lease ran out is still recorded as sent.
    assert await store.ack([ids[2]]) == 1
    assert await store.pending_count() == 0


async def test_unclaim_returns_records_without_an_attempt(store: Outbox) -> None:
    ids = await store.enqueue([text("one"), text("two")])
    await store.claim("ops", limit=2, lease_seconds=30)
    assert await store.unclaim(ids) == 2
    assert await store.unclaim(ids) == 0
    again = await store.claim("ops", limit=2, lease_seconds=30)
    assert [r.id for r in again] == ids and all(r.attempts == 0 for r in again)


async def test_dead_letters_carry_the_error_and_can_be_requeued(
    store: Outbox, clock: FakeClock
) -> None:
    ids = await store.enqueue([text("bad", bot="a"), text("worse", bot="b"), text("ok", bot="a")])
    [bad] = await store.claim("a", limit=1, lease_seconds=30)
    await store.release(bad.id, next_attempt_at=START, error="HTTP 502")
    [bad] = await store.claim("a", limit=1, lease_seconds=30)
    assert await store.dead(bad.id, "WeCom API error 40058: text.content exceed max length")
    assert await store.dead(ids[1], "invalid key")  # pending records can be dead-lettered too
    assert not await store.dead(ids[1], "twice")

    dead = await store.list_dead()
    assert [r.id for r in dead] == [ids[0], ids[1]]
    # the failed release counts one attempt, the leased try that ended dead another
    assert dead[0].status is Status.DEAD and dead[0].attempts == 2
    assert dead[1].attempts == 0  # never tried: dead-lettered while pending
    assert dead[0].last_error == "WeCom API error 40058: text.content exceed max length"
    assert [r.id for r in await store.list_dead("b")] == [ids[1]]
    assert len(await store.list_dead(limit=1)) == 1
    assert await store.dead_count() == 2 and await store.dead_count("a") == 1
    assert await store.pending_count() == 1  # dead letters are not pending

    clock.advance(100)
    assert await store.requeue_dead([ids[0], ids[2]]) == 1  # ids[2] is not dead
    requeued = await store.get(ids[0])
    assert requeued is not None and requeued.status is Status.PENDING
    assert requeued.attempts == 0 and requeued.next_attempt_at == clock.now
    assert requeued.last_error is not None  # kept for history
    claimed = await store.claim("a", limit=5, lease_seconds=30)
    assert [r.id for r in claimed] == [ids[0], ids[2]]

    assert await store.discard_dead([ids[1], ids[2]]) == 1
    assert await store.get(ids[1]) is None
    assert await store.get(ids[2]) is not None
    assert await store.dead_count() == 0


async def test_enqueue_once_dedups_within_the_window(store: Outbox, clock: FakeClock) -> None:
    first = await store.enqueue_once("am:group-1", 60, [text("fire"), text("fire, part 2")])
    assert first is not None and len(first) == 2
    record = await store.get(first[0])
    assert record is not None and record.dedup_key == "am:group-1"

    clock.advance(59)
    assert await store.enqueue_once("am:group-1", 60, [text("fire again")]) is None
    assert await store.pending_count() == 2
    other = await store.enqueue_once("am:group-2", 60, [text("other")])
    assert other is not None and len(other) == 1

    clock.advance(1)  # 60 s after the first acceptance; duplicates did not extend it
    later = await store.enqueue_once("am:group-1", 60, [text("fire, next round")])
    assert later is not None and len(later) == 1
    assert await store.pending_count() == 4
    assert await store.enqueue_once("am:group-1", 60, [text("dup")]) is None


async def test_enqueue_once_is_atomic_under_concurrency(store: Outbox) -> None:
    results = await asyncio.gather(
        *(store.enqueue_once("same", 60, [text(f"copy {i}")]) for i in range(10))
    )
    assert sum(r is not None for r in results) == 1
    assert await store.pending_count() == 1


async def test_replace_swaps_claimed_records_for_a_digest(store: Outbox, clock: FakeClock) -> None:
    ids = await store.enqueue([text("a1", notification_id="n1"), text("a2", notification_id="n2")])
    clock.advance(1)
    ids += await store.enqueue([text("a3", notification_id="n1")])
    clock.advance(1)
    tail = await store.enqueue([text("after")])
    claimed = await store.claim("ops", limit=3, lease_seconds=30)
    assert [r.id for r in claimed] == ids

    digest_msg = NewMessage(
        bot="ops",
        payload={"msgtype": "markdown", "markdown": {"content": "a1\na2\na3"}},
        notification_id="digest-run",
    )
    [digest] = await store.replace(ids, [digest_msg])
    assert digest.status is Status.LEASED
    assert digest.lease_until == clock.now + 30
    assert digest.created_at == START  # keeps the oldest original's place and age
    assert digest.notification_ids == ("n1", "n2", "digest-run")
    assert digest.attempts == 0 and digest.kind == "markdown"
    for rid in ids:
        original = await store.get(rid)
        assert original is not None
        assert original.status is Status.SENT and original.replaced_by == digest.id
    assert await store.pending_count() == 2  # the digest and "after"

    # History of a notification shows where its content went.
    assert [r.id for r in await store.find_by_notification("n1")] == [ids[0], ids[2], digest.id]
    assert [r.id for r in await store.find_by_notification("n2")] == [ids[1], digest.id]
    assert await store.find_by_notification("nope") == []
    # The light read for history states agrees on everything a state is computed from.
    for nid in ("n1", "n2", "nope"):
        full = await store.find_by_notification(nid)
        light = await store.delivery_states(nid)
        keep = ("id", "bot", "kind", "status", "attempts", "next_attempt_at", "replaced_by")
        assert [[getattr(r, k) for k in keep] for r in light] == [
            [getattr(r, k) for k in keep] for r in full
        ]

    # A digest that fails goes back ahead of newer messages.
    await store.release(digest.id, next_attempt_at=clock.now, error="HTTP 503")
    again = await store.claim("ops", limit=5, lease_seconds=30)
    assert [r.id for r in again] == [digest.id, *tail]


async def test_replace_is_atomic(store: Outbox) -> None:
    ids = await store.enqueue([text("x"), text("y"), text("z")])
    await store.claim("ops", limit=3, lease_seconds=30)
    await store.ack([ids[1]])
    digest = NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": "x y z"}})
    with pytest.raises(LeaseLostError) as info:
        await store.replace(ids, [digest])
    assert info.value.ids == [ids[1]]
    for rid in (ids[0], ids[2]):
        record = await store.get(rid)
        assert record is not None and record.status is Status.LEASED
        assert record.replaced_by is None
    assert await store.pending_count() == 2  # no digest was stored

    with pytest.raises(ValueError):
        await store.replace([ids[0]], [])
    with pytest.raises(ValueError):
        await store.replace([], [digest])
    bad = NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": float("nan")}})
    with pytest.raises(ValueError):
        await store.replace([ids[0]], [bad])
    still = await store.get(ids[0])
    assert still is not None and still.status is Status.LEASED


async def test_counts_per_bot(store: Outbox, clock: FakeClock) -> None:
    assert await store.pending_count() == 0
    assert await store.depth_by_bot() == {}
    assert await store.oldest_pending_age("a") is None
    assert await store.next_due_at() is None
    await store.enqueue([text("a1", bot="a"), text("b1", bot="b")])
    clock.advance(10)
    await store.enqueue([text("a2", bot="a"), text("c1", bot="c")])
    await store.claim("c", limit=1, lease_seconds=30)
    [b1] = await store.claim("b", limit=1, lease_seconds=30)
    await store.ack([b1.id])

    assert await store.pending_count() == 3
    assert await store.pending_count("a") == 2
    assert await store.pending_count("b") == 0
    assert await store.pending_count("c") == 1  # leased is still undelivered
    assert await store.depth_by_bot() == {"a": 2, "c": 1}
    clock.advance(5)
    assert await store.oldest_pending_age("a") == 15
    assert await store.oldest_pending_age("a", now=START + 100) == 100
    assert await store.oldest_pending_age("b") is None
    assert await store.bots_with_due_work() == ["a"]
    assert await store.next_due_at("c") == START + 10 + 30
    assert await store.next_due_at() == START


async def test_purge_sent_keeps_the_rest(store: Outbox, clock: FakeClock) -> None:
    ids = await store.enqueue([text("one", notification_id="n"), text("two")])
    await store.ack([ids[0]])
    clock.advance(100)
    assert await store.purge_sent(before=START) == 0
    assert await store.purge_sent(before=START + 1) == 1
    assert await store.get(ids[0]) is None
    assert await store.get(ids[1]) is not None
    assert await store.find_by_notification("n") == []
    new = await store.enqueue([text("three")])
    assert new[0] > ids[1]  # ids are never reused


async def test_concurrent_claims_never_share_a_record(store: Outbox) -> None:
    await store.enqueue([text(str(i)) for i in range(60)])
    batches = await asyncio.gather(
        *(store.claim("ops", limit=7, lease_seconds=30) for _ in range(12))
    )
    ids = [r.id for batch in batches for r in batch]
    assert len(ids) == 60 and len(set(ids)) == 60


async def test_many_ids_at_once(store: Outbox) -> None:
    ids = await store.enqueue([text(str(i)) for i in range(1_234)])
    claimed = await store.claim("ops", limit=2_000, lease_seconds=30)
    assert len(claimed) == 1_234
    assert await store.ack(ids) == 1_234
    assert await store.pending_count() == 0


async def test_a_store_nothing_happened_to_keeps_its_identity(store: Outbox) -> None:
    assert await store.check_identity() is None  # the first call fixes the identity
    await store.enqueue([text("kept")])
    assert await store.check_identity() is None
    assert await store.check_identity(repair=True) is None
    assert await store.pending_count("ops") == 1
    warning = await store.durability_warning()
    assert warning is None or "appendonly" in warning  # only a Redis without persistence warns
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.check_identity()


async def test_ping_and_close(store: Outbox) -> None:
    await store.ping()
    assert store.location
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.ping()
    await store.close()  # closing twice is harmless


async def test_ties_in_time_fall_back_to_enqueue_order(store: Outbox) -> None:
    ids: list[int] = []
    for i in range(25):  # separate calls, same instant; ids cross 9 -> 10 and 19 -> 20
        ids += await store.enqueue([text(f"t{i}")])
    claimed = await store.claim("ops", limit=100, lease_seconds=30)
    assert [r.id for r in claimed] == ids


async def test_times_are_kept_exactly(store: Outbox) -> None:
    at = START + 0.123456
    [rid] = await store.enqueue([text("precise")], now=at)
    [record] = await store.claim("ops", limit=1, lease_seconds=0.000001, now=at + 1e-6)
    assert record.created_at == at
    assert record.lease_until == at + 1e-6 + 0.000001
    stored = await store.get(rid)
    assert stored is not None and stored.created_at == at


# -- settle: a journal record becomes the messages rendered from it ------------------------------

INBOX = "~inbox"


def inbox(notification_id: str) -> NewMessage:
    """A journalled inbound notification, as the gateway stores it before rendering."""
    return NewMessage(
        bot=INBOX,
        payload={"msgtype": "notification", "source": "alertmanager", "body": {"n": 1}},
        notification_id=notification_id,
        coalescible=False,
    )


async def test_settle_turns_a_leased_record_into_pending_messages(
    store: Outbox, clock: FakeClock
) -> None:
    accepted = []
    for key, nid in (("am:1", "n-1"), ("am:2", "n-2")):  # journalled as the gateway does
        ids = await store.enqueue_once(key, 60, [inbox(nid)])
        assert ids is not None
        accepted += ids
        clock.advance(1)
    first_id, second_id = accepted
    [newer] = await store.enqueue([text("accepted later", bot="a")])
    first, second = await store.claim(INBOX, limit=5, lease_seconds=30)
    assert (first.id, second.id) == (first_id, second_id)
    clock.advance(3)

    # Settled in reverse: FIFO still follows when each original was accepted.
    from_second = await store.settle(second_id, [text("2a", bot="a", notification_id="n-2")])
    image = NewMessage(
        bot="b",
        payload={"msgtype": "image", "image": {"base64": "x", "md5": "y"}},
        notification_id="n-1",
    )
    plain = NewMessage(
        bot="a",
        payload={"msgtype": "markdown", "markdown": {"content": "1b"}},
        notification_id="n-1",
        coalescible=False,
    )
    from_first = await store.settle(
        first_id, [text("1a", bot="a", notification_id="n-1"), image, plain]
    )
    assert len(from_first) == 3 and len(set(from_first) | set(from_second)) == 4
    assert from_first == sorted(from_first) and min(from_first) > max(from_second)

    original = await store.get(first_id)
    assert original is not None
    assert original.status is Status.SENT and original.lease_until is None
    assert original.updated_at == clock.now and original.replaced_by is None
    assert await store.depth_by_bot() == {"a": 4, "b": 1}
    assert await store.oldest_pending_age("a") == clock.now - START

    made = await store.get(from_first[0])
    assert made is not None
    assert made.status is Status.PENDING and made.bot == "a" and made.attempts == 0
    assert made.created_at == START  # the original's acceptance time, not the settle time
    assert made.next_attempt_at == clock.now and made.updated_at == clock.now
    assert made.lease_until is None and made.dedup_key is None and made.last_error is None
    assert made.notification_ids == ("n-1",) and made.coalescible is True
    stored_plain = await store.get(from_first[2])
    assert stored_plain is not None and stored_plain.coalescible is False

    claimed = await store.claim("a", limit=10, lease_seconds=30)
    assert [r.id for r in claimed] == [from_first[0], from_first[2], *from_second, newer]
    assert [r.created_at for r in claimed] == [START, START, START + 1, START + 2]
    [to_b] = await store.claim("b", limit=10, lease_seconds=30)
    assert to_b.id == from_first[1] and to_b.kind == "image" and to_b.created_at == START
    assert [r.id for r in await store.find_by_notification("n-1")] == [first_id, *from_first]
    assert [r.id for r in await store.find_by_notification("n-2")] == [second_id, *from_second]


async def test_settle_with_no_messages_just_finishes_the_record(
    store: Outbox, clock: FakeClock
) -> None:
    [rid] = await store.enqueue([inbox("n-empty")])
    await store.claim(INBOX, limit=1, lease_seconds=30)
    clock.advance(2)
    assert await store.settle(rid, []) == []
    record = await store.get(rid)
    assert record is not None and record.status is Status.SENT
    assert record.updated_at == clock.now and record.lease_until is None
    assert await store.pending_count() == 0 and await store.depth_by_bot() == {}
    assert await store.next_due_at() is None
    assert await store.claim(INBOX, limit=1, lease_seconds=30) == []


async def test_settle_honours_not_before(store: Outbox, clock: FakeClock) -> None:
    [rid] = await store.enqueue([inbox("n-later")])
    await store.claim(INBOX, limit=1, lease_seconds=30)
    later = NewMessage(
        bot="a",
        payload={"msgtype": "text", "text": {"content": "later"}},
        not_before=START + 60,
    )
    later_id, now_id = await store.settle(rid, [later, text("now", bot="a")])
    stored = await store.get(later_id)
    assert stored is not None and stored.next_attempt_at == START + 60
    assert [r.id for r in await store.claim("a", limit=5, lease_seconds=5)] == [now_id]
    assert await store.next_due_at("a") == START + 5  # the lease of "now" ends first
    await store.ack([now_id])
    assert await store.next_due_at("a") == START + 60
    assert await store.bots_with_due_work() == []
    clock.advance(60)
    assert await store.bots_with_due_work() == ["a"]
    [due] = await store.claim("a", limit=5, lease_seconds=5)
    assert due.id == later_id and due.created_at == START


async def test_settle_refuses_a_record_that_is_not_leased(store: Outbox, clock: FakeClock) -> None:
    ids = await store.enqueue([inbox(f"n-{i}") for i in range(4)])
    pending, settled, acked, expired = ids
    assert len(await store.claim(INBOX, limit=4, lease_seconds=30)) == 4
    assert await store.unclaim([pending]) == 1
    [once] = await store.settle(settled, [text("once", bot="a", notification_id="n-1")])
    assert await store.ack([acked]) == 1
    clock.advance(30)
    assert await store.recover_expired_leases() == 1  # only `expired` was still leased

    depth = await store.depth_by_bot()
    assert depth == {INBOX: 2, "a": 1}
    for rid in (pending, settled, acked, expired, 99_999):
        before = await store.get(rid)
        with pytest.raises(LeaseLostError) as info:
            await store.settle(rid, [text("must not appear", bot="z", notification_id="n-x")])
        assert info.value.ids == [rid]
        assert await store.get(rid) == before  # not a field changed
    assert await store.depth_by_bot() == depth
    assert await store.find_by_notification("n-x") == []
    assert [r.id for r in await store.find_by_notification("n-1")] == [settled, once]


async def test_settle_checks_the_status_not_the_lease_time(store: Outbox, clock: FakeClock) -> None:
    # A lease that ran out but was not recovered yet is still held (as for replace): the
    # processor finished its work, and settling beats rendering the notification twice.
    [rid] = await store.enqueue([inbox("n-late")])
    await store.claim(INBOX, limit=1, lease_seconds=10)
    clock.advance(15)
    [made] = await store.settle(rid, [text("late but done", bot="a")])
    record = await store.get(rid)
    assert record is not None and record.status is Status.SENT and record.attempts == 0
    assert await store.recover_expired_leases() == 0
    assert [r.id for r in await store.claim("a", limit=5, lease_seconds=5)] == [made]


async def test_settle_is_atomic(store: Outbox) -> None:
    [rid] = await store.enqueue([inbox("n-bad")])
    [leased] = await store.claim(INBOX, limit=1, lease_seconds=30)
    bad = NewMessage(bot="b", payload={"msgtype": "text", "text": {"content": float("nan")}})
    with pytest.raises(ValueError, match="JSON"):
        await store.settle(rid, [text("fine", bot="a", notification_id="n-bad"), bad])
    assert await store.get(rid) == leased  # still leased, untouched
    assert await store.depth_by_bot() == {INBOX: 1}
    assert [r.id for r in await store.find_by_notification("n-bad")] == [rid]
    # The holder can still finish it properly.
    [made] = await store.settle(rid, [text("fine", bot="a", notification_id="n-bad")])
    assert await store.depth_by_bot() == {"a": 1}
    assert [r.id for r in await store.find_by_notification("n-bad")] == [rid, made]


async def test_concurrent_settles_all_land(store: Outbox, clock: FakeClock) -> None:
    ids: list[int] = []
    for i in range(40):
        ids += await store.enqueue([inbox(f"n-{i}")])
        clock.advance(0.5)
    claimed = await store.claim(INBOX, limit=100, lease_seconds=30)
    assert [r.id for r in claimed] == ids
    await store.ack(ids[::10])  # a few are gone: their settles must fail alone
    results = await asyncio.gather(
        *(
            store.settle(
                rid,
                [
                    text(f"{i} to a", bot="a", notification_id=f"n-{i}"),
                    text(f"{i} to b", bot="b", notification_id=f"n-{i}"),
                ],
            )
            for i, rid in enumerate(ids)
        ),
        return_exceptions=True,
    )
    lost = [i for i, r in enumerate(results) if isinstance(r, LeaseLostError)]
    assert lost == list(range(0, 40, 10))
    landed = [r for r in results if isinstance(r, list)]
    assert len(landed) == 36
    assert len({i for pair in landed for i in pair}) == 72
    assert await store.depth_by_bot() == {"a": 36, "b": 36}
    for i, rid in enumerate(ids):
        record = await store.get(rid)
        assert record is not None and record.status is Status.SENT, i
    # FIFO by acceptance time, whatever order the settles committed in.
    to_a = await store.claim("a", limit=100, lease_seconds=30)
    expected = [f"{i} to a" for i in range(40) if i % 10]
    assert [content(r.payload) for r in to_a] == expected
    assert [r.created_at for r in to_a] == [START + 0.5 * i for i in range(40) if i % 10]


# -- the send log ---------------------------------------------------------------------------------
async def test_recent_sends_are_those_since_oldest_first_per_key(store: Outbox) -> None:
    at = START + 0.125  # a fraction that must come back exactly
    await store.note_send("k1", at + 2, keep=60)
    await store.note_send("k1", at, keep=60)
    await store.note_send("k1", at + 1, keep=60, rejected=True)
    await store.note_send("k2", at + 1, keep=60)

    assert await store.recent_sends("k1", at) == [
        SendMark(at),
        SendMark(at + 1, rejected=True),
        SendMark(at + 2),
    ]
    assert await store.recent_sends("k1", at + 1) == [SendMark(at + 1, True), SendMark(at + 2)]
    assert await store.recent_sends("k2", 0.0) == [SendMark(at + 1)]
    assert await store.recent_sends("unknown", 0.0) == []


async def test_two_sends_at_the_same_time_are_both_kept(store: Outbox) -> None:
    await store.note_send("k", START, keep=60)
    await store.note_send("k", START, keep=60)
    assert await store.recent_sends("k", START) == [SendMark(START), SendMark(START)]


async def test_note_send_forgets_marks_older_than_keep(store: Outbox) -> None:
    await store.note_send("k", START, keep=10)
    await store.note_send("other", START, keep=10)
    await store.note_send("k", START + 10, keep=10)  # START is exactly `keep` old: kept
    assert [m.at for m in await store.recent_sends("k", 0.0)] == [START, START + 10]
    await store.note_send("k", START + 10.5, keep=10)
    assert [m.at for m in await store.recent_sends("k", 0.0)] == [START + 10, START + 10.5]
    assert await store.recent_sends("other", 0.0) == [SendMark(START)]  # another key's marks


async def test_the_send_log_of_a_closed_store_is_unavailable(store: Outbox) -> None:
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.note_send("k", START, keep=60)
    with pytest.raises(StoreUnavailableError):
        await store.recent_sends("k", START)
