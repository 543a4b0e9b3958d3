"""Helpers shared by the outbox tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from wecom_bot.store import NewMessage

START = 1_700_000_000.0


class FakeClock:
    """A settable wall clock: tests move time instead of sleeping."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def text(content: str, bot: str = "ops", notification_id: str | None = None) -> NewMessage:
    """A text message for ``bot``."""
    return NewMessage(
        bot=bot,
        payload={"msgtype": "text", "text": {"content": content}},
        notification_id=notification_id,
    )


def content(record_payload: dict[str, object]) -> str:
    """The text content of a stored text payload."""
    body = record_payload["text"]
    assert isinstance(body, dict)
    return str(body["content"])


WORKER = Path(__file__).with_name("_worker.py")


def spawn(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        text=True,
    )


def finish(proc: subprocess.Popen[str], *, kill: bool = False) -> int:
    """Wait for (or SIGKILL) a worker and close its pipes."""
    if kill:
        proc.send_signal(signal.SIGKILL)
    code = proc.wait(timeout=30)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
    return code


def read_line(proc: subprocess.Popen[str]) -> object:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"worker exited early with {proc.wait()}")
    return json.loads(line)
