"""Issue 27: what the server commands say when they start and stop, with real processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.gateway.harness import gateway_config, write_config
from wecom_bot.cli.exit_codes import ExitCode
from wecom_bot.gateway.samples import alertmanager_firing

KEY = "k" * 36


class _Process:
    """A child process whose stdout a thread collects, so waits on it are bounded."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    def read_until(self, pattern: str, timeout: float = 30) -> str:
        """stdout up to the first line matching ``pattern``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, line in enumerate(list(self.lines)):
                if re.search(pattern, line):
                    return "".join(self.lines[: index + 1])
            if self.popen.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in: {''.join(self.lines)}")

    def stop(self, sig: signal.Signals) -> tuple[str, str]:
        """Send ``sig``; stdout and stderr once it exited (killed after 30 s)."""
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=30)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(timeout=10)
        assert self.popen.stderr is not None and self.popen.stdout is not None
        err = self.popen.stderr.read()
        self.popen.stderr.close()
        self.popen.stdout.close()
        return "".join(self.lines), err

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode


@contextmanager
def _taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def _config(tmp_path: Path) -> Path:
    # Port 9 refuses: what the gateway accepts stays queued, which the stop line must count.
    config = gateway_config("http://127.0.0.1:9", KEY, f"sqlite:///{tmp_path / 'outbox.db'}")
    return write_config(tmp_path / "gw.yaml", config)


def test_gateway_banner_names_the_console_and_sigterm_logs_what_stays_queued(
    tmp_path: Path,
) -> None:
    gateway = _Process("-m", "wecom_bot", "gateway", "--config", str(_config(tmp_path)),
                     "--port", "0")  # fmt: skip
    try:
        banner = gateway.read_until(r"console http://")
        base = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        assert base, banner
        assert f"console {base.group(1)}/ui " in banner
        answer = httpx.post(f"{base.group(1)}/alertmanager", json=alertmanager_firing(), timeout=10)
        assert answer.status_code == 200
        console = httpx.get(f"{base.group(1)}/ui", timeout=10)
        assert console.status_code == 200 and "<title>" in console.text
    finally:
        out, err = gateway.stop(signal.SIGTERM)
    lines = [line for line in err.splitlines() if "stopping: signal SIGTERM" in line]
    assert len(lines) == 1, err
    queued = re.search(r"(\d+) message\(s\) stay queued in the outbox", lines[0])
    assert queued and int(queued.group(1)) >= 1, lines[0]
    assert "Traceback" not in err


def test_gateway_logs_sigint_too(tmp_path: Path) -> None:
    gateway = _Process("-m", "wecom_bot", "gateway", "--config", str(_config(tmp_path)),
                     "--port", "0")  # fmt: skip
    try:
        banner = gateway.read_until(r"console http://")
        base = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        assert base, banner
        # Started: the lifespan (which installs the stop handler) has run once /readyz answers.
        assert httpx.get(f"{base.group(1)}/healthz", timeout=10).status_code == 200
    finally:
        _, err = gateway.stop(signal.SIGINT)
    assert re.search(r"stopping: signal SIGINT; 0 message\(s\) stay queued", err), err


def test_a_taken_port_exits_with_one_code_from_gateway_and_emulator(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with _taken_port() as port:
        runs = {
            "gateway": subprocess.run(
                [sys.executable, "-m", "wecom_bot", "gateway", "--config", str(config),
                 "--port", str(port)],
                capture_output=True, text=True, timeout=60,
            ),
            "emulator": subprocess.run(
                [sys.executable, "-m", "wecom_bot", "emulator", "--port", str(port),
                 "--db", ":memory:"],
                capture_output=True, text=True, timeout=60,
            ),
        }  # fmt: skip
    for name, run in runs.items():
        assert run.returncode == ExitCode.CANNOT_LISTEN == 6, (name, run.stderr)
        assert f"cannot listen on 127.0.0.1:{port}" in run.stderr, (name, run.stderr)
        assert "Traceback" not in run.stderr


def test_the_demo_removes_its_outbox_on_sigterm(tmp_path: Path) -> None:
    demo = _Process("-m", "wecom_bot.demo", env={"TMPDIR": str(tmp_path)})
    try:
        demo.read_until(r"^Press Ctrl-C", timeout=60)
        assert list(tmp_path.iterdir()), "the demo keeps its outbox under TMPDIR while it runs"
    finally:
        out, err = demo.stop(signal.SIGTERM)
    assert demo.returncode == 128 + signal.SIGTERM, err
    assert "Bye." in out and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "the demo left its outbox behind"
