"""``wecom-bot mcp``: serve the MCP tools to an AI assistant over stdio or streamable HTTP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .listening import open_listener
from .output import fail_now

_HELP = (
    "Serve the Model Context Protocol so AI assistants can post to WeCom groups.\n\n"
    "Tools: send_text, send_markdown, send_markdown_v2, send_image, send_news, send_file, "
    "send_voice, send_template_card, preview_message (a dry run) and list_bots (masked keys "
    "only). Messages are checked against WeCom's byte limits and kept under the per-robot "
    "rate limit; the webhook key never appears in a tool result, an error or a log line.\n\n"
    "Bots: WECOM_BOT_KEY (or WECOM_BOT_WEBHOOK) and WECOM_BOT_BASE_URL give one bot named "
    "'default'; every profile of the profile file (--config) is a bot under its own name.\n\n"
    "Example, in Claude Desktop's claude_desktop_config.json:\n\n"
    '{"mcpServers": {"wecom": {"command": "wecom-bot", "args": ["mcp"], '
    '"env": {"WECOM_BOT_KEY": "..."}}}}\n\n'
    "Example, streamable HTTP on this machine:  wecom-bot mcp --http --port 8765"
)


def register(app: typer.Typer) -> None:
    """Add the ``mcp`` command to the ``wecom-bot`` app."""
    app.command("mcp", help=_HELP)(mcp)


def mcp(
    ctx: typer.Context,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on with --http.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on with --http; 0 picks a free one.")
    ] = 8765,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Profile file with several named bots (default: WECOM_BOT_CONFIG or "
            "~/.config/wecom-bot/profiles.yaml if it exists).",
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            help="Messages per robot and window, e.g. 20/60s (the default).",
            envvar="WECOM_BOT_RATE",
            show_envvar=True,
        ),
    ] = None,
    max_wait: Annotated[
        float | None,
        typer.Option(
            "--max-wait",
            help="Seconds a call waits for a free slot before answering 'rate limited' "
            "(default 10).",
            envvar="WECOM_BOT_MAX_WAIT",
            show_envvar=True,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Log level on stderr (keys are masked).")
    ] = "INFO",
    allow_dir: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-dir",
            help="A directory whose files send_image, send_file and send_voice may read "
            "(repeat it; also WECOM_BOT_MCP_ALLOW_DIRS, ':'-separated). None by default: "
            "whatever a tool reads is posted into a group.",
        ),
    ] = None,
) -> None:
    """Run the MCP server until the client disconnects (stdio) or until interrupted (HTTP)."""
    import anyio

    from ..mcp import BotRegistry, build_server, run_http, run_stdio
    from ..mcp.files import MediaFiles

    try:
        registry = BotRegistry.from_environment(config_path=config, rate=rate, max_wait=max_wait)
        files = MediaFiles.from_environment(allow_dir or ())
    except ConfigError as exc:
        raise fail_now(ctx, exc) from None
    server = build_server(registry, log_level=log_level, files=files)
    if not http:
        anyio.run(run_stdio, server, registry)
        return

    sock = open_listener(ctx, host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    # stderr, like every other line of this command: stdout may be a protocol stream.
    typer.echo(f"wecom-bot mcp: streamable HTTP at http://{shown}:{bound_port}/mcp", err=True)
    sys.stderr.flush()
    try:
        anyio.run(run_http, server, registry, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
