"""A missing optional part is one line naming the ``pip install`` to run, exit code 2.

Each case runs the console-script entry point in a fresh interpreter in which importing the
named top-level modules fails, as it does after ``pip install wecom-bot`` without the extra.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "src/wecom_bot/gateway/examples/gateway.yaml")

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
        ("typer", ["--help"], f"pip install -e '{ROOT}[cli]'"),
        ("typer", ["send", "text", "hi"], f"pip install -e '{ROOT}[cli]'"),
        ("mcp", ["mcp"], f"pip install -e '{ROOT}[mcp]'"),
        ("typer", ["mcp"], f"pip install -e '{ROOT}[cli,mcp]'"),
        ("uvicorn", ["emulator", "--port", "0"], f"pip install -e '{ROOT}[emulator]'"),
        ("fastapi,uvicorn", ["gateway", "-c", EXAMPLE], f"pip install -e '{ROOT}[gateway]'"),
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
    result = _run("pydantic", "--help")
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr and "pip install" not in result.stderr


def test_the_hint_names_the_checkout_or_the_installed_package(tmp_path: Path) -> None:
    from wecom_bot.cli.launcher import checkout_root, install_command

    assert checkout_root() == ROOT
    assert install_command(["gateway"], ROOT) == f"pip install -e '{ROOT}[gateway]'"
    assert install_command(["cli", "mcp"], None) == "pip install 'wecom-bot[cli,mcp]'"
    # A copy of the package outside any checkout, as a wheel installs it: no checkout found.
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "src" / "wecom_bot", site / "wecom_bot")
    found = subprocess.run(
        [sys.executable, "-c", "from wecom_bot.cli.launcher import checkout_root as c; print(c())"],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(site)}, check=True,
    )  # fmt: skip
    assert found.stdout.strip() == "None"
