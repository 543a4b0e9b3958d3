"""Recovering a damaged SQLite outbox: copy whatever is readable into a fresh file.

A SQLite file whose pages were overwritten (a disk fault, a copy taken mid-write) fails its
integrity check; the gateway then refuses alerts with 503 until it is repaired
(:mod:`wecom_bot.store.sqlite`). :func:`recover_sqlite` reads every table of the damaged file
row by row where whole reads fail, writes what it could read into a new file with the same
schema, moves the damaged file (and its ``-wal``/``-shm``) aside as ``NAME.damaged-TIME`` and
puts the new file in its place. Run it with the gateway stopped.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RecoveryReport", "recover_sqlite"]

_BATCH = 500


@dataclass
class RecoveryReport:
    """What :func:`recover_sqlite` did.

    Attributes:
        path: the outbox file (now the recovered one).
        damaged_copy: where the damaged file was moved.
        copied: rows copied, per table.
        unreadable: rowid ranges or tables that could not be read, per table.
    """

    path: Path
    damaged_copy: Path
    copied: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)


def _schema(source: sqlite3.Connection) -> list[tuple[str, str, str]]:
    rows = source.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index', rowid"
    ).fetchall()
    return [(str(t), str(n), str(q)) for t, n, q in rows]


def _top_rowid(source: sqlite3.Connection, quoted: str, table: str) -> int | None:
    """The table's largest rowid, or ``None`` for a WITHOUT ROWID table (or if unknowable)."""
    try:
        top = source.execute(f"SELECT max(rowid) FROM {quoted}").fetchone()[0]
        return None if top is None else int(top)
    except sqlite3.OperationalError:  # no rowid column
        return None
    except sqlite3.DatabaseError:
        pass
    with contextlib.suppress(sqlite3.DatabaseError):
        row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        if row is not None:
            return int(row[0])
    return None


def _rows(source: sqlite3.Connection, table: str, lost: list[str]) -> Iterator[tuple[object, ...]]:
    """The readable rows of ``table`` (with their rowid first, where the table has one)."""
    quoted = '"' + table.replace('"', '""') + '"'
    top = _top_rowid(source, quoted, table)
    if top is None:
        try:
            yield from source.execute(f"SELECT * FROM {quoted}").fetchall()
        except sqlite3.DatabaseError as exc:
            lost.append(f"all ({exc})")
        return
    for low in range(0, top + 1, _BATCH):
        high = low + _BATCH
        try:
            yield from source.execute(
                f"SELECT rowid, * FROM {quoted} WHERE rowid >= ? AND rowid < ?", (low, high)
            ).fetchall()
            continue
        except sqlite3.DatabaseError:
            pass
        bad = 0
        for rowid in range(low, high):  # one by one: a damaged page loses only its own rows
            try:
                yield from source.execute(
                    f"SELECT rowid, * FROM {quoted} WHERE rowid = ?", (rowid,)
                ).fetchall()
            except sqlite3.DatabaseError:
                bad += 1
        if bad:
            lost.append(f"rowids {low}-{high - 1}: {bad} unreadable")


def recover_sqlite(path: str | os.PathLike[str]) -> RecoveryReport:
    """Copy what is readable of the SQLite file ``path`` into a fresh one that takes its place.

    Returns:
        What was copied and what could not be read.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        sqlite3.DatabaseError: not even the file's list of tables can be read.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no SQLite file at {target}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fresh = target.with_name(f"{target.name}.recovering-{stamp}")
    damaged = target.with_name(f"{target.name}.damaged-{stamp}")
    report = RecoveryReport(target, damaged)
    source = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    dest = sqlite3.connect(fresh, isolation_level=None)
    try:
        schema = _schema(source)
        dest.execute("BEGIN")
        for kind, _, sql in schema:
            if kind == "table":
                dest.execute(sql)
        for kind, name, _ in schema:
            if kind != "table":
                continue
            lost: list[str] = []
            count = 0
            quoted = '"' + name.replace('"', '""') + '"'
            names = [str(r[1]) for r in dest.execute(f"PRAGMA table_info({quoted})")]
            columns = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
            for row in _rows(source, name, lost):
                listed = columns if len(row) == len(names) else f"rowid, {columns}"
                marks = ",".join("?" * len(row))
                dest.execute(f"INSERT OR IGNORE INTO {quoted} ({listed}) VALUES ({marks})", row)
                count += 1
            report.copied[name] = count
            if lost:
                report.unreadable[name] = lost
        for kind, _, sql in schema:
            if kind != "table":
                with contextlib.suppress(sqlite3.DatabaseError):
                    dest.execute(sql)
        dest.execute("COMMIT")
        dest.execute("PRAGMA journal_mode = WAL")
    except BaseException:
        dest.close()
        source.close()
        fresh.unlink(missing_ok=True)
        raise
    dest.close()
    source.close()
    for suffix in ("", "-wal", "-shm"):
        side = target.with_name(target.name + suffix)
        if side.exists():
            side.rename(damaged.with_name(damaged.name + suffix))
    fresh.rename(target)
    return report
