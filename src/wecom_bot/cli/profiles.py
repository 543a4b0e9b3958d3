"""``wecom-bot profiles``: list the named targets of the profile file, keys masked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..profiles import default_config_path, describe_profile, read_profile_file
from .errors import CliUsageError
from .exit_codes import ExitCode
from .output import command_scope, streams_of


def register(app: typer.Typer) -> None:
    """Add the ``profiles`` command to the ``wecom-bot`` app."""
    app.command(
        "profiles",
        help=(
            "List the profiles of the profile file: where each one's key comes from, the key "
            "masked (or why it cannot be read here), its base URL, and which is the default.\n\n"
            "Example:  wecom-bot profiles --json"
        ),
    )(profiles)


def profiles(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="PATH",
            help="Profile file. Env: WECOM_BOT_CONFIG; default ~/.config/wecom-bot/profiles.yaml.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the profiles (exit 2 when the file or a profile is invalid, or --config names no
    file; the usable profiles are listed all the same)."""
    with command_scope(ctx, json_mode=as_json) as out:
        env = streams_of(ctx).env
        path = config.expanduser() if config is not None else default_config_path(env)
        listing: dict[str, Any] = {"path": str(path), "exists": path.is_file(), "default": None}
        found: list[dict[str, Any]] = []
        broken: dict[str, str] = {}
        if path.is_file():
            loaded, listing["default"], broken = read_profile_file(path)
            found = [describe_profile(p, env, str(path)) for p in loaded.values()]
        elif config is not None:
            raise CliUsageError(f"--config {config}: no such file")
        listing["profiles"] = found
        listing["broken"] = broken
        if out.json_mode:
            out.json(listing)
            if broken:
                raise typer.Exit(ExitCode.USAGE)
            return
        if not listing["exists"]:
            out.line(f"no profile file at {path} (see docs/cli.md, 'Profiles')")
            return
        out.line(f"{path}: {len(found) + len(broken)} profile(s)")
        for item in found:
            marker = "*" if item["name"] == listing["default"] else " "
            state = item["key"] if item["key"] else f"not readable here: {item['problem']}"
            base = f" · {item['base_url']}" if item["base_url"] else ""
            out.line(f"{marker} {item['name']} · {item['source']} · {state}{base}")
        for message in broken.values():
            out.line(f"! {message}")
        if listing["default"]:
            out.line("(* the default profile)")
        if broken:
            out.line(f"(! {len(broken)} broken profile(s): only a command that uses one fails)")
            raise typer.Exit(ExitCode.USAGE)
