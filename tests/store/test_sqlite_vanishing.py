"""A SQLite outbox whose file goes away under the open connection, and the one-gateway lock
(issue 26, items 5 and 6): deleted → written back from the open connection and reopened,
nothing lost; replaced → saved beside the path, every call refused; a second exclusive opener
refused with the file, the holder and the way out; a killed holder leaves no stale lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from wecom_bot.store import SQLiteOutbox, StoreInUseError, StoreUnavailableError, open_store

from ._support import FakeClock, content, text


def contents_in(path: Path) -> list[str]:
    """What a fresh opener of ``path`` finds: every record's text, in id order."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT payload FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()
    return [content(json.loads(row[0])) for row in rows]


async def test_a_deleted_file_is_written_back_and_nothing_is_lost(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    db.touch(0o600)  # a private outbox (SQLite takes an empty file as an empty database)
    store = SQLiteOutbox(db, clock=FakeClock())
    try:
        await store.enqueue([text(f"before {i}") for i in range(50)])
        assert await store.check_identity() is None
        os.unlink(db)  # the -wal and -shm stay, as with a careless `rm outbox.db`
        # Accepted after the deletion, before anyone noticed: still in the open file only.
        await store.enqueue([text("between")])

        seen = await store.check_identity()
        assert seen is not None and "deleted" in seen and str(db) in seen
        assert not db.exists()  # reporting repairs nothing

        repaired = await store.check_identity(repair=True)
        assert repaired is not None and "written back" in repaired and "51 undelivered" in repaired
        assert db.exists() and db.stat().st_mode & 0o777 == 0o600  # as private as before
        assert await store.check_identity() is None  # reported once, then all is well
        await store.enqueue([text("after")])
        await store.ping()
        assert await store.pending_count("ops") == 52
    finally:
        await store.close()
    assert contents_in(db) == [*(f"before {i}" for i in range(50)), "between", "after"]
    assert sorted(p.name for p in tmp_path.iterdir() if ".restored-" in p.name) == []


async def test_a_replaced_file_is_saved_aside_and_the_store_refuses_everything(
    tmp_path: Path,
) -> None:
    db = tmp_path / "outbox.db"
    store = SQLiteOutbox(db, clock=FakeClock())
    await store.enqueue([text("ours 1"), text("ours 2")])
    other = tmp_path / "other.db"
    other_store = SQLiteOutbox(other, clock=FakeClock())
    await other_store.enqueue([text("theirs")])
    await other_store.close()
    os.replace(other, db)  # another file moved over ours

    seen = await store.check_identity()
    assert seen is not None and "replaced" in seen
    lost = await store.check_identity(repair=True)
    assert lost is not None and "2 undelivered" in lost and "Restart the gateway" in lost
    (aside,) = [p for p in tmp_path.iterdir() if ".orphaned-" in p.name]
    assert str(aside) in lost
    assert await store.check_identity() == lost  # stays reported: nothing repairs it
    with pytest.raises(StoreUnavailableError, match="replaced"):
        await store.enqueue([text("refused")])
    with pytest.raises(StoreUnavailableError, match="replaced"):
        await store.ping()
    await store.close()
    assert contents_in(aside) == ["ours 1", "ours 2"]
    assert contents_in(db) == ["theirs"]  # the file at the path is left as it was


async def test_a_second_exclusive_opener_is_refused_with_the_file_and_the_way_out(
    tmp_path: Path,
) -> None:
    db = tmp_path / "outbox.db"
    first = open_store(f"sqlite:///{db}", exclusive=True)
    try:
        with pytest.raises(StoreInUseError) as info:
            open_store(f"sqlite:///{db}", exclusive=True)
        message = str(info.value)
        assert str(db) in message and f"pid {os.getpid()}" in message
        assert "redis://" in message and "docs/deployment.md" in message
        # The store commands open it beside the running gateway.
        reader = open_store(f"sqlite:///{db}")
        assert await reader.pending_count() == 0
        await reader.close()
    finally:
        await first.close()
    again = open_store(f"sqlite:///{db}", exclusive=True)  # released on close
    await again.close()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom wecom_bot.store.filelock import StoreLock\n"
         f"lock = StoreLock({str(db)!r})\nprint('held', flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreInUseError, match=f"pid {holder.pid}"):
            SQLiteOutbox(db, exclusive=True)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert Path(str(db) + ".lock").exists()  # the file stays; its lock went with the process
    store = SQLiteOutbox(db, exclusive=True)
    assert store.lock is not None and store.lock.held
    store.lock.release()


async def test_a_file_that_cannot_be_written_back_yet_is_kept_open_until_it_can(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "volume"
    directory.mkdir()
    db = directory / "outbox.db"
    store = SQLiteOutbox(db, clock=FakeClock())
    try:
        await store.enqueue([text("before")])
        shutil.rmtree(directory)  # the whole volume wiped: nowhere to write the copy
        waiting = await store.check_identity(repair=True)
        assert waiting is not None and "cannot be saved" in waiting and "do not restart" in waiting
        assert await store.check_identity(repair=True) == waiting  # the same, until it can
        await store.enqueue([text("meanwhile")])  # still held by the open connection
        directory.mkdir()
        repaired = await store.check_identity(repair=True)
        assert repaired is not None and "written back" in repaired
        assert await store.check_identity() is None
    finally:
        await store.close()
    assert contents_in(db) == ["before", "meanwhile"]
