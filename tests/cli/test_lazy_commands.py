"""A run of one command imports only that command's modules (issue 27, CLI start-up)."""

from __future__ import annotations

import io
import subprocess
import sys

from wecom_bot.cli.main import COMMAND_MODULES, MODULES_OF_COMMAND, build_command, modules_for
from wecom_bot.cli.output import run

_PROBE = """
import runpy, sys
sys.argv = ["wecom-bot", *{argv!r}]
try:
    runpy.run_module("wecom_bot", run_name="__main__")
except SystemExit:
    pass
names = [m for m in sys.modules if m.startswith(("wecom_bot", "fastapi", "jinja2", "uvicorn"))]
print("MODULES", " ".join(sorted(names)), file=sys.stderr)
"""


def modules_after(*argv: str) -> set[str]:
    """The wecom_bot (and web stack) modules a fresh ``wecom-bot argv`` process imported."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=list(argv))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES"))
    return set(line.split()[1:])


def test_send_text_dry_run_imports_no_other_command_group() -> None:
    loaded = modules_after("send", "text", "--dry-run", "hello")
    assert "wecom_bot.cli.send" in loaded
    others = {m for m in COMMAND_MODULES if m != "wecom_bot.cli.send"}
    assert loaded.isdisjoint(others), loaded & others
    assert loaded.isdisjoint({"fastapi", "jinja2", "uvicorn"})


def test_global_flags_before_the_command_are_skipped() -> None:
    assert modules_for(["--debug", "gateway", "check"]) == MODULES_OF_COMMAND["gateway"]
    assert modules_for(["upload", "f.png"]) == ("wecom_bot.cli.send",)


def test_help_completion_and_unknown_commands_get_every_command() -> None:
    for argv in ([], ["--help"], ["-h"], ["--version"], ["sned", "text"]):
        assert modules_for(argv) == COMMAND_MODULES


def test_an_unknown_command_still_suggests_the_right_one() -> None:
    err = io.StringIO()
    code = run(["sned", "text", "hi"], stdout=io.StringIO(), stderr=err)
    assert code != 0
    assert "send" in err.getvalue()


def test_help_lists_commands_in_one_order_after_any_earlier_run() -> None:
    # An in-process run of one command first registers its module alone; the full app built
    # afterwards must still list the commands in the order of COMMAND_MODULES.
    run(["profiles"], stdout=io.StringIO(), stderr=io.StringIO(), env={})
    run(["send", "text", "--dry-run", "x"], stdout=io.StringIO(), stderr=io.StringIO(), env={})
    # Typer lists plain commands before groups, each in registration order.
    order = ["upload", "render", "emulator", "mcp", "profiles", "send", "gateway"]
    assert list(build_command().commands) == order
    out = io.StringIO()
    assert run(["--help"], stdout=out, stderr=io.StringIO()) == 0
    rows = [line.split() for line in out.getvalue().splitlines()]
    listed = [row[1] for row in rows if len(row) > 1 and row[0] == "│" and row[1] in order]
    assert listed == order
