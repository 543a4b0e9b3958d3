"""Exit codes of the ``wecom-bot`` command, in one place (shown in ``--help`` and the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the process exit status means."""

    OK = 0
    """Sent (errcode 0), or the command did what was asked."""
    FAILURE = 1
    """An unexpected failure (a bug): rerun with --debug and report it."""
    USAGE = 2
    """Bad usage or a message that breaks a documented limit; nothing was sent."""
    API_REJECTED = 3
    """The API answered an errcode other than 0 (shown on stderr)."""
    RATE_LIMITED = 4
    """Still rate limited (45009) after the retries."""
    NETWORK = 5
    """No answer: connection refused or reset, timeout, or an HTTP error status."""
    CANNOT_LISTEN = 6
    """A server (gateway, emulator, mcp --http) cannot listen: its port is taken, or the
    address cannot be bound. Nothing was started."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C), as shells report it (128 + SIGINT)."""
