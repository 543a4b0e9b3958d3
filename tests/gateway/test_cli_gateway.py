"""``wecom-bot gateway`` and ``gateway check`` as a user runs them, and the ``make run`` demo."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.gateway.harness import gateway_config, write_config

EXAMPLE = Path(__file__).parents[2] / "src/wecom_bot/gateway/examples/gateway.yaml"


def wecom_bot(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wecom_bot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_check_renders_the_example_config_with_sizes() -> None:
    result = wecom_bot(
        "gateway", "check", "--config", str(EXAMPLE), env={"WECOM_BOT_KEY": "k" * 36}
    )
    assert result.returncode == 0, result.stderr
    assert "config OK: 1 bot(s)" in result.stdout
    assert "/ 4096 bytes" in result.stdout and "route critical" in result.stdout
    assert "k" * 36 not in result.stdout + result.stderr


def test_check_names_the_field_of_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("bots: {ops: {key_env: X}}\nroutes: [{name: a, bots: [opz]}]\n", "utf-8")
    result = wecom_bot("gateway", "check", "--config", str(bad))
    assert result.returncode == 2
    assert "no bot named 'opz'" in result.stderr and "did you mean 'ops'" in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_with_an_unwritable_store_fails_at_start_clearly(tmp_path: Path) -> None:
    config = gateway_config(
        "http://127.0.0.1:9", "k" * 36, f"sqlite:///{tmp_path / 'missing-dir' / 'outbox.db'}"
    )
    path = write_config(tmp_path / "gw.yaml", config)
    result = wecom_bot("gateway", "--config", str(path), "--port", "0", timeout=30)
    assert result.returncode == 2
    assert "store" in result.stderr and "missing-dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_with_a_read_only_database_fails_at_start_clearly(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    database = directory / "outbox.db"
    database.write_bytes(b"")
    database.chmod(0o444)
    directory.chmod(0o555)
    try:
        if os.access(database, os.W_OK):  # root ignores permission bits: make it immutable
            immutable = subprocess.run(["chattr", "+i", str(database)], capture_output=True)
            assert immutable.returncode == 0, immutable.stderr
        config = gateway_config("http://127.0.0.1:9", "k" * 36, f"sqlite:///{database}")
        path = write_config(tmp_path / "gw.yaml", config)
        result = wecom_bot("gateway", "--config", str(path), "--port", "0", timeout=30)
    finally:
        subprocess.run(["chattr", "-i", str(database)], capture_output=True)
        directory.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert "store" in result.stderr and "outbox.db" in result.stderr
    assert "Traceback" not in result.stderr


# A real group's settings, exported as the CLI docs suggest: the demo must not use them unless
# asked (--real). The base URL answers nothing, so a demo that used it would not deliver.
EXPORTED_REAL_GROUP = {"WECOM_BOT_KEY": "693a" + "0" * 28 + "5aaa",
                       "WECOM_BOT_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip


def test_make_run_demo_delivers_the_samples_to_the_emulator_despite_an_exported_key(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wecom_bot.demo", "--once"],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **EXPORTED_REAL_GROUP, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Delivered" in result.stdout and "the outbox is empty" in result.stdout
    assert result.stdout.count("-> 200") == 3
    assert "Emulator of the WeCom API" in result.stdout and "real group" not in result.stdout
    assert list(tmp_path.iterdir()) == [], "the demo left its outbox behind"


def test_make_run_demo_shows_the_console_a_working_curl_and_says_goodbye(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "wecom_bot.demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **EXPORTED_REAL_GROUP, "TMPDIR": str(tmp_path)},
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        shown = "\n".join(lines)
        console = re.search(r"console: (http://127\.0\.0\.1:\d+)/ui", shown)
        assert console, shown
        root = httpx.get(console.group(1) + "/", follow_redirects=True, timeout=10)
        assert root.status_code == 200 and str(root.url).endswith("/ui")
        assert "<title>" in root.text
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        posted = subprocess.run(
            shlex.split(curl) + ["-s", "-w", "\n%{http_code}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert posted.stdout.rsplit("\n", 1)[-1] == "200", posted.stdout + posted.stderr
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, err
    assert "Bye." in out and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "the demo left its outbox behind"
