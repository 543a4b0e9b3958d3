"""SQLite-only behaviour: durability across processes, crashes, locks, bad paths, URLs."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wecom_bot.errors import ConfigError
from wecom_bot.store import (
    MemoryOutbox,
    NewMessage,
    NewTimer,
    Priority,
    SendMark,
    SQLiteOutbox,
    Status,
    StoreOpenError,
    StoreUnavailableError,
    open_store,
)
from wecom_bot.store.base import LEASE_EXPIRED_ERROR
from wecom_bot.store.sqlite import SCHEMA_VERSION

from ._support import START, FakeClock, content, finish, read_line, spawn, text


def sqlite_url(db: Path) -> str:
    return f"sqlite:///{db}?busy_timeout=30"


@contextmanager
def lock_held(db: Path) -> Iterator[None]:
    """Another process holds the write lock of ``db`` for the duration of the block."""
    code = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.communicate("\n", timeout=10)


async def test_records_survive_reopening(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "outbox.db"
    store = SQLiteOutbox(db, clock=clock)
    ids = await store.enqueue([text("kept", notification_id="n")])
    [dead_id] = await store.enqueue([text("dead")])
    await store.dead(dead_id, "invalid key")
    await store.note_send("k", clock.now, keep=60)
    await store.close()

    reopened = SQLiteOutbox(db, clock=clock)
    try:
        record = await reopened.get(ids[0])
        assert record is not None and content(record.payload) == "kept"
        assert record.notification_ids == ("n",)
        assert [r.last_error for r in await reopened.list_dead()] == ["invalid key"]
        assert await reopened.recent_sends("k", clock.now - 60) == [SendMark(clock.now)]
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT version FROM schema_version").fetchall() == [
                (SCHEMA_VERSION,)
            ]
    finally:
        await reopened.close()


async def test_sigkilled_worker_loses_nothing(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "outbox.db"
    store = SQLiteOutbox(db, clock=clock)
    try:
        ids = await store.enqueue([text(f"alert {i}") for i in range(10)])
        worker = spawn("hold", sqlite_url(db), str(START), "6", "30")
        try:
            held = read_line(worker)
        finally:
            code = finish(worker, kill=True)
        assert held == ids[:6]
        assert code == -signal.SIGKILL

        # Within the lease only the records the dead worker did not hold are claimable.
        clock.advance(29)
        rest = await store.claim("ops", limit=20, lease_seconds=30)
        assert [r.id for r in rest] == ids[6:]
        await store.ack([r.id for r in rest])

        clock.advance(1)  # the worker's lease is over: its records come back, in order
        back = await store.claim("ops", limit=20, lease_seconds=30)
        assert [r.id for r in back] == ids[:6]
        assert all(r.attempts == 1 and r.last_error == LEASE_EXPIRED_ERROR for r in back)
        assert [content(r.payload) for r in back] == [f"alert {i}" for i in range(6)]
    finally:
        await store.close()


async def test_sigkill_during_enqueues_keeps_every_committed_record(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    worker = spawn("enqueue", sqlite_url(db))
    reported: list[int] = []
    try:
        while len(reported) < 200:
            value = read_line(worker)
            assert isinstance(value, int)
            reported.append(value)
    finally:
        finish(worker, kill=True)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = SQLiteOutbox(db)
    try:
        for record_id in reported:
            record = await store.get(record_id)
            assert record is not None and record.status is Status.PENDING
        assert await store.pending_count() >= len(reported)
    finally:
        await store.close()


async def test_two_processes_never_claim_the_same_record(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "outbox.db"
    store = SQLiteOutbox(db, clock=clock)
    ids = await store.enqueue([text(str(i)) for i in range(1000)])
    await store.close()

    workers = [spawn("drain", sqlite_url(db), str(START + 1), stdin=True) for _ in range(2)]
    try:
        for worker in workers:
            assert read_line(worker) == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        claimed = [read_line(worker) for worker in workers]
    finally:
        for worker in workers:
            finish(worker)
    first, second = (set(c) for c in claimed)  # type: ignore[call-overload]
    assert first and second, "both workers should have taken part"
    assert not first & second
    assert first | second == set(ids)


async def test_open_fails_clearly_when_the_directory_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "outbox.db"
    with pytest.raises(StoreOpenError) as info:
        open_store(f"sqlite:///{missing}")
    assert isinstance(info.value, ConfigError)
    assert "store" in str(info.value) and str(missing.parent) in str(info.value)
    assert "does not exist" in str(info.value)


async def test_open_fails_clearly_on_a_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    await SQLiteOutbox(db).close()
    db.chmod(0o444)
    immutable = os.geteuid() == 0  # root ignores file modes; the immutable flag stops it
    if immutable:
        subprocess.run(["chattr", "+i", str(db)], check=True)
    try:
        with pytest.raises(StoreOpenError) as info:
            open_store(f"sqlite:///{db}")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(db)], check=True)
        db.chmod(0o644)
    message = str(info.value)
    assert message.startswith("store:") and str(db) in message
    assert "writable" in message


async def test_open_fails_clearly_when_locked_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE other (x)")  # an existing file, not yet our schema
    with lock_held(db):
        began = time.monotonic()
        with pytest.raises(StoreOpenError) as info:
            open_store(f"sqlite:///{db}?busy_timeout=0.2")
        assert time.monotonic() - began < 5
    message = str(info.value)
    assert str(db) in message and "locked by another process" in message
    assert "redis://" in message
    await SQLiteOutbox(db).close()  # fine once the lock is gone


async def test_a_lock_at_runtime_is_reported_and_nothing_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    store = SQLiteOutbox(db, busy_timeout=0.2)
    try:
        with lock_held(db):
            with pytest.raises(StoreUnavailableError, match="locked"):
                await store.enqueue([text("blocked")])
        assert await store.pending_count() == 0
        await store.enqueue([text("after")])
        assert await store.pending_count() == 1
    finally:
        await store.close()


async def test_disk_full_is_reported_and_nothing_is_stored(tmp_path: Path) -> None:
    store = SQLiteOutbox(tmp_path / "outbox.db")
    try:
        await store.enqueue([text("before")])
        # The page quota makes SQLite answer SQLITE_FULL exactly as a full disk does.
        await store._run(lambda conn: conn.execute("PRAGMA max_page_count = 12"))
        with pytest.raises(StoreUnavailableError, match="full"):
            await store.enqueue([text("x" * 2000) for _ in range(50)])
        assert await store.pending_count() == 1
    finally:
        await store.close()


async def test_not_a_database_and_a_directory_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreOpenError, match="not a SQLite database"):
        open_store(f"sqlite:///{junk}")
    with pytest.raises(StoreOpenError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    await SQLiteOutbox(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreOpenError, match="newer wecom-bot"):
        SQLiteOutbox(db)


async def test_a_version_1_file_is_migrated_and_keeps_its_records(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    store = SQLiteOutbox(db)
    [kept] = await store.enqueue([text("kept")])
    await store.close()
    with sqlite3.connect(db) as conn:  # what wecom-bot with schema version 1 left
        for table in ("send_log", "alert_group", "group_timer"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX outbox_rank")
        for column in ("priority", "rank"):
            conn.execute(f"ALTER TABLE outbox DROP COLUMN {column}")
        conn.execute("UPDATE schema_version SET version = 1")

    migrated = SQLiteOutbox(db)
    try:
        record = await migrated.get(kept)
        assert record is not None and content(record.payload) == "kept"
        assert record.priority is Priority.ALERT
        # An old record is claimed in its old place, before a later reminder.
        await migrated.enqueue(
            [NewMessage("ops", {"msgtype": "text", "text": {"content": "r"}},
                        priority=Priority.REMINDER)]
        )  # fmt: skip
        claimed = await migrated.claim("ops", limit=5, lease_seconds=5)
        assert [content(r.payload) for r in claimed] == ["kept", "r"]
        await migrated.note_send("k", 100.0, keep=60)
        assert await migrated.recent_sends("k", 0.0) == [SendMark(100.0)]
        assert await migrated.open_group("g", {}, [NewTimer("k", 100.0)])
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT version FROM schema_version").fetchall() == [
                (SCHEMA_VERSION,)
            ]
    finally:
        await migrated.close()


async def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///./rel.db?synchronous=full&busy_timeout=2")
    assert isinstance(relative, SQLiteOutbox)
    assert relative.synchronous == "FULL" and relative.busy_timeout == 2
    await relative.enqueue([text("x")])
    await relative.close()
    assert (tmp_path / "rel.db").is_file()

    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
    assert isinstance(absolute, SQLiteOutbox) and absolute.synchronous == "NORMAL"
    await absolute.close()
    assert (tmp_path / "abs.db").is_file()

    in_memory = open_store("sqlite:///:memory:")
    assert isinstance(in_memory, SQLiteOutbox)
    await in_memory.close()
    assert isinstance(open_store("memory://"), MemoryOutbox)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://db/wecom", "unknown scheme"),
        ("outbox.db", "not a store URL"),
        ("sqlite://", "no database path"),
        ("sqlite:///x.db?journal=off", "unknown SQLite option"),
        ("sqlite:///x.db?synchronous=OFF", "NORMAL or FULL"),
        ("sqlite:///x.db?busy_timeout=soon", "number of seconds"),
        ("memory://somewhere", "takes no path"),
    ],
)
def test_bad_store_urls_name_the_field(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    assert str(info.value).startswith("store:")
    assert expected in str(info.value)
    if expected == "unknown scheme":
        assert "sqlite:///" in str(info.value) and "redis://" in str(info.value)


def test_unknown_scheme_does_not_echo_a_password() -> None:
    with pytest.raises(ConfigError) as info:
        open_store("mysql://user:s3cret@db/x")
    assert "s3cret" not in str(info.value)


async def test_concurrent_single_enqueue_once_calls_get_their_own_ids(tmp_path: Path) -> None:
    # The request path's calls made in one turn of the loop are stored by one statement per
    # step; each caller must still get the id of its own record, and duplicates None.
    store = SQLiteOutbox(tmp_path / "outbox.db")
    try:
        await store.enqueue_once("k-old", 300, [text("old")], now=START)
        calls = []
        for n in range(120):
            key = f"k{n % 90}" if n < 110 else "k-old"  # 20 repeats within the turn, 10 late
            message = NewMessage(
                bot=f"b{n % 3}",
                payload={"msgtype": "text", "text": {"content": f"m{n}"}},
                notification_id=f"n{n}",
            )
            calls.append(store.enqueue_once(key, 300, [message], now=START + 1))
        answers = await asyncio.gather(*calls)
        stored = [(n, ids) for n, ids in enumerate(answers) if ids is not None]
        assert [n for n, _ in stored] == list(range(90))  # first of each key wins
        for n, [record_id] in stored:
            record = await store.get(record_id)
            assert record is not None and content(record.payload) == f"m{n}"
            assert record.bot == f"b{n % 3}" and record.notification_ids == (f"n{n}",)
            assert [r.id for r in await store.find_by_notification(f"n{n}")] == [record_id]
        assert await store.pending_count() == 91
        # A key becomes free again once its window has passed.
        later = await store.enqueue_once("k0", 300, [text("again")], now=START + 302)
        assert later is not None
    finally:
        await store.close()


async def test_a_failing_group_of_enqueue_once_calls_stores_none_of_them(tmp_path: Path) -> None:
    store = SQLiteOutbox(tmp_path / "outbox.db")
    try:
        await store.enqueue([text("before")])
        await store._run(lambda conn: conn.execute("PRAGMA max_page_count = 12"))
        calls = [store.enqueue_once(f"k{n}", 300, [text("x" * 3000)]) for n in range(40)]
        answers = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(a, StoreUnavailableError) for a in answers), answers
        assert await store.pending_count() == 1
    finally:
        await store.close()


async def test_request_path_writes_run_before_background_work_queued_earlier(
    tmp_path: Path,
) -> None:
    store = SQLiteOutbox(tmp_path / "outbox.db")
    gate = threading.Event()
    try:
        # Hold the store's thread, queue background work, then a request-path write.
        blocker = asyncio.ensure_future(store._run(lambda conn: gate.wait(10)))
        await asyncio.sleep(0.05)
        background = asyncio.ensure_future(store.enqueue([text("background")]))
        await asyncio.sleep(0.05)
        urgent = asyncio.ensure_future(store.enqueue_once("k", 300, [text("request")]))
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        [background_id] = await background
        urgent_ids = await urgent
        assert urgent_ids is not None and urgent_ids[0] < background_id
    finally:
        gate.set()
        await store.close()
