"""The ``wecom-bot`` console script: the command line, or one line naming the extra to install.

A plain ``pip install wecom-bot`` gives the SDK only; the command line and its servers come with
extras. This module imports nothing optional itself, so when a part is missing the user reads
which ``pip install`` to run (exit code 2) instead of a traceback: one that works as written,
from a checkout as from a wheel (:func:`install_command`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .exit_codes import ExitCode

__all__ = ["checkout_root", "extras_for", "install_command", "main", "missing_extra_message"]

_SERVER_COMMANDS = ("gateway", "emulator")

_EXTRA_OF_MODULE = {
    "typer": "cli",
    "click": "cli",
    "rich": "cli",
    "yaml": "cli",
    "jinja2": "cli",
    "PIL": "image",
    "fastapi": "gateway",
    "starlette": "gateway",
    "uvicorn": "gateway",
    "multipart": "gateway",
    "python_multipart": "gateway",
    "prometheus_client": "gateway",
    "mcp": "mcp",
    "redis": "redis",
}
"""Top-level module -> the extra of ``pyproject.toml`` that installs it."""


def _command(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def extras_for(module: str, argv: Sequence[str]) -> list[str] | None:
    """The extras that give ``module`` to the command ``argv`` runs, or None if none does.

    Args:
        module: the name of the module that could not be imported.
        argv: the command's arguments (after the program name).
    """
    extra = _EXTRA_OF_MODULE.get(module.split(".")[0])
    if extra is None:
        return None
    command = _command(argv)
    if command in _SERVER_COMMANDS:
        # Each server extra brings the command line and the web stack with it.
        return [command] if extra in ("cli", "gateway") else sorted({extra, command})
    if command == "mcp":
        return sorted({extra, "mcp"})
    return [extra]


def checkout_root() -> Path | None:
    """The source checkout this package runs from (``pip install -e .``, ``PYTHONPATH=src``),
    or None when it runs from an installed wheel."""
    root = Path(__file__).resolve().parents[3]
    project = root / "pyproject.toml"
    try:
        if (root / "src" / "wecom_bot").is_dir() and 'name = "wecom-bot"' in project.read_text(
            "utf-8"
        ):
            return root
    except OSError:
        pass
    return None


def install_command(extras: Sequence[str], root: Path | None) -> str:
    """The ``pip install`` that adds ``extras`` here and works as written today.

    From a checkout it names the checkout (wecom-bot is not on PyPI yet); installed from a
    wheel, pip keeps the installed wecom-bot and fetches only the extras' dependencies.

    Args:
        extras: extras of ``pyproject.toml`` (``gateway``, ``cli`` ...).
        root: the checkout, if it runs from one (:func:`checkout_root`).
    """
    wanted = ",".join(extras)
    if root is not None:
        return f"pip install -e '{root}[{wanted}]'"
    return f"pip install 'wecom-bot[{wanted}]'"


def missing_extra_message(error: ModuleNotFoundError, argv: Sequence[str]) -> str | None:
    """One line saying which ``pip install`` gives the missing module, or None if none does."""
    extras = extras_for(error.name or "", argv)
    if extras is None:
        return None
    command = " ".join(["wecom-bot", *([c] if (c := _command(argv)) else [])])
    return (
        f"error: {command} needs the optional dependency {error.name!r}, which is not "
        f"installed: {install_command(extras, checkout_root())}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (console-script entry point)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        from .output import run

        status = run(arguments, stdin=sys.stdin)
    except ModuleNotFoundError as error:
        message = missing_extra_message(error, arguments)
        if message is None:
            raise
        print(message, file=sys.stderr)
        status = int(ExitCode.USAGE)
    sys.exit(status)
