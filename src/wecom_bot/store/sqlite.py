"""The default outbox: one SQLite file (stdlib ``sqlite3``) in WAL mode.

Durability: with ``synchronous=NORMAL`` (the default) in WAL mode a committed transaction
survives a crash or SIGKILL of the process; only a power loss or OS crash can lose the last
transactions before the next checkpoint, and the file is never corrupted. ``synchronous=FULL``
syncs the WAL on every commit and closes that window too, at the price of one fsync (typically
0.1-10 ms, depending on the disk) per enqueue. Choose it with ``sqlite:///path.db?synchronous=FULL``.

Threading: every SQLite call runs on one dedicated thread owned by the store, never on the event
loop. A commit under ``synchronous=FULL`` waits for the disk, and a write blocked by another
process waits up to ``busy_timeout``: on the loop thread either would freeze every HTTP handler
of the gateway. The thread also serialises access to the single connection. The hop costs
tens of microseconds; one enqueue measures well under a millisecond end to end (see the tests).
Cancelling an awaiting task does not cancel the statement: a transaction already handed to the
thread still commits (at-least-once: the sender's retry may store a duplicate, never a loss).

Several processes may share one file (claims run inside ``BEGIN IMMEDIATE``, so two processes
never lease the same record): the store commands read it beside a running gateway. Two gateways
may not: the gateway opens its store ``exclusive`` (:mod:`.filelock`), and several instances
belong on Redis.

The file can vanish under the open connection (deleted, or replaced by another file, by a
cleanup job or a hand on a shared volume): writes would then go on into a file no restart finds.
:meth:`SQLiteOutbox.check_identity` compares the path's device and inode with those opened and,
asked to repair, writes a deleted file back from the open connection (SQLite's backup API) and
reopens it, or saves a replaced one's content beside the path and refuses every call after.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

from ._batching import TurnBatch
from .base import (
    LEASE_EXPIRED_ERROR,
    STANDING_PREFIX,
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
    StoreOpenError,
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
    merge_notification_ids,
)
from .filelock import StoreLock

T = TypeVar("T")

logger = logging.getLogger("wecom_bot.store")

_DAMAGED: Final = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
RECOVERY_HINT: Final = (
    "stop the gateway and run `wecom-bot gateway recover-store --config FILE`: it copies "
    "whatever is readable into a fresh file and keeps the damaged one beside it"
)
"""What to do about a damaged SQLite outbox (in the log line and the errors that name it)."""

_DEDUP_PURGE_EVERY = 1.0
"""Seconds between deletions of expired idempotency keys."""
_GROUP_KEYS = 500
"""Keys per look-up statement of a group of enqueue_once calls (SQLite caps parameters)."""
_GROUP_ROWS = 200
"""Rows per insert statement of such a group."""

SCHEMA_VERSION: Final = 4
"""1: the outbox, its notification index, idempotency keys. 2: the send log (``send_log``).
3: open alert groups and their timers (``alert_group``, ``group_timer``). 4: each record's
class and claim order (``outbox.priority``, ``outbox.rank``)."""
Synchronous = Literal["NORMAL", "FULL"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: history refers to ids
    bot              TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    coalescible      INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'leased', 'sent', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL    NOT NULL,
    next_attempt_at  REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    lease_until      REAL,
    last_error       TEXT,
    notification_ids TEXT    NOT NULL DEFAULT '[]',
    dedup_key        TEXT,
    replaced_by      INTEGER,
    priority         INTEGER NOT NULL DEFAULT 0,
    rank             REAL    -- claim order: created_at + the aging delay of priority
);
-- the oldest undelivered record of one bot
CREATE INDEX IF NOT EXISTS outbox_fifo ON outbox (bot, status, created_at, id);
-- counts, due bots, expired leases, dead letters and purges across bots
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS outbox_notification (
    notification_id TEXT    NOT NULL,
    record_id       INTEGER NOT NULL,
    PRIMARY KEY (notification_id, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_notification_record ON outbox_notification (record_id);
CREATE TABLE IF NOT EXISTS dedup (
    key        TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- recent sends per key fingerprint, so that a restarted gateway knows the rate window
CREATE TABLE IF NOT EXISTS send_log (
    key_id   TEXT    NOT NULL,
    at       REAL    NOT NULL,
    rejected INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS send_log_key ON send_log (key_id, at);
-- open alert groups (escalation, reminders, the console's open alerts) and their timers
CREATE TABLE IF NOT EXISTS alert_group (
    id              TEXT PRIMARY KEY,
    opened_at       REAL NOT NULL,
    updated_at      REAL NOT NULL,
    info            TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at REAL,
    silenced_until  REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alert_group_opened ON alert_group (opened_at, id);
CREATE TABLE IF NOT EXISTS group_timer (
    group_id    TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    due_at      REAL    NOT NULL,
    payload     TEXT    NOT NULL,
    fired       INTEGER NOT NULL DEFAULT 0,
    claim       TEXT,
    lease_until REAL,
    -- when it can be claimed: due_at while nobody holds it, else lease_until
    claimable_at REAL   NOT NULL,
    PRIMARY KEY (group_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_timer_claimable ON group_timer (claimable_at, group_id, key);
"""

# After _SCHEMA: a file of version 3 or older gets the columns of version 4 first.
_RANK_INDEX: Final = "CREATE INDEX IF NOT EXISTS outbox_rank ON outbox (bot, status, rank, id)"

_COLUMNS: Final = (
    "id, bot, kind, payload, status, attempts, created_at, next_attempt_at, updated_at, "
    "lease_until, last_error, notification_ids, dedup_key, coalescible, replaced_by, priority"
)
# The columns of _COLUMNS that say where a record is; constants stand in for its payload,
# error and id lists (a digest's list of folded ids runs to thousands).
_STATE_COLUMNS: Final = (
    "id, bot, kind, '{}', status, attempts, created_at, next_attempt_at, updated_at, "
    "lease_until, NULL, '[]', NULL, coalescible, replaced_by, priority"
)
# Standing groups (heartbeats) by their id's prefix; substr, not LIKE (LIKE ignores case).
_NOT_STANDING: Final = f"substr(id, 1, {len(STANDING_PREFIX)}) != '{STANDING_PREFIX}'"
_CHUNK: Final = 500  # well below SQLite's limit on bound parameters


def _record(row: tuple[Any, ...]) -> OutboxRecord:
    return OutboxRecord(
        id=row[0],
        bot=row[1],
        kind=row[2],
        payload=json.loads(row[3]),
        status=Status(row[4]),
        attempts=row[5],
        created_at=row[6],
        next_attempt_at=row[7],
        updated_at=row[8],
        lease_until=row[9],
        last_error=row[10],
        notification_ids=tuple(json.loads(row[11])),
        dedup_key=row[12],
        coalescible=bool(row[13]),
        replaced_by=row[14],
        priority=Priority(row[15]),
    )


class _CopyFailedError(Exception):
    """A copy of the open database could not be written (a full disk, a directory gone)."""


