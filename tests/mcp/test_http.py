"""``wecom-bot mcp --http --port 0`` serves streamable HTTP to the mcp client."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.streamable_http import streamable_http_client

from mcp import ClientSession
from tests.emulator.conftest import Emu, new_key
from tests.mcp.conftest import CONSOLE_SCRIPT, server_env
from wecom_bot.masking import key_fingerprint

KEY = new_key()


@pytest.fixture
def http_url(emu: Emu, tmp_path: Path) -> Iterator[str]:
    env = {"PATH": os.environ.get("PATH", ""), **server_env(emu, KEY, tmp_path)}
    log = tmp_path / "stderr.txt"
    with log.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "mcp", "--http", "--port", "0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            found = re.search(r"streamable HTTP at (http://127\.0\.0\.1:\d+/mcp)", log.read_text())
            if found:
                break
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no address announced"
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert KEY not in log.read_text()


async def test_streamable_http(http_url: str, emu: Emu) -> None:
    async with streamable_http_client(http_url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            assert "send_text" in {tool.name for tool in tools.tools}
            result = await session.call_tool("send_text", {"content": "over HTTP ✓"})
            assert not result.is_error, result.content
            invalid = await session.call_tool("send_markdown", {"content": ""})
            assert invalid.is_error
    stored = emu.client.get(f"/api/groups/{key_fingerprint(KEY)}/messages").json()["messages"]
    assert [entry["payload"] for entry in stored] == [
        {"msgtype": "text", "text": {"content": "over HTTP ✓"}}
    ]
