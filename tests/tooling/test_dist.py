"""``make dist`` builds the wheel the README installs (with pip or pipx)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_make_dist_builds_a_wheel_that_installs_and_imports(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # The test's own virtualenv stands in for .venv (make would otherwise create one).
    made = subprocess.run(
        ["make", "--no-print-directory", "dist", f"VENV={sys.prefix}", f"DIST={dist}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    wheels = sorted(dist.glob("wecom_bot-*.whl"))
    assert [w.name for w in wheels] == ["wecom_bot-0.1.0-py3-none-any.whl"]
    assert made.stdout.strip().endswith(wheels[0].name)
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("wecom_bot-0.1.0.dist-info/METADATA").decode()
        entry_points = wheel.read("wecom_bot-0.1.0.dist-info/entry_points.txt").decode()
    for needed in (
        "wecom_bot/__init__.py",
        "wecom_bot/py.typed",
        "wecom_bot/cli/launcher.py",
        "wecom_bot/gateway/examples/gateway.yaml",
        "wecom_bot/locales/en.json",  # the pages' catalogues
        "wecom_bot/locales/zh-CN.json",
    ):
        assert needed in names, needed
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
    for extra in ("cli", "gateway", "emulator", "mcp", "redis", "image", "all"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "wecom-bot = " in entry_points
    # Installed (without dependencies: they are this virtualenv's) into a directory of its
    # own, it imports from there and says it runs from no checkout.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), str(wheels[0])],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    probe = subprocess.run(
        [sys.executable, "-c", "import wecom_bot, wecom_bot.cli.launcher as l; "
         "from wecom_bot.i18n import text; "
         "print(wecom_bot.__file__, wecom_bot.__version__, l.checkout_root(), "
         "text('zh-CN', 'console.tab.history'))"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "PYTHONPATH": str(target)},
    ).stdout.split()  # fmt: skip
    assert probe[0].startswith(str(target)) and probe[1:] == ["0.1.0", "None", "历史"]
