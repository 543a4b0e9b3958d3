"""What the emulator remembers: groups, every answered request (accepted or rejected), media.

SQLite (stdlib), a file in WAL mode or ``:memory:``. A group is identified by the fingerprint
of its key (:func:`wecom_bot.masking.key_fingerprint`); whole keys are never stored, so
nothing read back from here can leak one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["accepted", "rejected"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY,
    masked_key TEXT NOT NULL,
    created_at REAL NOT NULL,
    faults_injected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    endpoint TEXT NOT NULL,
    msgtype TEXT,
    status TEXT NOT NULL,
    errcode INTEGER NOT NULL,
    errmsg TEXT NOT NULL,
    payload TEXT,
    raw_text TEXT,
    bytes INTEGER NOT NULL,
    content_bytes INTEGER,
    size_limit INTEGER,
    media TEXT NOT NULL DEFAULT '[]',
    injected INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS entries_by_group ON entries (group_id, id);
CREATE TABLE IF NOT EXISTS media (
    media_id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    type TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    created_at REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_group ON media (group_id);
"""

_ENTRY_COLUMNS = (
    "id, group_id, received_at, endpoint, msgtype, status, errcode, errmsg, payload, raw_text, "
    "bytes, content_bytes, size_limit, media, injected, warnings"
)
# Columns added after the first release, with their definition, for stores made before them.
_ADDED_ENTRY_COLUMNS = {"warnings": "TEXT NOT NULL DEFAULT '[]'"}


def iso_time(seconds: float) -> str:
    """Seconds since the epoch as an ISO 8601 UTC string with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Entry:
    """One answered request of a group: an accepted message or a rejected request.

    Attributes:
        id: increasing across all groups and never reused (usable as an SSE event id).
        group_id: the key fingerprint.
        received_at: wall-clock seconds.
        endpoint: ``"send"`` or ``"upload_media"``.
        msgtype: the message type (or upload type) when known.
        status: ``"accepted"`` or ``"rejected"``.
        errcode: what the emulator answered (0 when accepted).
        errmsg: the errmsg as answered.
        payload: the message as stored (news titles truncated as WeCom does); for a rejected
            request the JSON body if it was JSON.
        raw_text: for a rejected body that was not JSON, its start as text.
        bytes: size of the request body.
        content_bytes: size of the limited part (content UTF-8 bytes, image or media bytes).
        limit: the documented limit for ``content_bytes``.
        media: attachments as ``{"media_id", "type", "filename", "size"}`` dicts.
        injected: the answer came from fault injection.
        warnings: what the request relied on that only live WeCom's leniency lets through,
            as ``{"kind", "message"}`` dicts (see :mod:`wecom_bot.emulator.leniency`).
    """

    group_id: str
    received_at: float
    endpoint: str
    status: Status
    errcode: int
    errmsg: str
    bytes: int
    msgtype: str | None = None
    payload: Any = None
    raw_text: str | None = None
    content_bytes: int | None = None
    limit: int | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    injected: bool = False
    warnings: list[dict[str, str]] = field(default_factory=list)
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        """The entry as the inspection API shows it."""
        return {
            "id": self.id,
            "group_id": self.group_id,
            "received_at": self.received_at,
            "received_at_iso": iso_time(self.received_at),
            "endpoint": self.endpoint,
            "msgtype": self.msgtype,
            "status": self.status,
            "errcode": self.errcode,
            "errmsg": self.errmsg,
            "payload": self.payload,
            "raw_text": self.raw_text,
            "bytes": self.bytes,
            "content_bytes": self.content_bytes,
            "limit": self.limit,
            "media": self.media,
            "injected": self.injected,
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class Group:
    """A group (one key) with its counters.

    Attributes:
        id: the key fingerprint.
        masked_key: the key as ``693a…5aaa``.
        accepted: accepted messages.
        rejected: rejected requests by errcode (rate-limited ones included, under 45009).
        rate_limited: requests answered 45009 by the rate limiter (not by fault injection).
        faults_injected: requests answered by fault injection with an HTTP fault (status, drop)
            or a delay; errcode faults are entries and count under ``rejected``.
        last_message_at: receive time of the newest accepted message.
        last_activity_at: receive time of the newest entry of any status.
    """

    id: str
    masked_key: str
    created_at: float
    accepted: int = 0
    rejected: dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0
    faults_injected: int = 0
    last_message_at: float | None = None
    last_activity_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The group as the inspection API shows it."""
        return {
            "id": self.id,
            "masked_key": self.masked_key,
            "created_at": self.created_at,
            "accepted": self.accepted,
            "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
            "rejected_total": sum(self.rejected.values()),
            "rate_limited": self.rate_limited,
            "faults_injected": self.faults_injected,
            "last_message_at": self.last_message_at,
            "last_message_at_iso": (
                iso_time(self.last_message_at) if self.last_message_at is not None else None
            ),
            "last_activity_at": self.last_activity_at,
        }