def _file_identity(path: str) -> tuple[int, int]:
    """The device and inode at ``path``: a file deleted and recreated there has another."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _sync_directory(path: str) -> None:
    """Make a new directory entry for ``path`` durable."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _primary_code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class SQLiteOutbox(Outbox):
    """An :class:`~wecom_bot.store.base.Outbox` in one SQLite file.

    Opening checks that the file can be written (it creates the schema in a write
    transaction), so a wrong path fails at start, not at the first alert.

    Args:
        path: the database file, or ``":memory:"`` (one connection; gone with the store).
        synchronous: ``"NORMAL"`` (default) or ``"FULL"``; see the module docstring.
        busy_timeout: seconds to wait for another process's write lock before giving up.
        clock: the time source used when a method is called without ``now``.
        exclusive: hold ``PATH.lock`` (:class:`~wecom_bot.store.filelock.StoreLock`) until
            :meth:`close`, so that a second gateway on the same file refuses to start.

    Raises:
        StoreOpenError: the file cannot be opened or written; the message says why and what
            to do (:class:`~wecom_bot.store.filelock.StoreInUseError` when ``exclusive`` and
            another gateway holds the file).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        clock: Clock = time.time,
        exclusive: bool = False,
    ) -> None:
        super().__init__(clock=clock)
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreOpenError(f"store: synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = str(path)
        self.lock = StoreLock(self.path) if exclusive and self.path != ":memory:" else None
        self.location = f"sqlite:///{self.path}"
        self.synchronous: Synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._dedup_purged_at = float("-inf")
        self._once_turn: TurnBatch[_OnceItem, list[int] | None] = TurnBatch(self._enqueue_once_turn)
        self._executor = _StoreThread(self)
        self._conn: sqlite3.Connection | None = None
        self.damaged: str | None = None
        """Why the file is damaged (its integrity check failed); every call then fails."""
        self.lost: str | None = None
        """Why the store stopped using its file (replaced under it); every call then fails."""
        self._identity: tuple[int, int] | None = None
        self._mode = 0o644
        self._wal_identity: tuple[int, int] | None = None
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            if self.lock is not None:
                self.lock.release()
            raise

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> None:
        memory = self.path == ":memory:"
        if not memory:
            target = Path(self.path)
            if not target.parent.is_dir():
                raise StoreOpenError(
                    f"store: the directory {str(target.parent.resolve())!r} of the SQLite "
                    f"database {self.path!r} does not exist; create it or point store at a "
                    "file in an existing directory"
                )
            if target.is_dir():
                raise StoreOpenError(
                    f"store: {self.path!r} is a directory; give the path of a database file, "
                    "e.g. sqlite:///./wecom-bot.db"
                )
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if not memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreOpenError(
                        f"store: SQLite could not put {self.path!r} in WAL mode (it answered "
                        f"{mode!r}); use a local disk, not a network file system"
                    )
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            if not memory and self._check_integrity(conn):
                self._conn = conn  # kept open: readiness and ingest report the damage
                self._identity = _file_identity(self.path)
                return
            with self._transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                    )
                elif row[0] > SCHEMA_VERSION:
                    raise StoreOpenError(
                        f"store: {self.path!r} has schema version {row[0]}, written by a newer "
                        f"wecom-bot (this one knows {SCHEMA_VERSION}); upgrade wecom-bot or "
                        "use another file"
                    )
                elif row[0] < SCHEMA_VERSION:
                    # Versions 2 and 3 only added tables, which the script above created.
                    self._add_priority(conn)
                    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
                conn.execute(_RANK_INDEX)
                # A real write, so that a read-only file fails here and not at the first alert.
                conn.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('opened_at', ?)",
                    (repr(time.time()),),
                )
        except StoreOpenError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._open_error(exc) from exc
        self._conn = conn
        if not memory:
            self._identity = _file_identity(self.path)
            self._mode = os.stat(self.path).st_mode & 0o7777
            with contextlib.suppress(OSError):  # created by the write above
                self._wal_identity = _file_identity(self.path + "-wal")

    @staticmethod
    def _add_priority(conn: sqlite3.Connection) -> None:
        """Version 4: records of an older file are alerts, claimed in the order they were."""
        columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        if "priority" not in columns:
            conn.execute("ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
        if "rank" not in columns:
            conn.execute("ALTER TABLE outbox ADD COLUMN rank REAL")
        conn.execute("UPDATE outbox SET rank = created_at WHERE rank IS NULL")

    def _check_integrity(self, conn: sqlite3.Connection) -> bool:
        """Run ``PRAGMA quick_check``; when it fails, mark the outbox damaged (logged once)."""
        try:
            rows = conn.execute("PRAGMA quick_check(3)").fetchall()
            problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        except sqlite3.DatabaseError as exc:
            if _primary_code(exc) not in _DAMAGED:
                raise
            problems = [str(exc)]
        if not problems:
            return False
        if self.damaged is None:
            # quick_check may answer in several lines: one log line says it all.
            self.damaged = " ".join("; ".join(problems).split())[:300]
            logger.error(
                "outbox %s is damaged (%s): not ready, inbound alerts get 503 until it is "
                "repaired; %s",
                self.path,
                self.damaged,
                RECOVERY_HINT,
            )
        return True

    def _damaged_error(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"outbox {self.path!r} is damaged; nothing was stored (the log says how to recover it)"
        )

    def _open_error(self, exc: sqlite3.Error) -> StoreOpenError:
        code = _primary_code(exc)
        where = f"store: cannot use the SQLite database {self.path!r}"
        text = str(exc)
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
            advice = (
                f"it is locked by another process (waited {self.busy_timeout:g} s). Another "
                "wecom-bot instance probably uses it: stop that one, give each instance its own "
                "file, or use store: redis://host:port/db for several instances"
            )
        elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM) or (
            "readonly" in text
        ):
            advice = (
                f"it cannot be opened for writing by this user (uid {os.getuid()}): "
                f"{text}. SQLite in WAL mode must write the file and create "
                f"'{os.path.basename(self.path)}-wal' and '-shm' beside it, so make the file "
                "and its directory writable, or point store at a writable path"
            )
        elif code == sqlite3.SQLITE_FULL:
            advice = "the disk is full; free space or point store at another disk"
        elif code == sqlite3.SQLITE_NOTADB:
            advice = (
                "the file is not a SQLite database (or its first page is damaged); point "
                f"store at another file, or {RECOVERY_HINT}"
            )
        else:
            advice = text
        return StoreOpenError(f"{where}: {advice}")

    def _runtime_error(self, exc: sqlite3.Error) -> StoreUnavailableError:
        code = _primary_code(exc)
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            why = f"locked by another process for more than {self.busy_timeout:g} s"
        elif code == sqlite3.SQLITE_FULL:
            why = "the database or disk is full"
        elif code == sqlite3.SQLITE_READONLY:
            why = "the database became read-only"
        else:
            why = str(exc)
        return StoreUnavailableError(f"outbox {self.path!r}: {why}; nothing was stored")

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        if conn.in_transaction:
            # Inside a group commit (see _StoreThread): a savepoint, so that this operation
            # alone rolls back if it fails.
            conn.execute("SAVEPOINT op")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                raise
            conn.execute("RELEASE op")
            return
        # IMMEDIATE takes the write lock up front: a claim never races another process
        # between its SELECT and its UPDATE, and never fails half way on a lock upgrade.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- the thread hop -------------------------------------------------------------------------
    def _closed_error(self) -> StoreUnavailableError:
        if self.lost is not None:
            return StoreUnavailableError(f"{self.lost}; nothing was stored")
        return StoreUnavailableError(f"outbox {self.path!r} is closed")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise self._closed_error()
        return cast(T, await self._executor.submit_async(self._guarded, fn, args))

    async def _enqueue_once_turn(self, items: list[_OnceItem]) -> list[list[int] | None]:
        """The single-message ``enqueue_once`` calls of one turn of the loop, as one job (see
        :meth:`_enqueue_once_group`), ahead of background work."""
        if self._conn is None:
            raise self._closed_error()
        results = await self._executor.submit_async(
            self._guarded, self._enqueue_once_group, (items,), urgent=True
        )
        return cast("list[list[int] | None]", results)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conn
        if conn is None:
            raise self._closed_error()
        if self.damaged is not None and fn != self._close_sync:
            raise self._damaged_error()
        try:
            return fn(conn, *args)
        except sqlite3.Error as exc:
            if _primary_code(exc) in _DAMAGED and self.path != ":memory:":
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                if self._check_integrity(conn):
                    raise self._damaged_error() from exc
            raise self._runtime_error(exc) from exc

    # -- synchronous bodies (run on the store's thread) ---------------------------------------
    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        message: NewMessage,
        payload: str,
        now: float,
        *,
        status: Status = Status.PENDING,
        created_at: float | None = None,
        lease_until: float | None = None,
        notification_ids: tuple[str, ...] | None = None,
        dedup_key: str | None = None,
    ) -> int:
        if notification_ids is None:
            notification_ids = (message.notification_id,) if message.notification_id else ()
        created = now if created_at is None else created_at
        cur = conn.execute(
            "INSERT INTO outbox (bot, kind, coalescible, payload, status, created_at, "
            "next_attempt_at, updated_at, lease_until, notification_ids, dedup_key, priority, "
            "rank) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.bot,
                message.kind,
                int(message.is_coalescible),
                payload,
                status.value,
                created,
                now if message.not_before is None else message.not_before,
                now,
                lease_until,
                json.dumps(list(notification_ids), ensure_ascii=False),
                dedup_key,
                int(message.priority),
                claim_rank(created, message.priority),
            ),
        )
        record_id = cast(int, cur.lastrowid)  # always set after a single-row INSERT
        if notification_ids:
            conn.executemany(
                "INSERT OR IGNORE INTO outbox_notification (notification_id, record_id) "
                "VALUES (?, ?)",
                [(nid, record_id) for nid in notification_ids],
            )
        return record_id

    def _enqueue_sync(
        self,
        conn: sqlite3.Connection,
        messages: Sequence[NewMessage],
        payloads: list[str],
        now: float,
        dedup: tuple[str, float] | None,
    ) -> list[int] | None:
        with self._transaction(conn):
            if dedup is not None:
                key, window = dedup
                # One statement checks and claims the key: a live key is left alone (no row
                # changed: a duplicate), an absent or expired one is (re)written.
                claimed = conn.execute(
                    "INSERT INTO dedup (key, expires_at) VALUES (?, ?) ON CONFLICT (key) "
                    "DO UPDATE SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ?",
                    (key, now + window, now),
                ).rowcount
                if not claimed:
                    return None
                self._purge_expired_keys(conn, now)
            dedup_key = dedup[0] if dedup is not None else None
            return [
                self._insert(conn, m, p, now, dedup_key=dedup_key)
                for m, p in zip(messages, payloads, strict=True)
            ]

    def _purge_expired_keys(self, conn: sqlite3.Connection, now: float) -> None:
        # Expired keys are ignored by the checks; deleting them once a second keeps the table
        # small without a delete in every enqueue.
        if not 0 <= now - self._dedup_purged_at < _DEDUP_PURGE_EVERY:
            conn.execute("DELETE FROM dedup WHERE expires_at <= ?", (now,))
            self._dedup_purged_at = now

    def _enqueue_once_group(
        self, conn: sqlite3.Connection, items: list[_OnceItem]
    ) -> list[list[int] | None]:
        """Single-message ``enqueue_once`` calls, in a handful of statements for all of them.

        This is the gateway's request path: under load the store's thread gets dozens of
        these at once, and every statement hands Python's GIL to the event loop and back;
        one statement per step for the whole group instead of five per call, and one job
        for the thread instead of one per call, is what lets the thread keep up.

        Returns:
            Per item: its new record id in a list, or ``None`` for a duplicate.
        """
        results: list[list[int] | None] = []
        with self._transaction(conn):
            keys = list(dict.fromkeys(item.key for item in items))
            live: dict[str, float] = {}
            for start in range(0, len(keys), _GROUP_KEYS):
                chunk = keys[start : start + _GROUP_KEYS]
                marks = ",".join("?" * len(chunk))
                live.update(
                    conn.execute(
                        f"SELECT key, expires_at FROM dedup WHERE key IN ({marks})", chunk
                    ).fetchall()
                )
            accepted: list[_OnceItem] = []
            for item in items:
                expires = live.get(item.key)
                if expires is not None and expires > item.now:
                    results.append(None)
                    continue
                live[item.key] = item.now + item.window
                accepted.append(item)
                results.append([])
            if accepted:
                self._insert_group(conn, accepted)
                self._purge_expired_keys(conn, max(item.now for item in accepted))
        ids = iter(item.record_id for item in accepted)
        return [None if result is None else [next(ids)] for result in results]

    def _insert_group(self, conn: sqlite3.Connection, items: list[_OnceItem]) -> None:
        """Claim the dedup keys and insert one record per item; sets ``item.record_id``."""
        for start in range(0, len(items), _GROUP_ROWS):
            chunk = items[start : start + _GROUP_ROWS]
            conn.execute(
                "INSERT INTO dedup (key, expires_at) VALUES "
                + ",".join(["(?, ?)"] * len(chunk))
                + " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at",
                [v for item in chunk for v in (item.key, item.now + item.window)],
            )
            values: list[Any] = []
            for item in chunk:
                m = item.message
                nids = [m.notification_id] if m.notification_id else []
                values += (
                    m.bot, m.kind, int(m.is_coalescible), item.payload, Status.PENDING.value,
                    item.now, item.now if m.not_before is None else m.not_before, item.now,
                    json.dumps(nids, ensure_ascii=False), item.key, int(m.priority),
                    claim_rank(item.now, m.priority),
                )  # fmt: skip
            last = conn.execute(
                "INSERT INTO outbox (bot, kind, coalescible, payload, status, created_at, "
                "next_attempt_at, updated_at, notification_ids, dedup_key, priority, rank) "
                "VALUES " + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                values,
            ).lastrowid
            # One INSERT of many rows, inside our write transaction: SQLite numbers them
            # one after another, so the ids are the last one and those before it.
            first = cast(int, last) - len(chunk) + 1
            index: list[Any] = []
            for offset, item in enumerate(chunk):
                item.record_id = first + offset
                if item.message.notification_id:
                    index += (item.message.notification_id, item.record_id)
            if index:
                conn.execute(
                    "INSERT OR IGNORE INTO outbox_notification (notification_id, record_id) "
                    "VALUES " + ",".join(["(?, ?)"] * (len(index) // 2)),
                    index,
                )

    @staticmethod
    def _recover_sync(conn: sqlite3.Connection, now: float, bot: str | None) -> int:
        sql = (
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = lease_until, lease_until = NULL, updated_at = ? "
            "WHERE status = 'leased' AND lease_until <= ?"
        )
        params: tuple[Any, ...] = (LEASE_EXPIRED_ERROR, now, now)
        if bot is not None:
            sql += " AND bot = ?"
            params += (bot,)
        return conn.execute(sql, params).rowcount

    def _claim_sync(
        self, conn: sqlite3.Connection, bot: str, limit: int, lease: float, now: float
    ) -> list[OutboxRecord]:
        with self._transaction(conn):
            self._recover_sync(conn, now, bot)
            rows = conn.execute(
                "UPDATE outbox SET status = 'leased', lease_until = ?, updated_at = ? "
                # INDEXED BY: left to itself the planner picks outbox_status and sorts every
                # due record of every bot, milliseconds per claim once a backlog builds up.
                "WHERE id IN (SELECT id FROM outbox INDEXED BY outbox_rank WHERE bot = ? "
                "AND status = 'pending' AND next_attempt_at <= ? ORDER BY rank, id "
                "LIMIT ?) "
                f"RETURNING {_COLUMNS}",
                (now + lease, now, bot, now, limit),
            ).fetchall()
        return sorted((_record(r) for r in rows), key=lambda r: (r.rank, r.id))

    def _replace_sync(
        self,
        conn: sqlite3.Connection,
        claimed_ids: Sequence[int],
        messages: Sequence[NewMessage],
        payloads: list[str],
        now: float,
    ) -> list[OutboxRecord]:
        with self._transaction(conn):
            wanted = list(dict.fromkeys(claimed_ids))
            # What the swap needs of the originals, without decoding their payloads (a
            # round swaps hundreds, and request-path writes wait behind it).
            found = {
                r[0]: r
                for r in conn.execute(
                    "SELECT id, status, created_at, lease_until, notification_ids FROM outbox "
                    f"WHERE id IN ({_marks(len(wanted))})",
                    wanted,
                )
            }
            lost = [i for i in wanted if i not in found or found[i][1] != Status.LEASED.value]
            if lost:
                raise LeaseLostError(lost)
            originals = [found[i] for i in wanted]
            created = min(r[2] for r in originals)
            lease = max(r[3] or now for r in originals)
            folded = [json.loads(r[4]) for r in originals]
            new_ids = [
                self._insert(
                    conn,
                    m,
                    p,
                    now,
                    status=Status.LEASED,
                    created_at=created,
                    lease_until=lease,
                    notification_ids=merge_notification_ids(folded, m.notification_id),
                )
                for m, p in zip(messages, payloads, strict=True)
            ]
            conn.execute(
                "UPDATE outbox SET status = 'sent', lease_until = NULL, replaced_by = ?, "
                f"updated_at = ? WHERE id IN ({_marks(len(wanted))})",
                [new_ids[0], now, *wanted],
            )
            by_id = {
                r[0]: _record(r)
                for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE id IN ({_marks(len(new_ids))})",
                    new_ids,
                )
            }
        return [by_id[i] for i in new_ids]

    def _settle_sync(
        self,
        conn: sqlite3.Connection,
        claimed_id: int,
        messages: Sequence[NewMessage],
        payloads: list[str],
        now: float,
    ) -> list[int]:
        with self._transaction(conn):
            # The guarded UPDATE is the lease check: no row back means it was not leased.
            row = conn.execute(
                "UPDATE outbox SET status = 'sent', lease_until = NULL, updated_at = ? "
                "WHERE id = ? AND status = 'leased' RETURNING created_at",
                (now, claimed_id),
            ).fetchone()
            if row is None:
                raise LeaseLostError([claimed_id])
            return [
                self._insert(conn, m, p, now, created_at=row[0])
                for m, p in zip(messages, payloads, strict=True)
            ]

    def _update_many(
        self, conn: sqlite3.Connection, ids: Sequence[int], sql: str, params: tuple[Any, ...]
    ) -> int:
        """Run ``sql`` (ending in ``id IN (%s)``) over ``ids`` in chunks, in one transaction."""
        count = 0
        with self._transaction(conn):
            for chunk in _chunks(ids):
                count += conn.execute(sql % _marks(len(chunk)), (*params, *chunk)).rowcount
        return count

    @staticmethod
    def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Any:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _records(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[OutboxRecord]:
        return [_record(r) for r in conn.execute(sql, params)]

    @staticmethod
    def _write(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
        # A single statement is its own transaction in autocommit mode.
        return conn.execute(sql, params).rowcount

    # -- writing ---------------------------------------------------------------------------
    async def enqueue(
        self, messages: Sequence[NewMessage], *, now: float | None = None
    ) -> list[int]:
        payloads = [m.encoded() for m in messages]
        ids = await self._run(self._enqueue_sync, list(messages), payloads, self._now(now), None)
        return cast(list[int], ids)  # only a dedup check answers None

    async def enqueue_once(
        self,
        dedup_key: str,
        window_seconds: float,
        messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int] | None:
        payloads = [m.encoded() for m in messages]
        if len(messages) == 1:
            item = _OnceItem(dedup_key, window_seconds, messages[0], payloads[0], self._now(now))
            if self._conn is None:
                raise self._closed_error()
            return await self._once_turn.add(item)
        return await self._run(
            self._enqueue_sync,
            list(messages),
            payloads,
            self._now(now),
            (dedup_key, window_seconds),
        )

    async def replace(
        self,
        claimed_ids: Sequence[int],
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[OutboxRecord]:
        check_replace(claimed_ids, new_messages)
        payloads = [m.encoded() for m in new_messages]
        return await self._run(
            self._replace_sync, list(claimed_ids), list(new_messages), payloads, self._now(now)
        )

    async def settle(
        self,
        claimed_id: int,
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int]:
        payloads = [m.encoded() for m in new_messages]
        return await self._run(
            self._settle_sync, claimed_id, list(new_messages), payloads, self._now(now)
        )

    # -- the dispatcher's side -------------------------------------------------------------
    async def claim(
        self, bot: str, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[OutboxRecord]:
        if limit < 1 or lease_seconds <= 0:
            raise ValueError("claim needs limit >= 1 and lease_seconds > 0")
        return await self._run(self._claim_sync, bot, limit, lease_seconds, self._now(now))

    async def renew(
        self, ids: Sequence[int], *, lease_seconds: float, now: float | None = None
    ) -> int:
        if lease_seconds <= 0:
            raise ValueError("renew needs lease_seconds > 0")
        t = self._now(now)
        return await self._run(
            self._update_many,
            sorted(set(ids)),
            "UPDATE outbox SET lease_until = ?, updated_at = ? "
            "WHERE status = 'leased' AND id IN (%s)",
            (t + lease_seconds, t),
        )

    async def unclaim(self, ids: Sequence[int], *, now: float | None = None) -> int:
        return await self._run(
            self._update_many,
            ids,
            "UPDATE outbox SET status = 'pending', lease_until = NULL, next_attempt_at = ?, "
            "updated_at = ? WHERE status = 'leased' AND id IN (%s)",
            (self._now(now),) * 2,
        )

    async def ack(self, ids: Sequence[int], *, now: float | None = None) -> int:
        return await self._run(
            self._update_many,
            ids,
            "UPDATE outbox SET status = 'sent', lease_until = NULL, updated_at = ? "
            "WHERE status != 'sent' AND id IN (%s)",
            (self._now(now),),
        )

    async def release(
        self,
        record_id: int,
        *,
        next_attempt_at: float,
        error: str,
        now: float | None = None,
    ) -> bool:
        changed = await self._run(
            self._write,
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = ?, lease_until = NULL, updated_at = ? "
            "WHERE id = ? AND status = 'leased'",
            (cut_error(error), next_attempt_at, self._now(now), record_id),
        )
        return bool(changed)

    async def dead(self, record_id: int, error: str, *, now: float | None = None) -> bool:
        changed = await self._run(
            self._write,
            "UPDATE outbox SET status = 'dead', last_error = ?, lease_until = NULL, "
            "attempts = attempts + (status = 'leased'), "
            "updated_at = ? WHERE id = ? AND status IN ('pending', 'leased')",
            (cut_error(error), self._now(now), record_id),
        )
        return bool(changed)

    # -- dead letters ------------------------------------------------------------------------
    async def requeue_dead(self, ids: Sequence[int], *, now: float | None = None) -> int:
        return await self._run(
            self._update_many,
            ids,
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "updated_at = ? WHERE status = 'dead' AND id IN (%s)",
            (self._now(now),) * 2,
        )

    async def discard_dead(self, ids: Sequence[int]) -> int:
        return await self._run(self._delete_sync, ids, "status = 'dead' AND id IN (%s)", ())

    def _delete_sync(
        self,
        conn: sqlite3.Connection,
        ids: Sequence[int] | None,
        where: str,
        params: tuple[Any, ...],
    ) -> int:
        with self._transaction(conn):
            if ids is None:
                doomed = [
                    r[0] for r in conn.execute(f"SELECT id FROM outbox WHERE {where}", params)
                ]
            else:
                doomed = [
                    r[0]
                    for chunk in _chunks(ids)
                    for r in conn.execute(
                        f"SELECT id FROM outbox WHERE {where % _marks(len(chunk))}",
                        (*params, *chunk),
                    )
                ]
            for chunk in _chunks(doomed):
                marks = _marks(len(chunk))
                conn.execute(f"DELETE FROM outbox_notification WHERE record_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
        return len(doomed)

    async def list_dead(self, bot: str | None = None, *, limit: int = 100) -> list[OutboxRecord]:
        if bot is None:
            return await self._run(
                self._records,
                f"SELECT {_COLUMNS} FROM outbox WHERE status = 'dead' ORDER BY id LIMIT ?",
                (limit,),
            )
        return await self._run(
            self._records,
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'dead' AND bot = ? ORDER BY id LIMIT ?",
            (bot, limit),
        )

    # -- reading -----------------------------------------------------------------------------
    async def get(self, record_id: int) -> OutboxRecord | None:
        found = await self._run(
            self._records, f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (record_id,)
        )
        return found[0] if found else None

    async def find_by_notification(self, notification_id: str) -> list[OutboxRecord]:
        return await self._run(
            self._records,
            f"SELECT {_COLUMNS} FROM outbox WHERE id IN (SELECT record_id FROM "
            "outbox_notification WHERE notification_id = ?) ORDER BY id",
            (notification_id,),
        )

    async def delivery_states(self, notification_id: str) -> list[OutboxRecord]:
        rows = await self._run(
            self._rows,
            f"SELECT {_STATE_COLUMNS} FROM outbox WHERE id IN (SELECT record_id "
            "FROM outbox_notification WHERE notification_id = ?) ORDER BY id",
            (notification_id,),
        )
        return [_record(r) for r in rows]

    async def _count(self, statuses: str, bot: str | None) -> int:
        sql = f"SELECT COUNT(*) FROM outbox WHERE status IN ({statuses})"
        params: tuple[Any, ...] = ()
        if bot is not None:
            sql += " AND bot = ?"
            params = (bot,)
        return int(await self._run(self._one, sql, params))

    async def pending_count(self, bot: str | None = None) -> int:
        return await self._count("'pending', 'leased'", bot)

    async def dead_count(self, bot: str | None = None) -> int:
        return await self._count("'dead'", bot)

    async def depth_by_bot(self) -> dict[str, int]:
        rows = await self._run(
            self._rows,
            "SELECT bot, COUNT(*) FROM outbox WHERE status IN ('pending', 'leased') "
            "GROUP BY bot ORDER BY bot",
            (),
        )
        return {bot: count for bot, count in rows}

    @staticmethod
    def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    async def oldest_pending_age(self, bot: str, *, now: float | None = None) -> float | None:
        t = self._now(now)
        oldest = await self._run(
            self._one,
            "SELECT MIN(created_at) FROM outbox WHERE bot = ? AND status IN ('pending', 'leased')",
            (bot,),
        )
        return None if oldest is None else t - float(oldest)

    async def bots_with_due_work(self, *, now: float | None = None) -> list[str]:
        t = self._now(now)
        rows = await self._run(
            self._rows,
            "SELECT bot FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
            "UNION SELECT bot FROM outbox WHERE status = 'leased' AND lease_until <= ? "
            "ORDER BY bot",
            (t, t),
        )
        return [r[0] for r in rows]

    async def next_due_at(self, bot: str | None = None) -> float | None:
        sql = (
            "SELECT MIN(CASE status WHEN 'pending' THEN next_attempt_at ELSE lease_until END) "
            "FROM outbox WHERE status IN ('pending', 'leased')"
        )
        params: tuple[Any, ...] = ()
        if bot is not None:
            sql += " AND bot = ?"
            params = (bot,)
        value = await self._run(self._one, sql, params)
        return None if value is None else float(value)

    # -- the send log --------------------------------------------------------------------------
    def _note_send_sync(
        self, conn: sqlite3.Connection, key_id: str, at: float, keep: float, rejected: bool
    ) -> None:
        with self._transaction(conn):
            conn.execute(
                "INSERT INTO send_log (key_id, at, rejected) VALUES (?, ?, ?)",
                (key_id, at, int(rejected)),
            )
            conn.execute("DELETE FROM send_log WHERE key_id = ? AND at < ?", (key_id, at - keep))

    async def note_send(
        self, key_id: str, at: float, *, keep: float, rejected: bool = False
    ) -> None:
        await self._run(self._note_send_sync, key_id, at, keep, rejected)

    async def recent_sends(self, key_id: str, since: float) -> list[SendMark]:
        rows = await self._run(
            self._rows,
            "SELECT at, rejected FROM send_log WHERE key_id = ? AND at >= ? ORDER BY at, rowid",
            (key_id, since),
        )
        return [SendMark(at, bool(rejected)) for at, rejected in rows]

    # -- alert groups and their timers ----------------------------------------------------------
    _TIMER_COLUMNS: Final = "group_id, key, due_at, payload, fired, claim, lease_until"

    @staticmethod
    def _timer(row: tuple[Any, ...]) -> TimerRecord:
        return TimerRecord(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6])

    @classmethod
    def _groups_sync(
        cls, conn: sqlite3.Connection, where: str, params: Sequence[Any]
    ) -> list[GroupRecord]:
        rows = conn.execute(
            "SELECT id, opened_at, updated_at, info, acknowledged_by, acknowledged_at, "
            f"silenced_until FROM alert_group {where}",
            params,
        ).fetchall()
        groups: list[GroupRecord] = []
        for row in rows:
            timers = conn.execute(
                f"SELECT {cls._TIMER_COLUMNS} FROM group_timer WHERE group_id = ? "
                "ORDER BY due_at, key",
                (row[0],),
            ).fetchall()
            groups.append(
                GroupRecord(
                    row[0],
                    row[1],
                    row[2],
                    json.loads(row[3]),
                    row[4],
                    row[5],
                    row[6],
                    tuple(cls._timer(t) for t in timers),
                )  # fmt: skip
            )
        return groups

    @staticmethod
    def _insert_alert_group(
        conn: sqlite3.Connection, group_id: str, info: str, now: float
    ) -> None:
        conn.execute(
            "INSERT INTO alert_group (id, opened_at, updated_at, info) VALUES (?, ?, ?, ?)",
            (group_id, now, now, info),
        )

    @staticmethod
    def _insert_timers(
        conn: sqlite3.Connection, group_id: str, timers: list[tuple[str, float, str]]
    ) -> None:
        conn.executemany(
            "INSERT INTO group_timer (group_id, key, due_at, payload, claimable_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(group_id, key, due, payload, due) for key, due, payload in timers],
        )

    def _open_group_sync(
        self,
        conn: sqlite3.Connection,
        group_id: str,
        info: str,
        timers: list[tuple[str, float, str]],
        now: float,
    ) -> bool:
        with self._transaction(conn):
            changed = conn.execute(
                "UPDATE alert_group SET info = ?, updated_at = ? WHERE id = ?",
                (info, now, group_id),
            ).rowcount
            if changed:
                return False
            self._insert_alert_group(conn, group_id, info, now)
            self._insert_timers(conn, group_id, timers)
            return True

    def _arm_group_sync(
        self,
        conn: sqlite3.Connection,
        group_id: str,
        info: str,
        timers: list[tuple[str, float, str]],
        resumed: Sequence[NewMessage],
        payloads: list[str],
        only_new: bool,
        now: float,
    ) -> tuple[Armed, list[int]]:
        with self._transaction(conn):
            found = self._one(conn, "SELECT 1 FROM alert_group WHERE id = ?", (group_id,))
            if found is not None and only_new:
                return Armed.KEPT, []
            if found is None:
                self._insert_alert_group(conn, group_id, info, now)
                fired = False
            else:
                conn.execute(
                    "UPDATE alert_group SET info = ?, updated_at = ? WHERE id = ?",
                    (info, now, group_id),
                )
                fired = self._one(
                    conn, "SELECT 1 FROM group_timer WHERE group_id = ? LIMIT 1", (group_id,)
                ) is None  # fmt: skip
                conn.execute("DELETE FROM group_timer WHERE group_id = ?", (group_id,))
            self._insert_timers(conn, group_id, timers)
            if found is None:
                return Armed.OPENED, []
            if not fired:
                return Armed.REARMED, []
            ids = [self._insert(conn, m, p, now) for m, p in zip(resumed, payloads, strict=True)]
            return Armed.RESUMED, ids

    def _acknowledge_sync(
        self,
        conn: sqlite3.Connection,
        group_id: str,
        by: str,
        silenced_until: float | None,
        now: float,
    ) -> Acknowledged:
        with self._transaction(conn):
            found = conn.execute(
                "SELECT acknowledged_at FROM alert_group WHERE id = ?", (group_id,)
            ).fetchone()
            if found is None:
                return Acknowledged.NOT_OPEN
            conn.execute(
                "UPDATE alert_group SET acknowledged_by = ?, acknowledged_at = ?, updated_at = ?, "
                "silenced_until = COALESCE(?, silenced_until) WHERE id = ?",
                (by, now, now, silenced_until, group_id),
            )
            conn.execute("DELETE FROM group_timer WHERE group_id = ?", (group_id,))
            return Acknowledged.FIRST if found[0] is None else Acknowledged.AGAIN

    def _forget_groups_sync(self, conn: sqlite3.Connection, where: str, params: Any) -> int:
        with self._transaction(conn):
            doomed = [
                r[0] for r in conn.execute(f"SELECT id FROM alert_group WHERE {where}", params)
            ]
            for start in range(0, len(doomed), _CHUNK):
                chunk = doomed[start : start + _CHUNK]
                marks = _marks(len(chunk))
                conn.execute(f"DELETE FROM group_timer WHERE group_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM alert_group WHERE id IN ({marks})", chunk)
        return len(doomed)

    def _claim_timers_sync(
        self, conn: sqlite3.Connection, limit: int, lease: float, now: float
    ) -> list[TimerRecord]:
        claim = secrets.token_hex(8)
        with self._transaction(conn):
            rows = conn.execute(
                "UPDATE group_timer SET claim = ?, lease_until = ?, claimable_at = ? "
                "WHERE (group_id, key) IN (SELECT group_id, key FROM group_timer "
                "WHERE claimable_at <= ? ORDER BY claimable_at, group_id, key LIMIT ?) "
                f"RETURNING {self._TIMER_COLUMNS}",
                (claim, now + lease, now + lease, now, limit),
            ).fetchall()
        timers = [self._timer(r) for r in rows]
        return sorted(timers, key=lambda t: (t.due_at, t.group_id, t.key))

    def _fire_timer_sync(
        self,
        conn: sqlite3.Connection,
        timer: TimerRecord,
        messages: Sequence[NewMessage],
        payloads: list[str],
        next_due_at: float | None,
        now: float,
    ) -> list[int]:
        with self._transaction(conn):
            held = self._one(
                conn,
                "SELECT claim FROM group_timer WHERE group_id = ? AND key = ?",
                (timer.group_id, timer.key),
            )
            if held is None or held != timer.claim:
                raise TimerLostError(timer.group_id, timer.key)
            ids = [self._insert(conn, m, p, now) for m, p in zip(messages, payloads, strict=True)]
            if next_due_at is None:
                conn.execute(
                    "DELETE FROM group_timer WHERE group_id = ? AND key = ?",
                    (timer.group_id, timer.key),
                )
            else:
                conn.execute(
                    "UPDATE group_timer SET due_at = ?, claimable_at = ?, claim = NULL, "
                    "lease_until = NULL, fired = fired + 1 WHERE group_id = ? AND key = ?",
                    (next_due_at, next_due_at, timer.group_id, timer.key),
                )
            return ids

    async def open_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        now: float | None = None,
    ) -> bool:
        check_timers(group_id, timers)
        rows = [(t.key, t.due_at, encode_json(t.payload, "timer payload")) for t in timers]
        text = encode_json(info, "group info")
        return await self._run(self._open_group_sync, group_id, text, rows, self._now(now))

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
        check_timers(group_id, timers)
        rows = [(t.key, t.due_at, encode_json(t.payload, "timer payload")) for t in timers]
        text = encode_json(info, "group info")
        payloads = [m.encoded() for m in resumed]
        return await self._run(
            self._arm_group_sync, group_id, text, rows, list(resumed), payloads, only_new,
            self._now(now),
        )  # fmt: skip

    async def acknowledge_group(
        self,
        group_id: str,
        *,
        by: str,
        silenced_until: float | None = None,
        now: float | None = None,
    ) -> Acknowledged:
        return await self._run(self._acknowledge_sync, group_id, by, silenced_until, self._now(now))

    async def resolve_group(self, group_id: str) -> bool:
        return bool(await self._run(self._forget_groups_sync, "id = ?", (group_id,)))

    async def get_group(self, group_id: str) -> GroupRecord | None:
        found = await self._run(self._groups_sync, "WHERE id = ?", (group_id,))
        return found[0] if found else None

    async def list_groups(self, *, limit: int = 500) -> list[GroupRecord]:
        return await self._run(
            self._groups_sync,
            f"WHERE {_NOT_STANDING} ORDER BY opened_at, id LIMIT ?",
            (max(limit, 0),),
        )

    async def claim_timers(
        self, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[TimerRecord]:
        check_claim_arguments(limit, lease_seconds)
        return await self._run(self._claim_timers_sync, limit, lease_seconds, self._now(now))

    async def fire_timer(
        self,
        timer: TimerRecord,
        messages: Sequence[NewMessage],
        *,
        next_due_at: float | None = None,
        now: float | None = None,
    ) -> list[int]:
        payloads = [m.encoded() for m in messages]
        return await self._run(
            self._fire_timer_sync, timer, list(messages), payloads, next_due_at, self._now(now)
        )

    async def next_timer_at(self) -> float | None:
        value = await self._run(self._one, "SELECT MIN(claimable_at) FROM group_timer", ())
        return None if value is None else float(value)

    async def purge_groups(self, *, before: float, now: float | None = None) -> int:
        return await self._run(
            self._forget_groups_sync,
            f"{_NOT_STANDING} AND (updated_at < ? OR silenced_until <= ?)",
            (before, self._now(now)),
        )

    async def trim_groups(self, *, keep: int) -> int:
        check_keep(keep)
        return await self._run(
            self._forget_groups_sync,
            f"id IN (SELECT id FROM alert_group WHERE acknowledged_by IS NULL AND {_NOT_STANDING} "
            "ORDER BY updated_at, id LIMIT max((SELECT count(*) FROM alert_group "
            f"WHERE acknowledged_by IS NULL AND {_NOT_STANDING}) - ?, 0))",
            (keep,),
        )

    # -- maintenance -------------------------------------------------------------------------
    async def recover_expired_leases(self, *, now: float | None = None) -> int:
        return await self._run(self._recover_sync, self._now(now), None)

    async def purge_sent(self, *, before: float) -> int:
        return await self._run(
            self._delete_sync, None, "status = 'sent' AND updated_at < ?", (before,)
        )

    async def ping(self) -> None:
        """A small write (so a full disk, a read-only or a damaged file fails it)."""
        await self._run(self._ping_sync)

    def _ping_sync(self, conn: sqlite3.Connection) -> None:
        with self._transaction(conn):
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('pinged_at', ?)",
                (repr(time.time()),),
            )

    # -- the file under the connection -----------------------------------------------------
    async def check_identity(self, *, repair: bool = False) -> str | None:
        if self.lost is not None:
            return self.lost
        if self._conn is None:
            raise self._closed_error()
        if self.path == ":memory:":
            return None
        # Alone on the store's thread (never inside a group commit): a repair closes and
        # reopens the connection, and every write before it is in the copy.
        job = self._executor.submit(self._guarded, self._identity_sync, (repair,))
        return cast("str | None", await asyncio.wrap_future(job))

    def _identity_sync(self, conn: sqlite3.Connection, repair: bool) -> str | None:
        try:
            now = _file_identity(self.path)
        except FileNotFoundError:
            now = None
        except OSError as exc:
            raise StoreUnavailableError(f"outbox {self.path!r}: cannot stat it ({exc})") from None
        if now == self._identity:
            return None
        if not repair:
            what = "deleted" if now is None else "replaced by another file"
            return (
                f"outbox {self.path!r} was {what} while the gateway runs: what it answered 200 "
                "for would not survive a restart (the store watch repairs or reports it)"
            )
        undelivered = conn.execute(
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'leased')"
        ).fetchone()[0]
        try:
            if now is None:
                restored = self._write_back(conn)
            else:
                restored = self._save_aside(conn)
        except _CopyFailedError as exc:
            what = "deleted" if now is None else "replaced by another file"
            return (
                f"outbox {self.path!r} was {what} while the gateway runs, and its content "
                f"({undelivered} undelivered messages) cannot be saved ({exc}): the gateway "
                "keeps it open, is not ready and tries again at every check. Free space or "
                "make the directory writable; do not restart the gateway before (a restart "
                "would lose what it holds)"
            )
        if now is None:
            if restored is None:
                return (
                    f"outbox {self.path!r} was deleted while the gateway ran; its content "
                    f"({undelivered} undelivered messages) was written back to that path from the "
                    "open connection and the gateway goes on with it, nothing lost. Find what "
                    "deleted it (a cleanup job, a volume remounted or wiped)"
                )
            aside, reason = restored, "another file appeared at its path meanwhile"
        else:
            assert restored is not None
            aside, reason = restored, "another file is at its path"
        self.lost = (
            f"outbox {self.path!r} was replaced under the running gateway ({reason}): the "
            "gateway stopped using it (inbound alerts get 503, /readyz 503). What it held "
            f"({undelivered} undelivered messages) is saved in {aside!r}. Restart the gateway "
            "to use the file now at the path; to deliver the saved messages instead, stop the "
            "gateway and move the saved file to the path"
        )
        return self.lost

    def _copy_to(self, conn: sqlite3.Connection, target: str) -> None:
        """A complete, consistent copy of the open database at ``target`` (synced).

        Raises:
            _CopyFailedError: it could not be written (nothing is left at ``target``).
        """
        try:
            self._copy_sync(conn, target)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise _CopyFailedError(" ".join(str(exc).split())[:200]) from None

    def _copy_sync(self, conn: sqlite3.Connection, target: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        # Created empty (SQLite takes an empty file as an empty database) with the mode of the
        # file it copies, so the alerts in it are never readable by more users than before.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self._mode))
        os.chmod(target, self._mode)  # past the umask
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            conn.backup(copy)
        finally:
            copy.close()
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_back(self, conn: sqlite3.Connection) -> str | None:
        """Put the deleted file back at its path and reopen it; the path of the copy when
        another file took the path meanwhile (then the store is lost)."""
        copy = f"{self.path}.restored-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self._copy_to(conn, copy)
        self._conn = None
        conn.close()
        try:
            # The -wal and -shm of the deleted file are still at the path (SQLite leaves them
            # when its file was unlinked): the copy holds their content, and a -wal left there
            # would be replayed into the restored file.
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
            try:
                os.link(copy, self.path)  # never over a file that appeared meanwhile
            except FileExistsError:
                return copy
            os.unlink(copy)
            _sync_directory(self.path)
            self._open()
        except (OSError, StoreOpenError) as exc:
            self.lost = (
                f"outbox {self.path!r} was deleted under the running gateway and could not be "
                f"reopened ({exc}); what it held is saved in {copy!r}: stop the gateway, move "
                "that file to the path and start it again"
            )
            raise StoreUnavailableError(self.lost) from None
        return None

    def _save_aside(self, conn: sqlite3.Connection) -> str:
        aside = f"{self.path}.orphaned-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self._copy_to(conn, aside)
        self._conn = None
        conn.close()
        # Our -wal is still beside the path (SQLite keeps it when its file is gone): replayed
        # into the file that replaced ours, it would overwrite that file's pages. Its content
        # is in the copy. A -wal that came with the new file is another file and stays.
        wal = self.path + "-wal"
        with contextlib.suppress(OSError):
            if _file_identity(wal) == self._wal_identity:
                os.unlink(wal)
        return aside

    async def close(self) -> None:
        try:
            if self._conn is None:
                if self.lost is not None:
                    self._executor.shutdown(wait=True)
                return
            await self._run(self._close_sync)
            self._executor.shutdown(wait=True)
        finally:
            if self.lock is not None:
                self.lock.release()

    def _close_sync(self, conn: sqlite3.Connection) -> None:
        self._conn = None
        conn.close()


@dataclass(slots=True)
class _OnceItem:
    """One single-message ``enqueue_once`` call, for :meth:`SQLiteOutbox._enqueue_once_group`."""

    key: str
    window: float
    message: NewMessage
    payload: str
    now: float
    record_id: int = 0


class _Job:
    """One operation for the store's thread, answered through a thread future (``submit``)
    or an asyncio future of the submitting loop (``submit_async``)."""

    __slots__ = ("fn", "args", "future", "waiter", "loop", "batched", "urgent")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        batched: bool,
        loop: asyncio.AbstractEventLoop | None = None,
        urgent: bool = False,
    ) -> None:
        self.urgent = urgent
        self.fn = fn
        self.args = args
        self.batched = batched
        self.loop = loop
        self.future: Future[Any] | None = None if loop is not None else Future()
        self.waiter: asyncio.Future[Any] | None = None if loop is None else loop.create_future()

    def wanted(self) -> bool:
        """False when whoever waits for it has given up (cancelled) before it ran."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        # Read across threads without a lock: a cancel that lands just after this check
        # only means a result nobody reads, which _resolve ignores.
        return self.waiter is not None and not self.waiter.cancelled()

    def outcome(self) -> tuple[bool, Any]:
        """Run it: ``(True, result)`` or ``(False, exception)``."""
        try:
            return True, self.fn(*self.args)
        except BaseException as exc:
            return False, exc


