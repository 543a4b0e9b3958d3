"""``wecom-bot emulator`` as a real process: prints its URL, serves, stops cleanly, persists."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from . import payloads
from .conftest import new_key

COMMAND = [str(Path(sys.executable).with_name("wecom-bot")), "emulator"]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)")


class Process:
    """A running ``wecom-bot emulator`` with its output collected in the background."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WECOM_BOT_EMULATOR_KEYS", None)
        self.proc = subprocess.Popen(
            [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.pumps = [
            threading.Thread(target=self._pump, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for pump in self.pumps:
            pump.start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.output.append(line)
            self.lines.put(line)

    def base_url(self, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.output)
                continue
            match = URL.search(line)
            if match:
                assert match.group(1) != "0"
                return match.group(0)
        raise AssertionError("no URL printed:\n" + "".join(self.output))

    def wait_for(self, text: str, timeout: float = 10) -> str:
        """The output so far, once it holds ``text`` (the lines arrive one by one)."""
        deadline = time.monotonic() + timeout
        while text not in (out := "".join(self.output)):
            assert time.monotonic() < deadline and self.proc.poll() is None, out
            time.sleep(0.05)
        return out

    def interrupt(self, timeout: float = 5) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pump in self.pumps:
            pump.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def emulator(*args: str) -> Iterator[tuple[Process, str]]:
    process = Process(*args)
    try:
        yield process, process.base_url()
    finally:
        process.close()


def test_command_prints_its_url_answers_stops_on_ctrl_c_and_keeps_messages(
    tmp_path: Path,
) -> None:
    key, other = new_key(), new_key()
    db = tmp_path / "emulator.sqlite3"
    args = ("--port", "0", "--db", str(db), "--keys", f"{key},  ", "--rate", "20/1s")
    with emulator(*args) as (process, url):
        process.wait_for("in place of https://qyapi.weixin.qq.com")
        with httpx.Client(base_url=url, timeout=5) as client:
            send = "/cgi-bin/webhook/send"
            answer = client.post(send, params={"key": key}, json=payloads.text("kept"))
            assert answer.json() == {"errcode": 0, "errmsg": "ok"}
            answer = client.post(send, params={"key": other}, json=payloads.text())
            assert answer.json()["errcode"] == 93000
            assert client.get("/api/info").json()["rate_limit"] == "20/1s"

            # An open event stream must not keep the server from stopping.
            opened = threading.Event()

            def follow() -> None:
                with httpx.Client(base_url=url, timeout=10) as sse:
                    with sse.stream("GET", "/api/events") as stream:
                        opened.set()
                        for _ in stream.iter_lines():
                            pass

            reader = threading.Thread(target=follow, daemon=True)
            reader.start()
            assert opened.wait(5)
            started = time.monotonic()
            assert process.interrupt() == 0
            assert time.monotonic() - started < 3
            reader.join(3)
            assert not reader.is_alive()
        for pump in process.pumps:
            pump.join(5)
        everything = "".join(process.output)
        assert key not in everything and other not in everything

    with emulator("--port", "0", "--db", str(db), "--no-rate-limit") as (process, url):
        with httpx.Client(base_url=url, timeout=5) as client:
            [entry] = client.get("/api/messages").json()["messages"]
            assert entry["payload"]["text"]["content"] == "kept"
            assert client.get("/api/info").json()["rate_limit"] is None
        assert process.interrupt() == 0


def test_bad_options_exit_with_the_usage_code_and_name_the_option() -> None:
    done = subprocess.run(
        [*COMMAND, "--port", "0", "--rate", "fast"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "rate must look like 20/60s" in done.stderr
    assert "listening" not in done.stdout


def test_help_documents_limits_and_strict() -> None:
    done = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    text = " ".join(done.stdout.replace("│", " ").split())
    assert "--limits <documented|live>" in text and "[default: documented]" in text
    assert "text up to the 5120 bytes live WeCom accepts" in text
    assert "--strict" in text and "unknown fields (40058)" in text


def test_strict_with_live_limits_is_a_usage_error() -> None:
    done = subprocess.run(
        [*COMMAND, "--port", "0", "--strict", "--limits", "live"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "limits: 'live' goes beyond the documented limits; not with strict" in done.stderr
    assert "listening" not in done.stdout


def test_live_limits_from_the_command_line() -> None:
    key = new_key()
    with emulator("--port", "0", "--db", ":memory:", "--limits", "live") as (process, url):
        with httpx.Client(base_url=url, timeout=5) as client:
            answer = client.post(
                "/cgi-bin/webhook/send", params={"key": key}, json=payloads.text("x" * 4000)
            )
            assert answer.json() == {"errcode": 0, "errmsg": "ok"}
            info = client.get("/api/info").json()
            assert (info["limits"], info["strict"]) == ("live", False)
        assert process.interrupt() == 0
        assert "requests lenient as live  ·  live limits" in "".join(process.output)
