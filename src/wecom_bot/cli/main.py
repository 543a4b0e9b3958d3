"""Entry point of the ``wecom-bot`` command: builds the Typer app from the command-group modules."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Annotated, Any

import typer
import typer.core

app = typer.Typer(
    name="wecom-bot",
    help=(
        "Push messages and alerts into WeCom (企业微信) groups through the group-robot webhook.\n\n"
        "Example:  echo 'deploy done' | wecom-bot send text --key $WECOM_BOT_KEY"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"wecom-bot {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="On failure show the traceback; log HTTP requests (keys masked)."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Push messages and alerts into WeCom (企业微信) groups through the group-robot webhook."""
    ctx.meta["wecom_bot.debug"] = debug


# Each module below defines ``register(app)``; a module that is absent is skipped so the
# command still starts when an optional part is not installed.
COMMAND_MODULES = (
    "wecom_bot.cli.send",
    "wecom_bot.cli.render",
    "wecom_bot.cli.emulator",
    "wecom_bot.cli.gateway",
    "wecom_bot.cli.gateway_store",
    "wecom_bot.cli.mcp",
    "wecom_bot.cli.profiles",
)

MODULES_OF_COMMAND = {
    "send": ("wecom_bot.cli.send",),
    "upload": ("wecom_bot.cli.send",),
    "render": ("wecom_bot.cli.render",),
    "emulator": ("wecom_bot.cli.emulator",),
    "gateway": ("wecom_bot.cli.gateway", "wecom_bot.cli.gateway_store"),
    "mcp": ("wecom_bot.cli.mcp",),
    "profiles": ("wecom_bot.cli.profiles",),
}
"""Top-level command -> the modules that register it. A run of one command imports only
these (a script calling ``wecom-bot send text`` does not pay for the gateway's imports);
help, completion and unknown commands import them all."""

_GLOBAL_FLAGS = ("--debug",)


def modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules a run with ``argv`` needs: those of its command, or all of them."""
    for arg in argv:
        if arg in _GLOBAL_FLAGS:
            continue
        return MODULES_OF_COMMAND.get(arg, COMMAND_MODULES)
    return COMMAND_MODULES


_registered: dict[str, tuple[list[Any], list[Any]]] = {}
"""Module -> the commands and groups its ``register`` added to :data:`app`."""


def build_app(modules: Sequence[str] = COMMAND_MODULES) -> typer.Typer:
    """Register the given command modules on the app (each once) and return it.

    Commands keep the order of :data:`COMMAND_MODULES` whatever order they were registered in,
    so ``--help`` reads the same after any earlier in-process run."""
    for name in modules:
        if name in _registered:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        commands, groups = len(app.registered_commands), len(app.registered_groups)
        module.register(app)
        _registered[name] = (app.registered_commands[commands:], app.registered_groups[groups:])
    order = [_registered[name] for name in COMMAND_MODULES if name in _registered]
    app.registered_commands = [info for commands, _ in order for info in commands]
    app.registered_groups = [info for _, groups in order for info in groups]
    return app


def build_command(modules: Sequence[str] = COMMAND_MODULES) -> typer.core.TyperGroup:
    """The ``wecom-bot`` click command with the given command modules, ready to run (see
    :func:`wecom_bot.cli.output.run`)."""
    command = typer.main.get_command(build_app(modules))
    _plain_flags(command, None, "wecom-bot")
    return command  # type: ignore[return-value]


def _plain_flags(command: Any, parent: typer.Context | None, name: str) -> None:
    # Typer's rich help shows a type beside every option, "<bool>" even for a flag, which
    # takes no value; an empty metavar shows nothing there.
    settings = command.context_settings if parent is None else {}
    ctx = typer.Context(command, parent=parent, info_name=name, **settings)
    for param in [*command.params, command.get_help_option(ctx)]:
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if flag and param.metavar is None:
            param.metavar = ""
    for sub_name, sub in getattr(command, "commands", {}).items():
        _plain_flags(sub, ctx, sub_name)


def main() -> None:
    """The former console-script entry point, which scripts installed before it moved still call."""
    from .launcher import main as launch

    launch()
