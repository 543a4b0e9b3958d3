"""Fixtures for the command-line tests: one emulator served over HTTP, and an in-process runner."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import serve
from wecom_bot.cli.output import run
from wecom_bot.emulator import EmulatorSettings, create_app
from wecom_bot.masking import key_fingerprint

ALLOWED_KEY = "cafe0000-1111-4222-8333-deadbeef9999"
"""The one key the restricted emulator accepts."""


@dataclass
class Result:
    """What one CLI run produced."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class TtyStringIO(io.StringIO):
    """A text stream that claims to be a terminal (to see progress bars)."""

    def isatty(self) -> bool:
        return True


class Cli:
    """Runs ``wecom-bot`` in-process with captured streams and a clean environment."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.outputs: list[str] = []

    def __call__(
        self,
        *argv: str,
        stdin: str = "",
        env: Mapping[str, str] | None = None,
        stderr: io.StringIO | None = None,
    ) -> Result:
        out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
        environment = {"HOME": str(self.home), "PATH": "/usr/bin:/bin"}
        environment.update(env or {})
        code = run(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err, env=environment)
        result = Result(code, out.getvalue(), err.getvalue())
        self.outputs.append(result.output)
        return result


class Emulator:
    """A served emulator and helpers to read what it stored and to inject faults."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def messages(self, key: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"/api/groups/{key_fingerprint(key)}/messages")
        if answer.status_code == 404:
            return []
        answer.raise_for_status()
        return list(answer.json()["messages"])

    def accepted(self, key: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(key) if m["status"] == "accepted"]

    def media(self, key: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"/api/groups/{key_fingerprint(key)}/media")
        answer.raise_for_status()
        return list(answer.json()["media"])

    def media_bytes(self, media_id: str) -> bytes:
        answer = self.http.get(f"/api/media/{media_id}")
        answer.raise_for_status()
        return answer.content

    def inject(self, key: str, **fault: Any) -> None:
        answer = self.http.post(f"/api/groups/{key_fingerprint(key)}/faults", json=fault)
        assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator that accepts any key, without a rate limit (faults make the 45009s)."""
    with serve(create_app(EmulatorSettings(rate=None))) as url:
        emu = Emulator(url)
        yield emu
        emu.http.close()


@pytest.fixture(scope="module")
def strict_emulator() -> Iterator[Emulator]:
    """An emulator that accepts only ALLOWED_KEY."""
    settings = EmulatorSettings(rate=None, keys=frozenset({ALLOWED_KEY}))
    with serve(create_app(settings)) as url:
        emu = Emulator(url)
        yield emu
        emu.http.close()


@pytest.fixture
def key() -> str:
    """A fresh, recognisable key per test (its own group in the emulator)."""
    return f"k3y5ecret-{uuid.uuid4().hex}"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The in-process runner, with HOME in a temporary directory (no real profile file)."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home)


def target(emu: Emulator, key: str) -> list[str]:
    """The options that point a send at ``emu`` with ``key``."""
    return ["--key", key, "--base-url", emu.url]
