"""``wecom-bot gateway recover-store``: rebuild a damaged SQLite outbox from what is readable.

A thin layer over :func:`wecom_bot.store.recover.recover_sqlite`; run it with the gateway
stopped (the gateway's log line and its 503 answers name this command when the outbox is
damaged).
"""

from __future__ import annotations

import typer

from ..errors import ConfigError
from .exit_codes import ExitCode
from .gateway import ConfigOption, gateway_app


def recover_store(config: ConfigOption) -> None:
    """Copy whatever is readable of the configured SQLite outbox into a fresh file.

    The damaged file (with its -wal and -shm) is kept beside it as NAME.damaged-TIME. Stop the
    gateway first (refused while one holds the file).
    """
    import sqlite3

    from ..gateway.config import load_config
    from ..store.filelock import StoreInUseError, StoreLock
    from ..store.recover import recover_sqlite

    try:
        store = load_config(config).store
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    if not store.startswith("sqlite:///") or store.startswith("sqlite:///:memory:"):
        typer.echo("error: recover-store works on a sqlite:/// file store only", err=True)
        raise typer.Exit(ExitCode.USAGE)
    path = store[len("sqlite:///") :].partition("?")[0]
    try:
        # A running gateway would go on writing into the file moved aside as damaged.
        lock = StoreLock(path)
    except StoreInUseError as exc:
        typer.echo(f"error: {exc}; stop the gateway first, then recover", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.FAILURE) from None
    try:
        report = recover_sqlite(path)
    except (OSError, sqlite3.DatabaseError) as exc:
        typer.echo(f"error: cannot recover {path}: {exc}", err=True)
        raise typer.Exit(ExitCode.FAILURE) from None
    finally:
        lock.release()
    for table, rows in report.copied.items():
        lost = report.unreadable.get(table)
        typer.echo(
            f"  {table}: {rows} row(s) copied" + (f"; lost {', '.join(lost)}" if lost else "")
        )
    typer.echo(f"recovered {report.path}; the damaged file is kept as {report.damaged_copy}")


def register(app: typer.Typer) -> None:
    """Add ``recover-store`` to the ``gateway`` command group."""
    gateway_app.command("recover-store")(recover_store)
