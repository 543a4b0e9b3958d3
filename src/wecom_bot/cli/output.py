"""What the command line writes, and where: injectable streams, key-safe output, one-line errors.

Commands never touch ``sys.stdout`` directly. They get a :class:`Streams` (standard input,
output, error and the environment) from the click context — the real ones, or those a test
passed to :func:`run` — and write through an :class:`Output`, which masks every secret it was
told about (and every ``key=...`` in a URL) in everything it prints.

Errors are one line on standard error (``error: ...``); with ``--debug`` the traceback comes
first (keys masked); with ``--json`` standard output also gets a JSON document describing the
failure. :func:`command_scope` turns an exception into the exit code chosen in
:mod:`wecom_bot.cli.errors`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import typer

from ..errors import DeliveryError, MessageValidationError, WeComAPIError, WeComBotError
from ..masking import redact
from .errors import exit_code_for
from .exit_codes import ExitCode

__all__ = [
    "PROGRESS_MIN_BYTES",
    "Output",
    "ProgressReporter",
    "Streams",
    "command_scope",
    "debug_enabled",
    "fail_now",
    "run",
    "streams_of",
]

PROGRESS_MIN_BYTES = 1024 * 1024
"""Uploads larger than this show a progress bar (on a terminal, without ``--json``)."""

DEBUG_META = "wecom_bot.debug"
"""The click ``ctx.meta`` entry the global ``--debug`` option sets."""


@dataclass
class Streams:
    """The process's standard streams and environment, replaceable in tests.

    Attributes:
        stdin: standard input (text).
        stdout: standard output (text).
        stderr: standard error (text).
        env: the environment variables.
    """

    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def system(cls) -> Streams:
        """The real streams and ``os.environ``, read at call time (test runners swap them)."""
        return cls(sys.stdin, sys.stdout, sys.stderr, os.environ)


def streams_of(ctx: typer.Context) -> Streams:
    """The streams of the running command: those given to :func:`run`, else the real ones."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Streams) else Streams.system()


def debug_enabled(ctx: typer.Context) -> bool:
    """Whether the global ``--debug`` option was given."""
    return bool(ctx.meta.get(DEBUG_META, False))


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressReporter(Protocol):
    """Receives the progress of one upload (restarted on each retry)."""

    def reset(self) -> None:
        """An attempt starts from byte 0."""

    def advance(self, count: int) -> None:
        """``count`` more bytes were handed to the network."""


class _RichReporter:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def reset(self) -> None:
        self._progress.reset(self._task)

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)


class _NoticeHandler(logging.Handler):
    """Shows log records of the library (retries, and HTTP with --debug) as notices."""

    def __init__(self, output: Output) -> None:
        super().__init__(logging.DEBUG)
        self._output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._output.notice(record.getMessage())
        except Exception:  # a broken stream must not turn a log line into a crash
            self.handleError(record)


class Output:
    """Writes results, notices and errors with every known secret masked.

    Args:
        streams: where to write.
        json_mode: results and errors as JSON documents on standard output.
        debug: show tracebacks (keys masked) and HTTP logs.
    """

    def __init__(self, streams: Streams, *, json_mode: bool = False, debug: bool = False) -> None:
        self.streams = streams
        self.json_mode = json_mode
        self.debug = debug
        self._secrets: list[str] = []

    def protect(self, *secrets: str) -> None:
        """Mask these strings (webhook keys) in everything written from now on."""
        self._secrets.extend(s for s in secrets if s and s not in self._secrets)

    def clean(self, text: str) -> str:
        """``text`` with every protected secret and every ``key=...`` value masked."""
        return redact(text, *self._secrets)

    @property
    def stderr_is_tty(self) -> bool:
        """Whether standard error is a terminal (progress bars are drawn only then)."""
        return _isatty(self.streams.stderr)

    def line(self, text: str = "") -> None:
        """Write one line of human output on standard output."""
        self.streams.stdout.write(self.clean(text) + "\n")
        self.streams.stdout.flush()

    def notice(self, text: str) -> None:
        """Write a notice (``note: ...``) on standard error."""
        self.streams.stderr.write(self.clean(f"note: {text}") + "\n")
        self.streams.stderr.flush()

    def info(self, text: str) -> None:
        """Write a line of information on standard error (not part of the result)."""
        self.streams.stderr.write(self.clean(text) + "\n")
        self.streams.stderr.flush()

    def json(self, document: Any) -> None:
        """Write a JSON document on standard output (UTF-8 text, indented)."""
        text = json.dumps(document, ensure_ascii=False, indent=2)
        self.streams.stdout.write(self.clean(text) + "\n")
        self.streams.stdout.flush()

    def fail(self, error: BaseException) -> ExitCode:
        """Report ``error``: one line on standard error, and a JSON document with ``--json``.

        Returns:
            The exit code for it.
        """
        code = exit_code_for(error)
        if self.debug:
            trace = "".join(traceback.format_exception(error))
            self.streams.stderr.write(self.clean(trace))
        message = describe_error(error)
        if code == ExitCode.FAILURE and not isinstance(error, WeComBotError | typer.TyperException):
            message = (
                f"unexpected {type(error).__name__}: {message} "
                "(a bug: rerun with --debug and report it)"
            )
        self.streams.stderr.write(self.clean(f"error: {message}") + "\n")
        self.streams.stderr.flush()
        if self.json_mode:
            self.json({"ok": False, "exit_code": int(code), "error": error_document(error)})
        return code

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[ProgressReporter | None]:
        """A progress bar on standard error for a transfer of ``total`` bytes.

        Yields None (no bar) when standard error is not a terminal, with ``--json``, or for
        transfers of at most :data:`PROGRESS_MIN_BYTES`.
        """
        if self.json_mode or total <= PROGRESS_MIN_BYTES or not self.stderr_is_tty:
            yield None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=self.streams.stderr, force_terminal=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(self.clean(description), total=total)
            yield _RichReporter(bar, task)

    @contextmanager
    def library_logs(self) -> Iterator[None]:
        """Show the library's retry notices (and, with ``--debug``, HTTP logs) while active."""
        handler = _NoticeHandler(self)
        names = ["wecom_bot.client"] + (["httpx"] if self.debug else [])
        saved = []
        for name in names:
            logger = logging.getLogger(name)
            saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG if self.debug else logging.INFO)
            logger.addHandler(handler)
        try:
            yield
        finally:
            for logger, level in saved:
                logger.removeHandler(handler)
                logger.setLevel(level)


