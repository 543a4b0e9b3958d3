"""The listening socket of the server commands (gateway, emulator, MCP over HTTP)."""

from __future__ import annotations

import socket

import typer


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` here, so that port 0 gives a known port before serving.

    Raises:
        OSError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # asyncio turns TCP_NODELAY on only for sockets created with IPPROTO_TCP; without it every
    # answer on a kept-alive connection waits ~40 ms for the delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def open_listener(ctx: typer.Context, host: str, port: int) -> socket.socket:
    """:func:`listen`, for a command: a bad port or a taken address ends it with one line.

    Raises:
        typer.Exit: exit code 2 for a port outside 0-65535, 6 (``CANNOT_LISTEN``) when it
            cannot listen.
    """
    from .errors import CliUsageError, ListenError
    from .output import fail_now

    if not 0 <= port <= 65535:
        raise fail_now(ctx, CliUsageError(f"--port must be 0-65535, got {port}"))
    try:
        return listen(host, port)
    except OSError as exc:
        raise fail_now(ctx, ListenError(f"cannot listen on {host}:{port}: {exc}")) from None
