"""The installed ``wecom-bot`` console script, run as a real process against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import Emulator

SCRIPT = Path(sys.executable).with_name("wecom-bot")


def test_console_script_sends_from_stdin_and_reports_errors(
    emulator: Emulator, key: str, tmp_path: Path
) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed (pip install -e .)"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "WECOM_BOT_KEY": key, "WECOM_BOT_BASE_URL": emulator.url}  # fmt: skip
    sent = subprocess.run([str(SCRIPT), "send", "text"], input="echoed 你好\n", env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert emulator.accepted(key)[0]["payload"]["text"]["content"] == "echoed 你好"

    too_long = subprocess.run([str(SCRIPT), "send", "text"], input="x" * 2100, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert too_long.returncode == 2
    assert too_long.stderr.startswith("error: text.content is 2100 bytes")
    assert "Traceback" not in too_long.stderr
    assert key not in sent.stdout + sent.stderr + too_long.stdout + too_long.stderr