def describe_error(error: BaseException) -> str:
    """The one-line text of an error, with its notes (``part 2 of 3 ...``) appended."""
    text = str(error) or type(error).__name__
    if isinstance(error, KeyboardInterrupt | typer.Abort):
        text = "interrupted"
    elif isinstance(error, typer.TyperException):
        text = error.format_message()
        text = text[:1].lower() + text[1:]
        context = getattr(error, "ctx", None)
        if context is not None:
            text += f" (see '{context.command_path} --help')"
    if isinstance(error, DeliveryError) and error.url:
        text += f" [{error.url}]"
    notes = getattr(error, "__notes__", None)
    if notes:
        text += " (" + "; ".join(str(n) for n in notes) + ")"
    return " ".join(text.split())


def error_document(error: BaseException) -> dict[str, Any]:
    """A JSON-ready description of an error for ``--json`` output."""
    doc: dict[str, Any] = {"type": type(error).__name__, "message": describe_error(error)}
    if isinstance(error, WeComAPIError):
        doc["errcode"] = error.errcode
        doc["errmsg"] = error.errmsg
    if isinstance(error, MessageValidationError):
        doc["issues"] = [
            {
                "field": i.field,
                "rule": i.rule,
                "message": i.message,
                "limit": i.limit,
                "actual": i.actual,
            }
            for i in error.issues
        ]
    return doc


def fail_now(ctx: typer.Context, error: BaseException, *, json_mode: bool = False) -> typer.Exit:
    """Report ``error`` as every command does (one line; JSON with ``--json``).

    For commands that cannot run their body inside :func:`command_scope` (servers).

    Returns:
        The ``typer.Exit`` to raise, carrying the exit code for ``error``.
    """
    output = Output(streams_of(ctx), json_mode=json_mode, debug=debug_enabled(ctx))
    return typer.Exit(int(output.fail(error)))


@contextmanager
def command_scope(ctx: typer.Context, *, json_mode: bool = False) -> Iterator[Output]:
    """Run a command body: yields its :class:`Output` and maps any failure to an exit code.

    Exceptions become one line on standard error and ``typer.Exit(code)``; Typer's own
    exceptions (``Exit``, ``Abort``, usage errors) pass through untouched.
    """
    output = Output(streams_of(ctx), json_mode=json_mode, debug=debug_enabled(ctx))
    try:
        with output.library_logs():
            yield output
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except Exception as error:
        code = output.fail(error)
        raise typer.Exit(int(code)) from None


_COMMANDS: dict[tuple[str, ...], Any] = {}


def _command(argv: Sequence[str]) -> Any:
    from .main import build_command, modules_for

    modules = modules_for(argv)
    if modules not in _COMMANDS:
        _COMMANDS[modules] = build_command(modules)
    return _COMMANDS[modules]


def run(
    argv: Sequence[str],
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``wecom-bot`` in-process with the given arguments, streams and environment.

    Args:
        argv: the arguments after the program name.
        stdin: standard input (default: empty, not a terminal).
        stdout: standard output (default: ``sys.stdout``).
        stderr: standard error (default: ``sys.stderr``).
        env: the environment (default: ``os.environ``).

    Returns:
        The exit status (see :class:`~wecom_bot.cli.exit_codes.ExitCode`).
    """
    streams = Streams(
        stdin=stdin if stdin is not None else io.StringIO(""),
        stdout=stdout if stdout is not None else sys.stdout,
        stderr=stderr if stderr is not None else sys.stderr,
        env=dict(os.environ) if env is None else env,
    )
    command = _command(argv)
    # Typer writes help (and completion scripts) to sys.stdout itself.
    with redirect_stdout(streams.stdout), redirect_stderr(streams.stderr):
        try:
            result = command.main(
                args=list(argv), prog_name="wecom-bot", obj=streams, standalone_mode=False
            )
        except typer.Exit as exit_:
            return int(exit_.exit_code)
        except SystemExit as exit_:  # typer's completion options end the process themselves
            return exit_.code if isinstance(exit_.code, int) else int(ExitCode.FAILURE)
        except typer.TyperException as exc:
            if not exc.format_message():  # a group called bare: its help was the answer
                return int(exc.exit_code)
            # Usage errors are reported like every other error: one line, JSON with --json.
            return int(Output(streams, json_mode="--json" in argv).fail(exc))
        except (typer.Abort, KeyboardInterrupt) as exc:
            return int(Output(streams, json_mode="--json" in argv).fail(exc))
    return result if isinstance(result, int) else int(ExitCode.OK)
