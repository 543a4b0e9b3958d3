"""``scripts/provision`` (run by ``make test``): installs what the tests start, or says how.

The system commands it calls (``dpkg-query``, ``id``, ``apt-get``) are replaced by small
scripts on ``PATH`` that record what they were asked, so nothing is installed for real.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "provision"


def _tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n", "utf-8")
    path.chmod(0o755)


def _run(
    tmp_path: Path, *, installed: set[str], uid: int, apt: bool
) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    cases = " ".join(sorted(installed)) or "none"
    _tool(
        bin_dir,
        "dpkg-query",
        f'for p in {cases}; do [ "$p" = "$3" ] && printf "install ok installed" && exit 0; done\n'
        "exit 1",
    )
    _tool(bin_dir, "id", f"echo {uid}")
    if apt:
        _tool(bin_dir, "apt-get", f'echo "$@" >> {log}')
    result = subprocess.run(
        ["/bin/sh", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(bin_dir)},  # only the stand-ins: the script uses shell builtins
    )
    return result, log


ALL = {
    "redis-server",
    "prometheus-alertmanager",
    "prometheus",
    "chromium",
    "fonts-wqy-microhei",
    "fonts-noto-color-emoji",
}


def test_nothing_happens_when_everything_is_present(tmp_path: Path) -> None:
    result, log = _run(tmp_path, installed=ALL, uid=0, apt=True)
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""
    assert not log.exists()


def test_root_with_apt_installs_only_what_is_missing(tmp_path: Path) -> None:
    result, log = _run(tmp_path, installed=ALL - {"chromium", "fonts-noto-color-emoji"},
                       uid=0, apt=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    calls = log.read_text("utf-8").splitlines()
    assert calls[-1] == "install -y -qq chromium fonts-noto-color-emoji"


@pytest.mark.parametrize(("uid", "apt"), [(1000, True), (0, False)])
def test_otherwise_it_stops_with_the_one_command_to_run(
    tmp_path: Path, uid: int, apt: bool
) -> None:
    result, log = _run(tmp_path, installed=ALL - {"redis-server"}, uid=uid, apt=apt)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(": sudo apt-get install -y redis-server")
    assert not log.exists()


def test_make_test_provisions_first_and_ci_only_calls_make_test() -> None:
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "test", "VENV=/nonexistent-venv"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
    ).stdout.splitlines()  # fmt: skip
    assert plan[0] == "scripts/provision"
    ci = [line for line in (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
          if line and not line.startswith("#")]  # fmt: skip
    assert ci[-1] == "make test" and not any("apt-get" in line for line in ci)


def _run_elsewhere(
    tmp_path: Path, tools: dict[str, str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The script on a machine without dpkg-query or apt-get: only ``tools`` on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _tool(bin_dir, "id", "echo 0")
    for name, body in tools.items():
        _tool(bin_dir, name, body)
    return subprocess.run(
        ["/bin/sh", str(SCRIPT)], capture_output=True, text=True, timeout=30,
        env={"PATH": str(bin_dir), **(env or {})},
    )  # fmt: skip


FONTS = 'case "$1" in :lang=zh) echo "Noto Sans CJK SC" ;; *) echo "Noto Color Emoji" ;; esac'


def test_without_apt_it_names_each_missing_program_its_version_and_how_to_point(
    tmp_path: Path,
) -> None:
    result = _run_elsewhere(tmp_path, {})
    assert result.returncode == 1
    message = result.stderr
    assert "apt-get install" not in message and "not a Debian system" in message
    assert "redis-server >= 7" in message
    assert "Alertmanager >= 0.25" in message and "WECOM_TEST_ALERTMANAGER=" in message
    assert "Prometheus 2.x" in message and "WECOM_TEST_PROMETHEUS=" in message
    assert "Chromium" in message and "WECOM_TEST_CHROMIUM=" in message
    assert "CJK and emoji fonts" in message


def test_without_apt_it_lists_only_what_is_missing(tmp_path: Path) -> None:
    result = _run_elsewhere(
        tmp_path,
        {"redis-server": "true", "alertmanager": "true", "prometheus": "true", "fc-list": FONTS},
    )
    assert result.returncode == 1
    needs = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(needs) == 1 and needs[0].startswith("  - Chromium")


def test_without_apt_it_is_silent_when_all_are_there_chromium_given_by_variable(
    tmp_path: Path,
) -> None:
    chrome = tmp_path / "opt-chrome"
    chrome.write_text("#!/bin/sh\n", "utf-8")
    chrome.chmod(0o755)
    tools = {"redis-server": "true", "prometheus-alertmanager": "true", "fc-list": FONTS}
    env = {"WECOM_TEST_CHROMIUM": str(chrome), "WECOM_TEST_PROMETHEUS": str(chrome)}
    result = _run_elsewhere(tmp_path, tools, env=env)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
