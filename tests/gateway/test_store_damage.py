"""A SQLite outbox with two pages overwritten: the gateway says so once, is not ready, refuses
alerts with 503 (the sender retries), and ``gateway recover-store`` keeps what is readable
(issue 18)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.harness import gateway_config, one_alert, write_config
from tests.redis_server import free_port
from wecom_bot.store import NewMessage, StoreUnavailableError
from wecom_bot.store.sqlite import SQLiteOutbox

KEY = "0123456789abcdef0123456789abcdef0123"
NOWHERE = "http://127.0.0.1:9"
MESSAGES = 2000


def fill(path: Path, count: int = MESSAGES) -> None:
    async def run() -> None:
        outbox = SQLiteOutbox(path)
        payloads = [
            NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": f"m{i} " * 60}})
            for i in range(count)
        ]
        await outbox.enqueue(payloads, now=time.time() + 3600)
        await outbox.close()

    asyncio.run(run())


def damage(path: Path) -> None:
    """Overwrite two leaf pages of the outbox table in the middle of it (the header survives,
    and rows are lost, whatever the indexes around them)."""
    with sqlite3.connect(path) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
    assert len(leaves) > 40, len(leaves)
    with path.open("r+b") as file:
        for number in leaves[len(leaves) // 2 : len(leaves) // 2 + 2]:
            file.seek((number - 1) * page)  # pages count from 1
            file.write(bytes([0xA5]) * page)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wecom_bot", *args], capture_output=True, text=True, timeout=120
    )


def test_a_damaged_outbox_is_not_ready_refuses_alerts_and_is_recovered(tmp_path: Path) -> None:
    database = tmp_path / "outbox.db"
    fill(database)
    damage(database)
    config_path = write_config(
        tmp_path / "gateway.yaml", gateway_config(NOWHERE, KEY, f"sqlite:///{database}")
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wecom_bot", "gateway", "--config", str(config_path),
             "--port", str(port)],
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        ready = httpx.get(url + "/readyz", timeout=5)
        assert ready.status_code == 503, ready.text
        assert "damaged" in ready.json()["reason"]
        refused = httpx.post(url + "/alertmanager", json=one_alert("AfterDamage"), timeout=5)
        assert refused.status_code == 503, refused.text
        time.sleep(3)  # the background loops run on: they must not flood the log
    finally:
        proc.terminate()
        proc.wait(20)
    lines = log.read_text().splitlines()
    told = [line for line in lines if "recover-store" in line]
    assert len(told) == 1, lines
    assert str(database) in told[0] and "damaged" in told[0]
    errors = [line.split(" ERROR ", 1)[1] for line in lines if " ERROR " in line]
    assert len(errors) == len(set(errors)) and len(errors) <= 10, "\n".join(errors)  # no flood
    assert "Traceback" not in log.read_text()  # it stopped cleanly too

    recovered = cli("gateway", "recover-store", "--config", str(config_path))
    assert recovered.returncode == 0, recovered.stderr
    damaged_copies = list(tmp_path.glob("outbox.db.damaged-*"))
    assert any(p.name.count("-") == 2 for p in damaged_copies), damaged_copies  # the file itself
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        kept = conn.execute("SELECT count(*) FROM outbox WHERE bot = 'ops'").fetchone()[0]
    assert MESSAGES * 0.8 < kept < MESSAGES, kept  # two pages' rows lost, the rest kept
    assert f"outbox: {kept} row(s) copied" in recovered.stdout, recovered.stdout

    async def reopen() -> int:
        outbox = SQLiteOutbox(database)
        try:
            assert outbox.damaged is None
            await outbox.ping()
            return await outbox.pending_count("ops")
        finally:
            await outbox.close()

    assert asyncio.run(reopen()) == kept


def test_damage_found_while_running_marks_the_outbox_damaged(tmp_path: Path) -> None:
    """Pages damaged under a running outbox: the first storage error checks integrity, and
    from then on every call fails with the damage named (readiness, ingest: 503)."""
    database = tmp_path / "outbox.db"
    fill(database, 12000)  # several times SQLite's page cache: the damaged pages are re-read

    async def run() -> None:
        outbox = SQLiteOutbox(database)
        try:
            assert outbox.damaged is None
            await outbox.ping()
            damage(database)
            with pytest.raises(StoreUnavailableError, match="is damaged"):
                await outbox.claim("ops", limit=20000, lease_seconds=30, now=time.time() + 7200)
            assert outbox.damaged is not None
            with pytest.raises(StoreUnavailableError, match="is damaged"):
                await outbox.ping()
        finally:
            await outbox.close()

    asyncio.run(run())
