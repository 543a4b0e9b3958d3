"""Fixtures: an emulator on 127.0.0.1:0 and ``wecom-bot mcp`` run over stdio by the mcp client."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp.client.stdio import stdio_client
from mcp_types import CallToolResult

from mcp import ClientSession, StdioServerParameters
from tests.emulator.conftest import Emu, new_key, running
from wecom_bot.emulator import EmulatorSettings

CONSOLE_SCRIPT = Path(sys.executable).parent / "wecom-bot"
"""The installed ``wecom-bot`` console script, the way an MCP client starts it."""


@dataclass
class Server:
    """A running ``wecom-bot mcp`` over stdio, and the file its stderr goes to."""

    session: ClientSession
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return await self.session.call_tool(tool, arguments)

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must succeed; returns its structured result."""
        result = await self.call(tool, **arguments)
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        return result.structured_content

    async def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must answer a tool error; returns the error text."""
        result = await self.call(tool, **arguments)
        assert result.is_error, text_of(result)
        return text_of(result)


def text_of(result: CallToolResult) -> str:
    """Everything a tool result shows the agent, as one string."""
    parts = [getattr(block, "text", "") for block in result.content]
    if result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def server_env(emu: Emu, key: str | None, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a server that talks to ``emu`` and reads no real profile file."""
    env = {
        "WECOM_BOT_BASE_URL": emu.url,
        "XDG_CONFIG_HOME": str(home),
        "HOME": str(home),
        "WECOM_BOT_RATE": "100/60s",
        "COLUMNS": "200",
    }
    if key is not None:
        env["WECOM_BOT_KEY"] = key
    if os.environ.get("PYTHONPATH"):  # the code under test, when it is not the installed one
        paths = os.environ["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in paths if p)
    env.update(extra)
    return env


@asynccontextmanager
async def mcp_server(
    env: Mapping[str, str], tmp: Path, args: tuple[str, ...] = ()
) -> AsyncIterator[Server]:
    """Start ``wecom-bot mcp`` as an MCP client would and yield an initialised session."""
    params = StdioServerParameters(
        command=str(CONSOLE_SCRIPT), args=["mcp", *args], env=dict(env), cwd=str(tmp)
    )
    stderr_path = tmp / f"stderr-{len(list(tmp.glob('stderr-*')))}.txt"
    with stderr_path.open("w", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield Server(session, stderr_path)


class Harness:
    """A ``wecom-bot mcp`` session kept open in a background event loop, for sync tests.

    One server process serves every test of a module (starting one takes a few seconds),
    and each test calls tools with plain function calls.
    """

    def __init__(self, env: Mapping[str, str], tmp: Path, args: tuple[str, ...] = ()) -> None:
        self._env, self._tmp, self._args = dict(env), tmp, args
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.server: Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with mcp_server(self._env, self._tmp, self._args) as server:
                self.server = server
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported by start() or close()
            self._failure = exc
        finally:
            self._ready.set()

    def start(self) -> Harness:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self.server is None:
            raise RuntimeError(f"wecom-bot mcp did not start: {self._failure!r}")
        return self

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        if self._failure is not None:
            raise self._failure

    def _do(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    @property
    def stderr(self) -> str:
        assert self.server is not None
        return self.server.stderr

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        assert self.server is not None
        result: CallToolResult = self._do(self.server.call(tool, **arguments))
        return result

    def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        assert self.server is not None
        result: dict[str, Any] = self._do(self.server.ok(tool, **arguments))
        return result

    def error(self, tool: str, **arguments: Any) -> str:
        assert self.server is not None
        text: str = self._do(self.server.error(tool, **arguments))
        return text

    def list_tools(self) -> Any:
        assert self.server is not None
        return self._do(self.server.session.list_tools())


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    """One emulator (no rate limit of its own) for a test module; tests use fresh keys."""
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


@pytest.fixture
def key() -> str:
    return new_key()