@dataclass(frozen=True)
class Media:
    """An uploaded file or voice clip (without its bytes; see :meth:`Storage.media_data`)."""

    media_id: str
    group_id: str
    type: str
    filename: str
    content_type: str | None
    size: int
    md5: str
    created_at: float

    def attachment(self) -> dict[str, Any]:
        """What a message entry shows of the media it carries."""
        return {
            "media_id": self.media_id,
            "type": self.type,
            "filename": self.filename,
            "size": self.size,
            "content_type": self.content_type,
        }

    def to_json(self) -> dict[str, Any]:
        """The media as the inspection API shows it."""
        return {
            "media_id": self.media_id,
            "group_id": self.group_id,
            "type": self.type,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "md5": self.md5,
            "created_at": self.created_at,
        }


class Storage:
    """The SQLite store of one emulator.

    Calls are short and serialised by a lock, so the store may be used from the event loop
    and from other threads alike.

    Args:
        path: a file path (WAL mode) or ``":memory:"``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
        for name, definition in _ADDED_ENTRY_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE entries ADD COLUMN {name} {definition}")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- groups -------------------------------------------------------------------------------

    def ensure_group(self, group_id: str, masked_key: str, now: float) -> None:
        """Create the group if it does not exist yet."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO groups (id, masked_key, created_at) VALUES (?, ?, ?)",
                (group_id, masked_key, now),
            )

    def count_fault(self, group_id: str) -> None:
        """Count one request answered by an injected HTTP-level fault."""
        with self._lock:
            self._db.execute(
                "UPDATE groups SET faults_injected = faults_injected + 1 WHERE id = ?", (group_id,)
            )

    def list_groups(self) -> list[Group]:
        """Every group with its counters, oldest first."""
        return self._groups(None)

    def get_group(self, group_id: str) -> Group | None:
        """One group with its counters, or None."""
        found = self._groups(group_id)
        return found[0] if found else None

    def _groups(self, only: str | None) -> list[Group]:
        where, args = ("WHERE id = ?", (only,)) if only is not None else ("", ())
        with self._lock:
            groups = self._db.execute(
                f"SELECT id, masked_key, created_at, faults_injected FROM groups {where} "
                "ORDER BY created_at, id",
                args,
            ).fetchall()
            stats = self._db.execute(
                "SELECT group_id, status, errcode, injected, count(*), max(received_at) "
                f"FROM entries {where.replace('id', 'group_id')} "
                "GROUP BY group_id, status, errcode, injected",
                args,
            ).fetchall()
        out: dict[str, dict[str, Any]] = {
            gid: {"id": gid, "masked_key": mk, "created_at": ca, "faults_injected": fi,
                  "accepted": 0, "rejected": {}, "rate_limited": 0,
                  "last_message_at": None, "last_activity_at": None}
            for gid, mk, ca, fi in groups
        }  # fmt: skip
        for gid, status, errcode, injected, count, latest in stats:
            g = out.get(gid)
            if g is None:
                continue
            if status == "accepted":
                g["accepted"] += count
                g["last_message_at"] = max(g["last_message_at"] or latest, latest)
            else:
                g["rejected"][errcode] = g["rejected"].get(errcode, 0) + count
                if errcode == 45009 and not injected:
                    g["rate_limited"] += count
            g["last_activity_at"] = max(g["last_activity_at"] or latest, latest)
        return [Group(**g) for g in out.values()]

    def delete_group(self, group_id: str) -> bool:
        """Forget a group, its entries and its media. Returns whether it existed."""
        with self._lock:
            cur = self._db.execute("DELETE FROM groups WHERE id = ?", (group_id,))
            self._db.execute("DELETE FROM entries WHERE group_id = ?", (group_id,))
            self._db.execute("DELETE FROM media WHERE group_id = ?", (group_id,))
            return cur.rowcount > 0

    def reset(self) -> None:
        """Forget everything (entry ids keep increasing, so event ids stay unique)."""
        with self._lock:
            self._db.execute("DELETE FROM groups")
            self._db.execute("DELETE FROM entries")
            self._db.execute("DELETE FROM media")

    # -- entries ------------------------------------------------------------------------------

    def add_entry(self, entry: Entry) -> Entry:
        """Store an entry; returns it with its id."""
        payload = None if entry.payload is None else _dumps(entry.payload)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO entries (group_id, received_at, endpoint, msgtype, status, errcode, "
                "errmsg, payload, raw_text, bytes, content_bytes, size_limit, media, injected, "
                "warnings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.group_id, entry.received_at, entry.endpoint, entry.msgtype, entry.status,
                 entry.errcode, entry.errmsg, payload, entry.raw_text, entry.bytes,
                 entry.content_bytes, entry.limit, _dumps(entry.media), int(entry.injected),
                 _dumps(entry.warnings)),
            )  # fmt: skip
            new_id = cur.lastrowid
        assert new_id is not None  # sqlite always gives a rowid for an INSERT
        return replace(entry, id=new_id)

    def list_entries(
        self, group_id: str | None = None, *, since_id: int = 0, limit: int = 100
    ) -> list[Entry]:
        """Entries with id above ``since_id``, oldest first; of one group or of all."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id > ?"
        args: tuple[Any, ...] = (since_id,)
        if group_id is not None:
            sql += " AND group_id = ?"
            args += (group_id,)
        sql += " ORDER BY id LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_entry(row) for row in rows]

    def last_entry_id(self) -> int:
        """The id of the newest entry ever stored (0 when none)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'")
            found = row.fetchone()
        return int(found[0]) if found else 0

    # -- media --------------------------------------------------------------------------------

    def add_media(self, media: Media, data: bytes) -> None:
        """Store an upload."""
        with self._lock:
            self._db.execute(
                "INSERT INTO media (media_id, group_id, type, filename, content_type, size, md5, "
                "created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (media.media_id, media.group_id, media.type, media.filename, media.content_type,
                 media.size, media.md5, media.created_at, data),
            )  # fmt: skip

    def get_media(self, media_id: str) -> Media | None:
        """The upload with this id (whoever uploaded it), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT media_id, group_id, type, filename, content_type, size, md5, created_at "
                "FROM media WHERE media_id = ?",
                (media_id,),
            ).fetchone()
        return Media(*row) if row else None

    def list_media(self, group_id: str) -> list[Media]:
        """A group's uploads, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT media_id, group_id, type, filename, content_type, size, md5, created_at "
                "FROM media WHERE group_id = ? ORDER BY created_at, media_id",
                (group_id,),
            ).fetchall()
        return [Media(*row) for row in rows]

    def media_data(self, media_id: str) -> bytes | None:
        """The bytes of an upload, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM media WHERE media_id = ?", (media_id,)
            ).fetchone()
        return bytes(row[0]) if row else None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _entry(row: tuple[Any, ...]) -> Entry:
    (id_, group_id, received_at, endpoint, msgtype, status, errcode, errmsg, payload, raw_text,
     size, content_bytes, size_limit, media, injected, warnings) = row  # fmt: skip
    return Entry(
        id=id_,
        group_id=group_id,
        received_at=received_at,
        endpoint=endpoint,
        msgtype=msgtype,
        status=status,
        errcode=errcode,
        errmsg=errmsg,
        payload=None if payload is None else json.loads(payload),
        raw_text=raw_text,
        bytes=size,
        content_bytes=content_bytes,
        limit=size_limit,
        media=json.loads(media),
        injected=bool(injected),
        warnings=json.loads(warnings),
    )
