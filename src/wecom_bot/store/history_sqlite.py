"""Delivery history in the outbox's SQLite file (tables ``history``, ``history_tag``,
``history_event``).

It runs on the outbox's own connection and thread: one writer to the file (two connections
would make each wait on SQLite's busy handler behind the other), the same error mapping, and,
like the outbox, never a statement on the event loop. An in-memory SQLite outbox therefore
keeps its history in the same in-memory database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from .base import StoreOpenError
from .history import HistoryEntry, HistoryEvent, HistoryQuery, HistoryStore
from .sqlite import SQLiteOutbox

__all__ = ["SQLiteHistory"]

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS history (
    id          TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    updated_at  REAL NOT NULL,
    source      TEXT NOT NULL,
    state       TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_time ON history (received_at, id);
CREATE TABLE IF NOT EXISTS history_tag (
    tag TEXT NOT NULL,
    id  TEXT NOT NULL,
    PRIMARY KEY (tag, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_tag_id ON history_tag (id);
CREATE TABLE IF NOT EXISTS history_event (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    id   TEXT NOT NULL,
    at   REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_event_id ON history_event (id, seq);
CREATE INDEX IF NOT EXISTS history_event_at ON history_event (at);
"""


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SQLiteHistory(HistoryStore):
    """A :class:`~wecom_bot.store.history.HistoryStore` in a SQLite file.

    Args:
        outbox: the SQLite outbox whose database (and connection) the history shares.

    Raises:
        StoreOpenError: the file cannot be opened or the tables created.
    """

    def __init__(self, outbox: SQLiteOutbox) -> None:
        self.outbox = outbox
        self.path = outbox.path
        try:
            outbox._executor.submit(self._create, outbox).result()
        except RuntimeError as exc:  # the outbox's thread is gone: the outbox was closed
            raise StoreOpenError(f"store: the outbox {self.path!r} is closed") from exc

    @staticmethod
    def _create(outbox: SQLiteOutbox) -> None:
        conn = outbox._conn
        if conn is None:
            raise StoreOpenError(f"store: the outbox {outbox.path!r} is closed")
        try:
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        except sqlite3.Error as exc:
            raise StoreOpenError(
                f"store: cannot create the history tables in {outbox.path!r}: {exc}"
            ) from exc

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        # The outbox's own connection and thread: one writer to the file, so the history never
        # waits on SQLite's busy handler behind the outbox (nor the outbox behind it).
        if write:
            return await self.outbox._run(self._in_transaction, fn, args)
        return await self.outbox._run(fn, *args)

    @staticmethod
    def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        # The outbox's transaction helper: a savepoint when the store's thread is committing
        # several operations together.
        with SQLiteOutbox._transaction(conn):
            return fn(conn, *args)

    # -- synchronous bodies -------------------------------------------------------------------
    @staticmethod
    def _get_sync(conn: sqlite3.Connection, entry_id: str) -> HistoryEntry | None:
        row = conn.execute("SELECT body FROM history WHERE id = ?", (entry_id,)).fetchone()
        return HistoryEntry.from_json(json.loads(row[0])) if row else None

    @classmethod
    def _put_sync(
        cls, conn: sqlite3.Connection, entry: HistoryEntry, events: Sequence[HistoryEvent]
    ) -> HistoryEntry:
        cls._events_sync(conn, events)
        old = cls._get_sync(conn, entry.id)
        stored = old.merged(entry) if old is not None else entry
        conn.execute(
            "INSERT OR REPLACE INTO history (id, received_at, updated_at, source, state, title, "
            "body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                stored.id,
                stored.received_at,
                stored.updated_at,
                stored.source,
                stored.state,
                stored.title,
                stored.encode(),
            ),
        )
        conn.execute("DELETE FROM history_tag WHERE id = ?", (stored.id,))
        conn.executemany(
            "INSERT OR IGNORE INTO history_tag (tag, id) VALUES (?, ?)",
            [(tag, stored.id) for tag in stored.tags],
        )
        return stored

    @staticmethod
    def _events_sync(conn: sqlite3.Connection, events: Sequence[HistoryEvent]) -> None:
        conn.executemany(
            "INSERT INTO history_event (id, at, body) VALUES (?, ?, ?)",
            [(e.notification_id, e.at, e.encode()) for e in events],
        )

    @classmethod
    def _set_state_sync(
        cls, conn: sqlite3.Connection, entry_id: str, state: str, now: float
    ) -> bool:
        old = cls._get_sync(conn, entry_id)
        if old is None:
            return False
        body = HistoryEntry.from_json({**old.to_json(), "state": state, "updated_at": now})
        conn.execute(
            "UPDATE history SET state = ?, updated_at = ?, body = ? WHERE id = ?",
            (state, now, body.encode(), entry_id),
        )
        return True

    @staticmethod
    def _search_sync(conn: sqlite3.Connection, query: HistoryQuery) -> list[HistoryEntry]:
        where: list[str] = []
        params: list[Any] = []
        if query.since is not None:
            where.append("received_at >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("received_at < ?")
            params.append(query.until)
        if query.states:
            where.append(f"state IN ({','.join('?' * len(query.states))})")
            params.extend(query.states)
        if query.source:
            where.append("source = ?")
            params.append(query.source)
        if query.text:
            where.append("title LIKE ? ESCAPE '\\'")
            params.append(_like(query.text))
        for tag in query.tags:
            where.append("id IN (SELECT id FROM history_tag WHERE tag = ?)")
            params.append(tag)
        sql = "SELECT body FROM history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received_at DESC, id DESC LIMIT ?"
        params.append(max(query.limit, 0))
        entries = [HistoryEntry.from_json(json.loads(r[0])) for r in conn.execute(sql, params)]
        # LIKE folds ASCII case only; the reference semantics fold every script.
        return [e for e in entries if query.matches(e)]

    @staticmethod
    def _purge_sync(conn: sqlite3.Connection, before: float) -> int:
        conn.execute(
            "DELETE FROM history_tag WHERE id IN (SELECT id FROM history WHERE received_at < ?)",
            (before,),
        )
        conn.execute(
            "DELETE FROM history_event WHERE id IN (SELECT id FROM history WHERE received_at < ?)",
            (before,),
        )
        deleted = conn.execute("DELETE FROM history WHERE received_at < ?", (before,)).rowcount
        conn.execute(
            "DELETE FROM history_event WHERE at < ? AND id NOT IN (SELECT id FROM history)",
            (before,),
        )
        return int(deleted)

    # -- the interface -------------------------------------------------------------------------
    async def record(
        self, entry: HistoryEntry, events: Sequence[HistoryEvent] = ()
    ) -> HistoryEntry:
        """See :meth:`HistoryStore.record`."""
        return await self._run(self._put_sync, entry, list(events))

    async def set_state(self, notification_id: str, state: str, *, now: float) -> bool:
        """See :meth:`HistoryStore.set_state`."""
        return await self._run(self._set_state_sync, notification_id, state, now)

    async def add_events(self, events: Sequence[HistoryEvent]) -> None:
        """See :meth:`HistoryStore.add_events`."""
        if events:
            await self._run(self._events_sync, list(events))

    async def get(self, notification_id: str) -> HistoryEntry | None:
        """See :meth:`HistoryStore.get`."""
        return await self._run(self._get_sync, notification_id, write=False)

    async def events(self, notification_id: str) -> list[HistoryEvent]:
        """See :meth:`HistoryStore.events`."""
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT body FROM history_event WHERE id = ? ORDER BY seq", (notification_id,)
            ).fetchall(),
            write=False,
        )
        return [HistoryEvent.from_json(json.loads(r[0])) for r in rows]

    async def search(self, query: HistoryQuery) -> list[HistoryEntry]:
        """See :meth:`HistoryStore.search`."""
        return await self._run(self._search_sync, query, write=False)

    async def purge(self, *, before: float) -> int:
        """See :meth:`HistoryStore.purge`."""
        return await self._run(self._purge_sync, before)

    async def close(self) -> None:
        """Nothing to release: the connection is the outbox's (closed with it)."""
