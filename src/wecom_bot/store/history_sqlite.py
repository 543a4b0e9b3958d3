"""Delivery history in the outbox's SQLite file (tables ``history``, ``history_tag``,
``history_event``).

It opens its own connection to the same file (WAL lets the outbox and the history write in
turn) and, like the outbox, runs every statement on a dedicated thread so a slow disk never
blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from .base import StoreOpenError, StoreUnavailableError
from .history import HistoryEntry, HistoryEvent, HistoryQuery, HistoryStore

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
        path: the database file (the outbox's), or ``":memory:"``.
        busy_timeout: seconds to wait for the outbox's write lock.

    Raises:
        StoreOpenError: the file cannot be opened or the tables created.
    """

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wecom-bot-history")
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._executor.submit(self._open, busy_timeout).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            return conn
        except sqlite3.Error as exc:
            raise StoreOpenError(
                f"store: cannot create the history tables in {self.path!r}: {exc}"
            ) from exc

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise StoreUnavailableError(f"history {self.path!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreUnavailableError(f"history {self.path!r} is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"history {self.path!r}: {exc}") from exc

    # -- synchronous bodies -------------------------------------------------------------------
    @staticmethod
    def _get_sync(conn: sqlite3.Connection, entry_id: str) -> HistoryEntry | None:
        row = conn.execute("SELECT body FROM history WHERE id = ?", (entry_id,)).fetchone()
        return HistoryEntry.from_json(_loads(row[0])) if row else None

    @classmethod
    def _put_sync(cls, conn: sqlite3.Connection, entry: HistoryEntry) -> HistoryEntry:
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
        entries = [HistoryEntry.from_json(_loads(r[0])) for r in conn.execute(sql, params)]
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
    async def record(self, entry: HistoryEntry) -> HistoryEntry:
        """See :meth:`HistoryStore.record`."""
        return await self._run(self._put_sync, entry)

    async def set_state(self, notification_id: str, state: str, *, now: float) -> bool:
        """See :meth:`HistoryStore.set_state`."""
        return await self._run(self._set_state_sync, notification_id, state, now)

    async def add_events(self, events: Sequence[HistoryEvent]) -> None:
        """See :meth:`HistoryStore.add_events`."""
        rows = [(e.notification_id, e.at, e.encode()) for e in events]
        if rows:
            await self._run(
                lambda conn: conn.executemany(
                    "INSERT INTO history_event (id, at, body) VALUES (?, ?, ?)", rows
                )
            )

    async def get(self, notification_id: str) -> HistoryEntry | None:
        """See :meth:`HistoryStore.get`."""
        return await self._run(self._get_sync, notification_id)

    async def events(self, notification_id: str) -> list[HistoryEvent]:
        """See :meth:`HistoryStore.events`."""
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT body FROM history_event WHERE id = ? ORDER BY seq", (notification_id,)
            ).fetchall()
        )
        return [HistoryEvent.from_json(_loads(r[0])) for r in rows]

    async def search(self, query: HistoryQuery) -> list[HistoryEntry]:
        """See :meth:`HistoryStore.search`."""
        return await self._run(self._search_sync, query)

    async def purge(self, *, before: float) -> int:
        """See :meth:`HistoryStore.purge`."""
        return await self._run(self._purge_sync, before)

    async def close(self) -> None:
        """Close the history's connection and thread."""
        conn, self._conn = self._conn, None
        if conn is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


def _loads(text: str) -> Any:
    return json.loads(text)
