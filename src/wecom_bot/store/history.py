"""Delivery history: what each inbound notification became and what happened to it.

The gateway's console shows it; it lives in the same backend as the outbox (the same SQLite
file, the same Redis), so one ``store`` setting keeps both. :class:`HistoryStore` is a small
interface with three implementations (:class:`MemoryHistory` here,
:class:`~wecom_bot.store.history_sqlite.SQLiteHistory`,
:class:`~wecom_bot.store.history_redis.RedisHistory`) verified by one contract suite;
:func:`open_history` picks the one that matches an outbox.

An entry (:class:`HistoryEntry`) is written when a notification is received and carries the
messages it was rendered into; events (:class:`HistoryEvent`) are appended as the dispatcher
works (delivered, retried, dead-lettered, requeued ...). Entries are searched by time, state,
source, bot, route and label; :meth:`HistoryStore.purge` removes entries older than the
retention together with their events. Nothing here ever holds a webhook key: bots are names.
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .base import Outbox, StoreUnavailableError

__all__ = [
    "HistoryEntry",
    "HistoryEvent",
    "HistoryQuery",
    "HistoryStore",
    "MemoryHistory",
    "open_history",
]

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

MAX_LABEL_PAIRS = 200
"""Label pairs kept per entry for search (a storm of distinct alerts cannot bloat the index)."""

MAX_LABEL_CHARS = 200
"""A label name or value longer than this is cut before it is indexed."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One inbound notification and what it became.

    Attributes:
        id: the notification id (what outbox records carry in ``notification_ids``).
        received_at: when it was received (the first time, if it came again).
        updated_at: the last change (state or messages).
        source: ``alertmanager``, ``grafana``, ``generic``, ``playground`` ...
        status: ``firing`` or ``resolved``.
        state: ``pending``, ``deferred``, ``retrying``, ``delivered``, ``dead``, ``muted``,
            ``dropped``, ``skipped`` (no route sends it) or ``failed`` (it could not be rendered).
        title: a one-line description (alert names, Grafana title, webhook name).
        labels: label pairs ``(name, value)`` of the notification and its alerts, for search.
        routes: the routes it took.
        bots: the bots it was (or would have been) sent to.
        alerts: how many alerts it held.
        messages: what it became: one dict per message (``record_id`` when queued, ``route``,
            ``bot``, ``msgtype``, ``part``, ``parts``, ``size``, ``limit``, ``payload``).
        detail: anything else worth showing (mute reason, resume time, render error).
    """

    id: str
    received_at: float
    updated_at: float
    source: str
    status: str
    state: str
    title: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    routes: tuple[str, ...] = ()
    bots: tuple[str, ...] = ()
    alerts: int = 0
    messages: tuple[Mapping[str, Any], ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pairs: dict[tuple[str, str], None] = {}
        for name, value in self.labels:
            pairs.setdefault((str(name)[:MAX_LABEL_CHARS], str(value)[:MAX_LABEL_CHARS]), None)
            if len(pairs) >= MAX_LABEL_PAIRS:
                break
        object.__setattr__(self, "labels", tuple(pairs))
        object.__setattr__(self, "routes", tuple(dict.fromkeys(self.routes)))
        object.__setattr__(self, "bots", tuple(dict.fromkeys(self.bots)))
        object.__setattr__(self, "messages", tuple(self.messages))

    @property
    def tags(self) -> list[str]:
        """The search tags: ``bot:NAME``, ``route:NAME``, ``label:NAME=VALUE``."""
        return (
            [f"bot:{b}" for b in self.bots]
            + [f"route:{r}" for r in self.routes]
            + [f"label:{n}={v}" for n, v in self.labels]
        )

    def merged(self, newer: HistoryEntry) -> HistoryEntry:
        """This entry with a later record of the same notification folded in.

        The first reception time stays; messages, routes, bots and labels accumulate; the
        state, status and detail are the newer ones.
        """
        return replace(
            newer,
            received_at=min(self.received_at, newer.received_at),
            updated_at=max(self.updated_at, newer.updated_at),
            labels=self.labels + newer.labels,
            routes=self.routes + newer.routes,
            bots=self.bots + newer.bots,
            messages=self.messages + newer.messages,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (labels as ``[name, value]`` pairs)."""
        # Field by field: dataclasses.asdict deep-copies every message payload, and history
        # encodes an entry per notification.
        return {
            "id": self.id,
            "received_at": self.received_at,
            "updated_at": self.updated_at,
            "source": self.source,
            "status": self.status,
            "state": self.state,
            "title": self.title,
            "labels": [list(p) for p in self.labels],
            "routes": list(self.routes),
            "bots": list(self.bots),
            "alerts": self.alerts,
            "messages": [dict(m) for m in self.messages],
            "detail": dict(self.detail),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryEntry:
        """The inverse of :meth:`to_json`."""
        return cls(
            id=str(data["id"]),
            received_at=float(data["received_at"]),
            updated_at=float(data["updated_at"]),
            source=str(data["source"]),
            status=str(data["status"]),
            state=str(data["state"]),
            title=str(data.get("title", "")),
            labels=tuple((str(n), str(v)) for n, v in data.get("labels", ())),
            routes=tuple(data.get("routes", ())),
            bots=tuple(data.get("bots", ())),
            alerts=int(data.get("alerts", 0)),
            messages=tuple(data.get("messages", ())),
            detail=dict(data.get("detail", {})),
        )

    def encode(self) -> str:
        """Compact JSON, as stored."""
        return _COMPACT.encode(self.to_json())


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """Something that happened to a notification's messages.

    Attributes:
        notification_id: the entry it belongs to.
        at: when.
        kind: ``queued``, ``sent``, ``retried``, ``dead_lettered``, ``requeued``,
            ``discarded``, ``duplicate``, ``muted``, ``deferred``, ``dropped`` ...
        record_id: the outbox record concerned (a digest's id when it was delivered in one).
        bot: the bot name.
        detail: the reason (an error text with any key masked), or a note.
        errcode: WeCom's errcode, when the event is an API answer.
        code: what ``detail`` says, as a stable name (``event.delivered`` ...) the pages say
            in their language with ``params``; ``None`` for a detail with no code (an event
            written before codes were kept: the pages quote its ``detail``).
        params: the values of ``code``'s text; ``detail`` among them is free text the pages
            quote as it is (an error in its writer's words).
    """

    notification_id: str
    at: float
    kind: str
    record_id: int | None = None
    bot: str | None = None
    detail: str = ""
    errcode: int | None = None
    code: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "notification_id": self.notification_id,
            "at": self.at,
            "kind": self.kind,
            "record_id": self.record_id,
            "bot": self.bot,
            "detail": self.detail,
            "errcode": self.errcode,
            "code": self.code,
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryEvent:
        """The inverse of :meth:`to_json`."""
        return cls(
            notification_id=str(data["notification_id"]),
            at=float(data["at"]),
            kind=str(data["kind"]),
            record_id=data.get("record_id"),
            bot=data.get("bot"),
            detail=str(data.get("detail", "")),
            errcode=data.get("errcode"),
            code=data.get("code") or None,
            params=dict(data.get("params") or {}),
        )

    def encode(self) -> str:
        """Compact JSON, as stored."""
        return _COMPACT.encode(self.to_json())


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A search of the history; every criterion is optional and they all must hold.

    Attributes:
        since: received at or after this time.
        until: received before this time (also the cursor of the next page: the
            ``received_at`` of the last entry of the previous one).
        states: one of these states.
        source: this source.
        bot: sent (or meant) to this bot.
        route: took this route.
        labels: every ``(name, value)`` pair is among the entry's labels.
        text: a substring of the title (case-insensitive).
        limit: at most this many entries, newest first.
    """

    since: float | None = None
    until: float | None = None
    states: tuple[str, ...] = ()
    source: str | None = None
    bot: str | None = None
    route: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    limit: int = 100

    @property
    def tags(self) -> list[str]:
        """The tags an entry must carry (see :attr:`HistoryEntry.tags`)."""
        tags = [f"label:{n}={v}" for n, v in self.labels]
        if self.bot:
            tags.append(f"bot:{self.bot}")
        if self.route:
            tags.append(f"route:{self.route}")
        return tags

    def matches(self, entry: HistoryEntry) -> bool:
        """Whether ``entry`` satisfies every criterion (the reference the backends follow)."""
        if self.since is not None and entry.received_at < self.since:
            return False
        if self.until is not None and entry.received_at >= self.until:
            return False
        if self.states and entry.state not in self.states:
            return False
        if self.source and entry.source != self.source:
            return False
        if self.text and self.text.casefold() not in entry.title.casefold():
            return False
        return set(self.tags) <= set(entry.tags)


class HistoryStore(abc.ABC):
    """Where history entries and their events are kept (see the module documentation).

    Every method is a coroutine; backend failures raise
    :class:`~wecom_bot.store.StoreUnavailableError`.
    """

    @abc.abstractmethod
    async def record(
        self, entry: HistoryEntry, events: Sequence[HistoryEvent] = ()
    ) -> HistoryEntry:
        """Store an entry and its first events in one step; an existing entry with the same id
        is merged (see :meth:`HistoryEntry.merged`). Returns what is stored now."""

    @abc.abstractmethod
    async def set_state(self, notification_id: str, state: str, *, now: float) -> bool:
        """Change an entry's state. Returns whether the entry exists."""

    @abc.abstractmethod
    async def add_events(self, events: Sequence[HistoryEvent]) -> None:
        """Append events (for entries that may or may not exist; orphans are kept too)."""

    @abc.abstractmethod
    async def get(self, notification_id: str) -> HistoryEntry | None:
        """One entry, or ``None``."""

    @abc.abstractmethod
    async def events(self, notification_id: str) -> list[HistoryEvent]:
        """The events of one entry, in the order they were added."""

    @abc.abstractmethod
    async def search(self, query: HistoryQuery) -> list[HistoryEntry]:
        """Entries matching ``query``, newest first (ties: by id, descending)."""

    @abc.abstractmethod
    async def purge(self, *, before: float) -> int:
        """Delete entries received before ``before`` and their events. Returns how many."""

    async def close(self) -> None:  # noqa: B027 - most implementations share the outbox's link
        """Release what the history holds of its own (not the outbox's connection)."""


def _sort_key(entry: HistoryEntry) -> tuple[float, str]:
    return (entry.received_at, entry.id)


class MemoryHistory(HistoryStore):
    """A :class:`HistoryStore` in memory, beside a :class:`~wecom_bot.store.MemoryOutbox`."""

    def __init__(self) -> None:
        self._entries: dict[str, HistoryEntry] = {}
        self._events: dict[str, list[HistoryEvent]] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the history memory:// is closed")

    async def record(
        self, entry: HistoryEntry, events: Sequence[HistoryEvent] = ()
    ) -> HistoryEntry:
        """See :meth:`HistoryStore.record`."""
        async with self._lock:
            self._check()
            old = self._entries.get(entry.id)
            stored = old.merged(entry) if old is not None else entry
            self._entries[entry.id] = stored
            for event in events:
                self._events.setdefault(event.notification_id, []).append(event)
            return stored

    async def set_state(self, notification_id: str, state: str, *, now: float) -> bool:
        """See :meth:`HistoryStore.set_state`."""
        async with self._lock:
            self._check()
            old = self._entries.get(notification_id)
            if old is None:
                return False
            self._entries[notification_id] = replace(old, state=state, updated_at=now)
            return True

    async def add_events(self, events: Sequence[HistoryEvent]) -> None:
        """See :meth:`HistoryStore.add_events`."""
        async with self._lock:
            self._check()
            for event in events:
                self._events.setdefault(event.notification_id, []).append(event)

    async def get(self, notification_id: str) -> HistoryEntry | None:
        """See :meth:`HistoryStore.get`."""
        self._check()
        return self._entries.get(notification_id)

    async def events(self, notification_id: str) -> list[HistoryEvent]:
        """See :meth:`HistoryStore.events`."""
        self._check()
        return list(self._events.get(notification_id, ()))

    async def search(self, query: HistoryQuery) -> list[HistoryEntry]:
        """See :meth:`HistoryStore.search`."""
        self._check()
        found = sorted(
            (e for e in self._entries.values() if query.matches(e)), key=_sort_key, reverse=True
        )
        return found[: max(query.limit, 0)]

    async def purge(self, *, before: float) -> int:
        """See :meth:`HistoryStore.purge`."""
        async with self._lock:
            self._check()
            old = [i for i, e in self._entries.items() if e.received_at < before]
            for entry_id in old:
                del self._entries[entry_id]
                self._events.pop(entry_id, None)
            for entry_id in [i for i in self._events if i not in self._entries]:
                if all(ev.at < before for ev in self._events[entry_id]):
                    del self._events[entry_id]
            return len(old)

    async def close(self) -> None:
        """Make the history unusable (as the outbox beside it)."""
        self._closed = True


def open_history(outbox: Outbox) -> HistoryStore:
    """The history kept in the same backend as ``outbox``.

    SQLite: tables in the same database, through the outbox's connection. Redis: keys under
    the outbox's prefix, through its client. Anything else: in memory.
    """
    from .sqlite import SQLiteOutbox

    if isinstance(outbox, SQLiteOutbox):
        from .history_sqlite import SQLiteHistory

        return SQLiteHistory(outbox)
    client = getattr(outbox, "client", None)
    prefix = getattr(outbox, "prefix", None)
    if client is not None and isinstance(prefix, str) and type(outbox).__name__ == "RedisOutbox":
        from .history_redis import RedisHistory

        return RedisHistory(client, prefix=prefix)
    return MemoryHistory()


def label_pairs(sources: Iterable[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    """Label pairs from several label mappings, in order, without repeats."""
    pairs: dict[tuple[str, str], None] = {}
    for labels in sources:
        for name, value in labels.items():
            pairs.setdefault((name, value), None)
    return tuple(pairs)
