"""Building and running the MCP server: the tools over a :class:`BotRegistry`.

``wecom-bot mcp`` calls :func:`run_stdio` or :func:`run_http`; tests and embedders call
:func:`build_server` and connect to it however they like.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from mcp.server.mcpserver import MCPServer

from .. import __version__, limits
from ..masking import install_log_redaction, redact
from .bots import BotRegistry
from .files import MediaFiles
from .tools import WeComTools

__all__ = ["INSTRUCTIONS", "SERVER_NAME", "build_server", "run_http", "run_stdio"]

SERVER_NAME = "wecom-bot"

INSTRUCTIONS = (
    "Post messages to WeCom (企业微信) group chats through group robots. list_bots shows "
    "the robots you may use (pass bot=<name> to choose one; the default is used otherwise). "
    "Every size limit counts UTF-8 bytes, not characters: text "
    f"{limits.TEXT_CONTENT_MAX_BYTES}, markdown and markdown_v2 "
    f"{limits.MARKDOWN_CONTENT_MAX_BYTES} bytes; split=true sends longer content as several "
    "messages. Legacy markdown (send_markdown) has colours and <@userid> mentions but no "
    "tables or lists; markdown_v2 has tables, lists and code blocks but no colours or "
    "mentions. Each robot may send a limited number of messages per minute: when a tool "
    "answers 'rate limited, retry after N s', wait that long before sending again. "
    "preview_message checks a payload and shows its exact JSON without sending anything."
)


class _SecretFilter(logging.Filter):
    """Masks the server's keys wherever they appear in a log record (not only after key=)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        safe = redact(text, *self.secrets)
        if safe != text:
            record.msg, record.args = safe, None
        if record.exc_info:
            # Handlers format exc_info themselves; hand them the traceback already redacted.
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info), *self.secrets)
            record.exc_info = None
        return True


_FORMATTER = logging.Formatter()


def build_server(
    registry: BotRegistry,
    *,
    log_level: str = "INFO",
    files: MediaFiles | None = None,
) -> MCPServer[Any]:
    """Build the MCP server with every tool.

    Args:
        registry: the bots the tools may post with.
        log_level: the level of the server's log (on stderr; keys are masked).
        files: the directories send_image, send_file and send_voice may read (none when
            omitted: those tools then take base64 only).

    Returns:
        The server, ready for ``run_stdio_async()`` or ``streamable_http_app()``.
    """
    tools = WeComTools(registry, files)
    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "INFO"
    server: MCPServer[Any] = MCPServer(
        name=SERVER_NAME,
        title="WeCom group robots",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=tools.tools(),
        log_level=level,  # type: ignore[arg-type]
    )
    install_log_redaction()
    secret_filter = _SecretFilter(registry.secrets())
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)
    return server


async def run_stdio(server: MCPServer[Any], registry: BotRegistry) -> None:
    """Serve MCP over stdin/stdout until the client closes the stream."""
    try:
        await server.run_stdio_async()
    finally:
        await registry.aclose()


async def run_http(server: MCPServer[Any], registry: BotRegistry, sock: socket.socket) -> None:
    """Serve MCP over streamable HTTP (path ``/mcp``) on an already bound socket.

    Binding first lets ``--port 0`` report the port it got before serving.
    """
    import uvicorn

    host = sock.getsockname()[0]
    app = server.streamable_http_app(host=str(host))
    # access_log off: request lines are noise on an agent's stderr.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        await registry.aclose()
