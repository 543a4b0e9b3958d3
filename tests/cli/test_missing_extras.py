"""A missing optional part is one line naming the ``pip install`` to run, exit code 2.

Each case runs the console-script entry point in a fresh interpreter in which importing the
named top-level modules fails, as it does after ``pip install wecom-bot`` without the extra.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = str(Path(__file__).parents[2] / "src/wecom_bot/gateway/examples/gateway.yaml")

_BLOCKED_RUN = """
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

BLOCKED = set(sys.argv[1].split(","))
for loaded in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[loaded]
sys.meta_path.insert(0, Absent())
sys.argv = ["wecom-bot", *sys.argv[2:]]
from wecom_bot.cli.launcher import main
main()
"""


def _run(blocked: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, blocked, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("blocked", "argv", "install"),
    [
        ("typer", ["--help"], "pip install 'wecom-bot[cli]'"),
        ("typer", ["send", "text", "hi"], "pip install 'wecom-bot[cli]'"),
        ("mcp", ["mcp"], "pip install 'wecom-bot[mcp]'"),
        ("typer", ["mcp"], "pip install 'wecom-bot[cli,mcp]'"),
        ("uvicorn", ["emulator", "--port", "0"], "pip install 'wecom-bot[emulator]'"),
        ("fastapi,uvicorn", ["gateway", "-c", EXAMPLE], "pip install 'wecom-bot[gateway]'"),
    ],
)
def test_a_missing_extra_is_one_line_with_the_install_command(
    blocked: str, argv: list[str], install: str
) -> None:
    result = _run(blocked, *argv)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: wecom-bot") and lines[0].endswith(install)
    assert result.stdout == ""


def test_an_unrelated_missing_module_is_not_disguised() -> None:
    result = _run("httpx", "--help")
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr and "pip install" not in result.stderr
