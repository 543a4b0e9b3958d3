"""Delivery history in the outbox's Redis, under its key prefix.

Keys: ``{prefix}hist:{id}`` (the entry as JSON), ``{prefix}hist:time`` (a sorted set of ids by
reception time, the index searches walk newest first), ``{prefix}hist:ev:{id}`` (a list of
events as JSON). Searches filter in the gateway, walking the time index in pages and stopping
after :data:`SCAN_LIMIT` entries, which keeps one search cheap whatever the history's size.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, cast

from redis.exceptions import RedisError

from .base import StoreUnavailableError
from .history import HistoryEntry, HistoryEvent, HistoryQuery, HistoryStore

__all__ = ["SCAN_LIMIT", "RedisHistory"]

SCAN_LIMIT: Final = 20_000
"""Entries a single search looks at, at most (narrow the time range to reach older ones)."""

_PAGE: Final = 500

# The merge happens in the gateway; this script only makes the write and the index update
# one step, so a reader never sees an entry missing from the index.
_PUT: Final = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


class RedisHistory(HistoryStore):
    """A :class:`~wecom_bot.store.history.HistoryStore` in Redis.

    Args:
        client: the outbox's ``redis.asyncio.Redis`` client (``decode_responses=True``);
            not closed by :meth:`close`.
        prefix: the outbox's key prefix.
    """

    def __init__(self, client: Any, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._put = client.register_script(_PUT)

    def _entry_key(self, entry_id: str) -> str:
        return f"{self.prefix}hist:{entry_id}"

    def _events_key(self, entry_id: str) -> str:
        return f"{self.prefix}hist:ev:{entry_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}hist:time"

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except RedisError as exc:
            raise StoreUnavailableError(
                f"history: Redis failed ({type(exc).__name__}: {exc})"
            ) from exc

    async def record(
        self, entry: HistoryEntry, events: Sequence[HistoryEvent] = ()
    ) -> HistoryEntry:
        """See :meth:`HistoryStore.record`."""
        async with self._guard():
            old = await self.get(entry.id)
            stored = old.merged(entry) if old is not None else entry
            await self._put(
                keys=[self._entry_key(stored.id), self._index],
                args=[stored.encode(), repr(stored.received_at), stored.id],
            )
        await self.add_events(events)
        return stored

    async def set_state(self, notification_id: str, state: str, *, now: float) -> bool:
        """See :meth:`HistoryStore.set_state`."""
        async with self._guard():
            old = await self.get(notification_id)
            if old is None:
                return False
            new = HistoryEntry.from_json({**old.to_json(), "state": state, "updated_at": now})
            await self.client.set(self._entry_key(notification_id), new.encode(), xx=True)
            return True

    async def add_events(self, events: Sequence[HistoryEvent]) -> None:
        """See :meth:`HistoryStore.add_events`."""
        if not events:
            return
        async with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for event in events:
                pipe.rpush(self._events_key(event.notification_id), event.encode())
            await pipe.execute()

    async def get(self, notification_id: str) -> HistoryEntry | None:
        """See :meth:`HistoryStore.get`."""
        async with self._guard():
            raw = await self.client.get(self._entry_key(notification_id))
        return HistoryEntry.from_json(json.loads(raw)) if raw else None

    async def events(self, notification_id: str) -> list[HistoryEvent]:
        """See :meth:`HistoryStore.events`."""
        async with self._guard():
            raw = await cast(Any, self.client.lrange(self._events_key(notification_id), 0, -1))
        return [HistoryEvent.from_json(json.loads(item)) for item in raw]

    async def search(self, query: HistoryQuery) -> list[HistoryEntry]:
        """See :meth:`HistoryStore.search`."""
        high = "+inf" if query.until is None else f"({query.until!r}"
        low = "-inf" if query.since is None else repr(query.since)
        found: list[HistoryEntry] = []
        offset = 0
        async with self._guard():
            while len(found) < query.limit and offset < SCAN_LIMIT:
                ids = await self.client.zrevrangebyscore(
                    self._index, high, low, start=offset, num=_PAGE
                )
                if not ids:
                    break
                offset += len(ids)
                bodies = await self.client.mget([self._entry_key(i) for i in ids])
                for body in bodies:
                    if body:
                        entry = HistoryEntry.from_json(json.loads(body))
                        if query.matches(entry):
                            found.append(entry)
        found.sort(key=lambda e: (e.received_at, e.id), reverse=True)
        return found[: max(query.limit, 0)]

    async def purge(self, *, before: float) -> int:
        """See :meth:`HistoryStore.purge`."""
        removed = 0
        async with self._guard():
            while True:
                ids = await self.client.zrangebyscore(
                    self._index, "-inf", f"({before!r}", start=0, num=_PAGE
                )
                if not ids:
                    return removed
                pipe = self.client.pipeline(transaction=True)
                for entry_id in ids:
                    pipe.delete(self._entry_key(entry_id), self._events_key(entry_id))
                pipe.zrem(self._index, *ids)
                await pipe.execute()
                removed += len(ids)