def _resolve(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Set asyncio futures (on their loop's thread)."""
    for waiter, ok, value in answers:
        if waiter.done():
            continue
        if ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)


def _answer(jobs: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each job its outcome: thread futures directly, asyncio futures with one wake-up
    of their loop per batch (not one per job)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for job, (ok, value) in zip(jobs, outcomes, strict=True):
        if job.future is not None:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        elif job.loop is not None and job.waiter is not None:
            by_loop.setdefault(job.loop, []).append((job.waiter, ok, value))
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, answers)


class _StoreThread:
    """The one thread that owns an outbox's SQLite connection (group commit).

    Operations run one at a time, in order. When several are waiting — concurrent requests
    under load — they run inside one transaction, each in its own savepoint, and are committed
    together: one commit (and one WAL append) for many enqueues instead of one each. An
    operation's future resolves only after the commit that makes it durable.
    """

    MAX_BATCH = 64
    BACKGROUND_WITH_URGENT = 2
    BACKGROUND_BATCH = 16

    def __init__(self, outbox: SQLiteOutbox) -> None:
        self._outbox = outbox
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="wecom-bot-sqlite", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` alone on the store's thread."""
        job = _Job(fn, args, batched=False)
        self._queue.put(job)
        assert job.future is not None
        return job.future

    def submit_async(
        self, fn: Callable[..., Any], *args: Any, urgent: bool = False
    ) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on the store's thread, possibly committed with others; the
        result arrives on the running loop (call from a coroutine). ``urgent`` jobs (a
        sender waits for them) run before background work submitted earlier."""
        job = _Job(fn, args, batched=True, loop=asyncio.get_running_loop(), urgent=urgent)
        self._queue.put(job)
        assert job.waiter is not None
        return job.waiter

    def shutdown(self, wait: bool = True) -> None:
        """Stop the thread after the queued operations."""
        self._queue.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _loop(self) -> None:
        # Jobs taken off the queue but not run yet, in submission order (urgent ones jump
        # ahead of these; see submit_async).
        waiting: collections.deque[_Job] = collections.deque()
        stop = False
        first: _Job | None = None
        nxt: _Job | None = None
        while True:
            # Nothing run holds on while the thread waits: a job's arguments may be a large
            # journaled body.
            first = nxt = None
            urgent: list[_Job] = []
            if not waiting and not stop:
                first = self._queue.get()  # block until there is work
                if first is None:
                    stop = True
                elif first.urgent:
                    urgent.append(first)
                else:
                    waiting.append(first)
            while not stop:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                elif nxt.urgent:
                    urgent.append(nxt)
                else:
                    waiting.append(nxt)
            if not urgent and not waiting:
                if stop:
                    return
                continue
            if urgent:
                # The request path first; in bounded company, so that no amount of
                # background work queued ahead of it delays it by more than a few jobs.
                batch = urgent + self._take_batched(waiting, self.BACKGROUND_WITH_URGENT)
                self._run_batch(batch)
                del batch
            elif not waiting[0].batched:
                self._run_alone(waiting.popleft())
            else:
                self._run_batch(self._take_batched(waiting, self.BACKGROUND_BATCH))

    @staticmethod
    def _take_batched(waiting: collections.deque[_Job], limit: int) -> list[_Job]:
        taken: list[_Job] = []
        while waiting and len(taken) < limit and waiting[0].batched:
            taken.append(waiting.popleft())
        return taken

    @staticmethod
    def _run_alone(job: _Job) -> None:
        if job.wanted():
            _answer([job], [job.outcome()])

    def _run_batch(self, batch: list[_Job]) -> None:
        batch = [job for job in batch if job.wanted()]
        if not batch:
            return
        conn = self._outbox._conn
        if len(batch) == 1 or conn is None or conn.in_transaction:
            _answer(batch, [job.outcome() for job in batch])
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            # Each on its own; they report the lock error themselves.
            _answer(batch, [job.outcome() for job in batch])
            return
        outcomes = [job.outcome() for job in batch]
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = self._outbox._runtime_error(exc)
            # Nothing of the batch is stored.
            _answer(batch, [(False, error)] * len(batch))
            return
        _answer(batch, outcomes)
