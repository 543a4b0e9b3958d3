"""The one place where an exception becomes an exit code (see :class:`ExitCode`).

::

    usage errors (Typer), CliUsageError, ConfigError,
    MessageValidationError (MediaValidationError)   -> 2  USAGE         nothing was sent
    RateLimitedError (45009), RateLimitWaitExceeded -> 4  RATE_LIMITED  still limited after retries
    WeComAPIError (any other errcode)               -> 3  API_REJECTED  errcode shown
    HTTPStatusError, TransportError, DeliveryError  -> 5  NETWORK       no usable answer
    Ctrl-C (KeyboardInterrupt, click's Abort)       -> 130 INTERRUPTED
    ListenError                                     -> 6  CANNOT_LISTEN the port is taken
    CannotRunError                                  -> 1  FAILURE       cannot run here
    anything else                                   -> 1  FAILURE       a bug: rerun with --debug
"""

from __future__ import annotations

import typer

from .. import limits
from ..errors import (
    ConfigError,
    DeliveryError,
    MessageValidationError,
    RateLimitWaitExceeded,
    WeComAPIError,
    WeComBotError,
)
from .exit_codes import ExitCode

__all__ = ["EXIT_CODES_HELP", "CannotRunError", "CliUsageError", "ListenError", "exit_code_for"]


class CliUsageError(WeComBotError):
    """The command line asks for something that cannot be done (exit code 2)."""


class CannotRunError(WeComBotError):
    """The command is right but cannot run here (exit code 1)."""


class ListenError(CannotRunError):
    """A server command cannot listen: the port is taken or the address unusable (exit 6)."""


EXIT_CODES_HELP = (
    "Exit codes: 0 sent · 2 usage or validation error, nothing sent · "
    "3 rejected by the API (errcode shown) · 4 still rate-limited (45009) after the retries · "
    "5 network error (no answer, HTTP error status) · 6 a server cannot listen (port taken) · "
    "1 unexpected failure (rerun with --debug) · 130 interrupted."
)
"""The exit codes in one paragraph, for ``--help`` epilogs."""


def exit_code_for(error: BaseException) -> ExitCode:
    """Map an exception raised while running a command to the process exit code.

    Args:
        error: what the command raised.

    Returns:
        The exit code documented for that kind of failure.
    """
    if isinstance(error, CliUsageError | ConfigError | MessageValidationError):
        return ExitCode.USAGE
    if isinstance(error, KeyboardInterrupt | typer.Abort):
        return ExitCode.INTERRUPTED
    if isinstance(error, typer.TyperException):
        return ExitCode.USAGE if error.exit_code == ExitCode.USAGE else ExitCode.FAILURE
    if isinstance(error, RateLimitWaitExceeded):
        return ExitCode.RATE_LIMITED
    if isinstance(error, WeComAPIError):
        if error.errcode == limits.ERRCODE_RATE_LIMITED:
            return ExitCode.RATE_LIMITED
        return ExitCode.API_REJECTED
    if isinstance(error, DeliveryError):
        return ExitCode.NETWORK
    if isinstance(error, ListenError):
        return ExitCode.CANNOT_LISTEN
    return ExitCode.FAILURE
