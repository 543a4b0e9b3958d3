"""An in-process outbox: dicts behind an asyncio lock. Nothing survives the process.

For tests, the emulator-backed demo and one-shot CLI use. Payloads are kept as JSON text, as
in the durable stores, so a caller mutating its dict afterwards changes nothing stored and a
payload that could not be stored durably fails here too.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import (
    LEASE_EXPIRED_ERROR,
    Acknowledged,
    Armed,
    Clock,
    GroupRecord,
    LeaseLostError,
    NewMessage,
    NewTimer,
    Outbox,
    OutboxRecord,
    Priority,
    SendMark,
    Status,
    StoreUnavailableError,
    TimerLostError,
    TimerRecord,
    check_claim_arguments,
    check_keep,
    check_replace,
    check_timers,
    claim_rank,
    cut_error,
    encode_json,
    is_standing,
    merge_notification_ids,
)

_UNDELIVERED = (Status.PENDING, Status.LEASED)


def _ended(until: float | None, now: float) -> bool:
    return until is not None and until <= now


@dataclass(slots=True)
class _Timer:
    due_at: float
    payload: str
    fired: int = 0
    claim: str | None = None
    lease_until: float | None = None

    def claimable_at(self) -> float:
        return self.due_at if self.claim is None else (self.lease_until or 0.0)

    def snapshot(self, group_id: str, key: str) -> TimerRecord:
        return TimerRecord(
            group_id, key, self.due_at, json.loads(self.payload), self.fired, self.claim,
            self.lease_until,
        )  # fmt: skip


@dataclass(slots=True)
class _Group:
    opened_at: float
    updated_at: float
    info: str
    timers: dict[str, _Timer]
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    silenced_until: float | None = None

    def snapshot(self, group_id: str) -> GroupRecord:
        timers = sorted(
            (t.snapshot(group_id, k) for k, t in self.timers.items()),
            key=lambda t: (t.due_at, t.key),
        )
        return GroupRecord(
            group_id, self.opened_at, self.updated_at, json.loads(self.info),
            self.acknowledged_by, self.acknowledged_at, self.silenced_until, tuple(timers),
        )  # fmt: skip


@dataclass(slots=True)
class _Row:
    id: int
    bot: str
    kind: str
    payload: str
    status: Status
    attempts: int
    created_at: float
    next_attempt_at: float
    updated_at: float
    lease_until: float | None
    last_error: str | None
    notification_ids: tuple[str, ...]
    dedup_key: str | None
    coalescible: bool
    replaced_by: int | None = None
    priority: Priority = Priority.ALERT

    def snapshot(self) -> OutboxRecord:
        return OutboxRecord(
            id=self.id,
            bot=self.bot,
            kind=self.kind,
            payload=json.loads(self.payload),
            status=self.status,
            attempts=self.attempts,
            created_at=self.created_at,
            next_attempt_at=self.next_attempt_at,
            updated_at=self.updated_at,
            lease_until=self.lease_until,
            last_error=self.last_error,
            notification_ids=self.notification_ids,
            dedup_key=self.dedup_key,
            coalescible=self.coalescible,
            replaced_by=self.replaced_by,
            priority=self.priority,
        )

    def order(self) -> tuple[float, int]:
        return (claim_rank(self.created_at, self.priority), self.id)

    def expired(self, now: float) -> bool:
        return self.status is Status.LEASED and (self.lease_until or 0.0) <= now


class MemoryOutbox(Outbox):
    """An :class:`~wecom_bot.store.base.Outbox` held in memory.

    Args:
        clock: the time source used when a method is called without ``now``.
    """

    def __init__(self, *, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
        self.location = "memory://"
        self._rows: dict[int, _Row] = {}
        # Undelivered (pending or leased) rows per bot, so that claims and counts do not walk
        # the delivered history.
        self._live: dict[str, dict[int, _Row]] = {}
        self._dedup: dict[str, float] = {}
        self._dedup_sweep_at = 0.0
        # notification id -> record ids carrying it; may hold ids since deleted (checked on read)
        self._by_notification: dict[str, set[int]] = {}
        self._sends: dict[str, list[SendMark]] = {}
        self._groups: dict[str, _Group] = {}
        self._next_id = 1
        self._lock = asyncio.Lock()
        self._closed = False

    # -- helpers (called with the lock held) -------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the outbox memory:// is closed")

    def _track(self, row: _Row) -> None:
        self._rows[row.id] = row
        self._live.setdefault(row.bot, {})[row.id] = row
        for nid in row.notification_ids:
            self._by_notification.setdefault(nid, set()).add(row.id)

    def _forget(self, record_id: int) -> None:
        row = self._rows.pop(record_id)
        for nid in row.notification_ids:
            ids = self._by_notification.get(nid)
            if ids is not None:
                ids.discard(record_id)
                if not ids:
                    del self._by_notification[nid]

    def _untrack(self, row: _Row) -> None:
        live = self._live.get(row.bot)
        if live is not None:
            live.pop(row.id, None)
            if not live:
                del self._live[row.bot]

    def _build(
        self,
        message: NewMessage,
        now: float,
        *,
        dedup_key: str | None = None,
        created_at: float | None = None,
    ) -> _Row:
        row = _Row(
            id=self._next_id,
            bot=message.bot,
            kind=message.kind,
            payload=message.encoded(),
            status=Status.PENDING,
            attempts=0,
            created_at=now if created_at is None else created_at,
            next_attempt_at=now if message.not_before is None else message.not_before,
            updated_at=now,
            lease_until=None,
            last_error=None,
            notification_ids=(message.notification_id,) if message.notification_id else (),
            dedup_key=dedup_key,
            coalescible=message.is_coalescible,
            priority=message.priority,
        )
        self._next_id += 1
        return row

    def _insert_all(
        self,
        messages: Sequence[NewMessage],
        now: float,
        dedup_key: str | None = None,
        *,
        created_at: float | None = None,
    ) -> list[int]:
        # Encode everything before touching the dict so a bad payload stores nothing.
        rows = [self._build(m, now, dedup_key=dedup_key, created_at=created_at) for m in messages]
        for row in rows:
            self._track(row)
        return [row.id for row in rows]

    def _mark_sent(self, row: _Row, now: float) -> None:
        self._untrack(row)
        row.status = Status.SENT
        row.lease_until = None
        row.updated_at = now

    def _recover(self, rows: Iterable[_Row], now: float) -> int:
        count = 0
        for row in rows:
            if row.expired(now):
                row.status = Status.PENDING
                row.attempts += 1
                row.last_error = LEASE_EXPIRED_ERROR
                row.next_attempt_at = row.lease_until if row.lease_until is not None else now
                row.lease_until = None
                row.updated_at = now
                count += 1
        return count

    def _undelivered(self, bot: str | None) -> list[_Row]:
        if bot is not None:
            return list(self._live.get(bot, {}).values())
        return [r for live in self._live.values() for r in live.values()]

    # -- writing ------------------------------------------------------------------------------
    async def enqueue(
        self, messages: Sequence[NewMessage], *, now: float | None = None
    ) -> list[int]:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            return self._insert_all(messages, t)

    async def enqueue_once(
        self,
        dedup_key: str,
        window_seconds: float,
        messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int] | None:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            expires = self._dedup.get(dedup_key)
            if expires is not None and expires > t:
                return None
            ids = self._insert_all(messages, t, dedup_key)
            if t >= self._dedup_sweep_at:  # sweep expired keys at most once a second
                self._dedup = {k: v for k, v in self._dedup.items() if v > t}
                self._dedup_sweep_at = t + 1.0
            self._dedup[dedup_key] = t + window_seconds
            return ids

    async def replace(
        self,
        claimed_ids: Sequence[int],
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[OutboxRecord]:
        check_replace(claimed_ids, new_messages)
        t = self._now(now)
        async with self._lock:
            self._check_open()
            originals = [self._rows.get(i) for i in claimed_ids]
            lost = [
                i
                for i, r in zip(claimed_ids, originals, strict=True)
                if r is None or r.status is not Status.LEASED
            ]
            if lost:
                raise LeaseLostError(lost)
            held = [r for r in originals if r is not None]
            snapshots = [r.snapshot() for r in held]
            created = min(r.created_at for r in held)
            lease = max(r.lease_until or t for r in held)
            new_rows = [self._build(m, t) for m in new_messages]
            for row, message in zip(new_rows, new_messages, strict=True):
                row.status = Status.LEASED
                row.lease_until = lease
                row.created_at = created
                row.notification_ids = merge_notification_ids(
                    (r.notification_ids for r in snapshots), message.notification_id
                )
                self._track(row)
            for r in held:
                self._mark_sent(r, t)
                r.replaced_by = new_rows[0].id
            return [row.snapshot() for row in new_rows]

    async def settle(
        self,
        claimed_id: int,
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int]:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            original = self._rows.get(claimed_id)
            if original is None or original.status is not Status.LEASED:
                raise LeaseLostError([claimed_id])
            ids = self._insert_all(new_messages, t, created_at=original.created_at)
            self._mark_sent(original, t)
            return ids

    # -- the dispatcher's side ---------------------------------------------------------------
    async def claim(
        self, bot: str, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[OutboxRecord]:
        if limit < 1 or lease_seconds <= 0:
            raise ValueError("claim needs limit >= 1 and lease_seconds > 0")
        t = self._now(now)
        async with self._lock:
            self._check_open()
            mine = self._undelivered(bot)
            self._recover(mine, t)
            due = heapq.nsmallest(
                limit,
                (r for r in mine if r.status is Status.PENDING and r.next_attempt_at <= t),
                key=_Row.order,
            )
            for r in due:
                r.status = Status.LEASED
                r.lease_until = t + lease_seconds
                r.updated_at = t
            return [r.snapshot() for r in due]

    async def renew(
        self, ids: Sequence[int], *, lease_seconds: float, now: float | None = None
    ) -> int:
        if lease_seconds <= 0:
            raise ValueError("renew needs lease_seconds > 0")
        t = self._now(now)
        async with self._lock:
            self._check_open()
            count = 0
            for i in set(ids):
                r = self._rows.get(i)
                if r is not None and r.status is Status.LEASED:
                    r.lease_until = t + lease_seconds
                    r.updated_at = t
                    count += 1
            return count

    async def unclaim(self, ids: Sequence[int], *, now: float | None = None) -> int:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            count = 0
            for i in ids:
                r = self._rows.get(i)
                if r is not None and r.status is Status.LEASED:
                    r.status = Status.PENDING
                    r.lease_until = None
                    r.next_attempt_at = t
                    r.updated_at = t
                    count += 1
            return count

    async def ack(self, ids: Sequence[int], *, now: float | None = None) -> int:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            count = 0
            for i in set(ids):
                r = self._rows.get(i)
                if r is not None and r.status is not Status.SENT:
                    self._mark_sent(r, t)
                    count += 1
            return count

    async def release(
        self,
        record_id: int,
        *,
        next_attempt_at: float,
        error: str,
        now: float | None = None,
    ) -> bool:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            r = self._rows.get(record_id)
            if r is None or r.status is not Status.LEASED:
                return False
            r.status = Status.PENDING
            r.attempts += 1
            r.last_error = cut_error(error)
            r.next_attempt_at = next_attempt_at
            r.lease_until = None
            r.updated_at = t
            return True

    async def dead(self, record_id: int, error: str, *, now: float | None = None) -> bool:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            r = self._rows.get(record_id)
            if r is None or r.status not in _UNDELIVERED:
                return False
            self._untrack(r)
            if r.status is Status.LEASED:
                r.attempts += 1
            r.status = Status.DEAD
            r.last_error = cut_error(error)
            r.lease_until = None
            r.updated_at = t
            return True

    # -- dead letters ---------------------------------------------------------------------------
    async def requeue_dead(self, ids: Sequence[int], *, now: float | None = None) -> int:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            count = 0
            for i in set(ids):
                r = self._rows.get(i)
                if r is not None and r.status is Status.DEAD:
                    self._track(r)
                    r.status = Status.PENDING
                    r.attempts = 0
                    r.next_attempt_at = t
                    r.updated_at = t
                    count += 1
            return count

    async def discard_dead(self, ids: Sequence[int]) -> int:
        async with self._lock:
            self._check_open()
            doomed = [i for i in set(ids) if (r := self._rows.get(i)) and r.status is Status.DEAD]
            for i in doomed:
                self._forget(i)
            return len(doomed)

    async def list_dead(self, bot: str | None = None, *, limit: int = 100) -> list[OutboxRecord]:
        async with self._lock:
            self._check_open()
            rows = sorted(
                (
                    r
                    for r in self._rows.values()
                    if r.status is Status.DEAD and (bot is None or r.bot == bot)
                ),
                key=lambda r: r.id,
            )
            return [r.snapshot() for r in rows[:limit]]

    # -- reading -----------------------------------------------------------------------------
    async def get(self, record_id: int) -> OutboxRecord | None:
        async with self._lock:
            self._check_open()
            r = self._rows.get(record_id)
            return r.snapshot() if r is not None else None

    async def find_by_notification(self, notification_id: str) -> list[OutboxRecord]:
        async with self._lock:
            self._check_open()
            ids = sorted(self._by_notification.get(notification_id, ()))
            return [
                r.snapshot()
                for i in ids
                if (r := self._rows.get(i)) is not None and notification_id in r.notification_ids
            ]

    async def pending_count(self, bot: str | None = None) -> int:
        async with self._lock:
            self._check_open()
            return len(self._undelivered(bot))

    async def dead_count(self, bot: str | None = None) -> int:
        async with self._lock:
            self._check_open()
            return sum(
                1
                for r in self._rows.values()
                if r.status is Status.DEAD and (bot is None or r.bot == bot)
            )

    async def depth_by_bot(self) -> dict[str, int]:
        async with self._lock:
            self._check_open()
            depth: dict[str, int] = {}
            for r in self._undelivered(None):
                depth[r.bot] = depth.get(r.bot, 0) + 1
            return dict(sorted(depth.items()))

    async def oldest_pending_age(self, bot: str, *, now: float | None = None) -> float | None:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            rows = self._undelivered(bot)
            return t - min(r.created_at for r in rows) if rows else None

    async def bots_with_due_work(self, *, now: float | None = None) -> list[str]:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            return sorted(
                {
                    r.bot
                    for r in self._undelivered(None)
                    if (r.status is Status.PENDING and r.next_attempt_at <= t) or r.expired(t)
                }
            )

    async def next_due_at(self, bot: str | None = None) -> float | None:
        async with self._lock:
            self._check_open()
            times = [
                r.next_attempt_at if r.status is Status.PENDING else (r.lease_until or 0.0)
                for r in self._undelivered(bot)
            ]
            return min(times) if times else None

    # -- the send log ------------------------------------------------------------------------
    async def note_send(
        self, key_id: str, at: float, *, keep: float, rejected: bool = False
    ) -> None:
        async with self._lock:
            self._check_open()
            marks = [m for m in self._sends.get(key_id, ()) if m.at >= at - keep]
            marks.append(SendMark(at, rejected))
            marks.sort(key=lambda m: m.at)
            self._sends[key_id] = marks

    async def recent_sends(self, key_id: str, since: float) -> list[SendMark]:
        async with self._lock:
            self._check_open()
            return [m for m in self._sends.get(key_id, ()) if m.at >= since]

    # -- alert groups and their timers ------------------------------------------------------
    async def open_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        now: float | None = None,
    ) -> bool:
        t = self._now(now)
        check_timers(group_id, timers)
        text = encode_json(info, "group info")
        stored = {n.key: _Timer(n.due_at, encode_json(n.payload, "timer payload")) for n in timers}
        async with self._lock:
            self._check_open()
            group = self._groups.get(group_id)
            if group is not None:
                group.info = text
                group.updated_at = t
                return False
            self._groups[group_id] = _Group(t, t, text, stored)
            return True

    async def arm_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        resumed: Sequence[NewMessage] = (),
        only_new: bool = False,
        now: float | None = None,
    ) -> tuple[Armed, list[int]]:
        t = self._now(now)
        check_timers(group_id, timers)
        text = encode_json(info, "group info")
        stored = {n.key: _Timer(n.due_at, encode_json(n.payload, "timer payload")) for n in timers}
        for message in resumed:
            message.encoded()  # a payload that is not JSON changes nothing
        async with self._lock:
            self._check_open()
            group = self._groups.get(group_id)
            if group is None:
                self._groups[group_id] = _Group(t, t, text, stored)
                return Armed.OPENED, []
            if only_new:
                return Armed.KEPT, []
            fired = not group.timers
            group.info = text
            group.updated_at = t
            group.timers = stored
            if not fired:
                return Armed.REARMED, []
            return Armed.RESUMED, self._insert_all(resumed, t)

    async def acknowledge_group(
        self,
        group_id: str,
        *,
        by: str,
        silenced_until: float | None = None,
        now: float | None = None,
    ) -> Acknowledged:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            group = self._groups.get(group_id)
            if group is None:
                return Acknowledged.NOT_OPEN
            before = group.acknowledged_at
            group.timers.clear()
            group.acknowledged_by = by
            group.acknowledged_at = t
            group.updated_at = t
            if silenced_until is not None:
                group.silenced_until = silenced_until
            return Acknowledged.FIRST if before is None else Acknowledged.AGAIN

    async def resolve_group(self, group_id: str) -> bool:
        async with self._lock:
            self._check_open()
            return self._groups.pop(group_id, None) is not None

    async def get_group(self, group_id: str) -> GroupRecord | None:
        self._check_open()
        group = self._groups.get(group_id)
        return None if group is None else group.snapshot(group_id)

    async def list_groups(self, *, limit: int = 500) -> list[GroupRecord]:
        self._check_open()
        ordered = sorted(
            ((gid, g) for gid, g in self._groups.items() if not is_standing(gid)),
            key=lambda item: (item[1].opened_at, item[0]),
        )
        return [group.snapshot(gid) for gid, group in ordered[: max(limit, 0)]]

    async def claim_timers(
        self, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[TimerRecord]:
        check_claim_arguments(limit, lease_seconds)
        t = self._now(now)
        async with self._lock:
            self._check_open()
            due = sorted(
                (timer.claimable_at(), gid, key, timer)
                for gid, group in self._groups.items()
                for key, timer in group.timers.items()
                if timer.claimable_at() <= t
            )
            claim = secrets.token_hex(8)
            out: list[TimerRecord] = []
            for _, gid, key, timer in due[:limit]:
                timer.claim = claim
                timer.lease_until = t + lease_seconds
                out.append(timer.snapshot(gid, key))
            return out

    async def fire_timer(
        self,
        timer: TimerRecord,
        messages: Sequence[NewMessage],
        *,
        next_due_at: float | None = None,
        now: float | None = None,
    ) -> list[int]:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            group = self._groups.get(timer.group_id)
            held = group.timers.get(timer.key) if group is not None else None
            if group is None or held is None or held.claim is None or held.claim != timer.claim:
                raise TimerLostError(timer.group_id, timer.key)
            ids = self._insert_all(messages, t)
            if next_due_at is None:
                del group.timers[timer.key]
            else:
                held.due_at = next_due_at
                held.fired += 1
                held.claim = held.lease_until = None
            return ids

    async def next_timer_at(self) -> float | None:
        self._check_open()
        return min(
            (tm.claimable_at() for g in self._groups.values() for tm in g.timers.values()),
            default=None,
        )

    async def purge_groups(self, *, before: float, now: float | None = None) -> int:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            doomed = [
                gid
                for gid, g in self._groups.items()
                if not is_standing(gid) and (g.updated_at < before or _ended(g.silenced_until, t))
            ]
            for gid in doomed:
                del self._groups[gid]
            return len(doomed)

    async def trim_groups(self, *, keep: int) -> int:
        check_keep(keep)
        async with self._lock:
            self._check_open()
            waiting = [
                (g.updated_at, gid)
                for gid, g in self._groups.items()
                if not g.acknowledged_by and not is_standing(gid)
            ]
            over = len(waiting) - keep
            if over <= 0:
                return 0
            for _, gid in sorted(waiting)[:over]:
                del self._groups[gid]
            return over

    # -- maintenance ------------------------------------------------------------------------
    async def recover_expired_leases(self, *, now: float | None = None) -> int:
        t = self._now(now)
        async with self._lock:
            self._check_open()
            return self._recover(self._undelivered(None), t)

    async def purge_sent(self, *, before: float) -> int:
        async with self._lock:
            self._check_open()
            doomed = [
                i
                for i, r in self._rows.items()
                if r.status is Status.SENT and r.updated_at < before
            ]
            for i in doomed:
                self._forget(i)
            return len(doomed)

    async def ping(self) -> None:
        self._check_open()

    async def check_identity(self, *, repair: bool = False) -> str | None:
        # Nothing outside the process can take this store's data away; a restart always does
        # (documented: memory:// is for tests and trials).
        self._check_open()
        return None

    async def close(self) -> None:
        self._closed = True
