"""Build an outbox from the ``store`` setting (a URL)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .base import Clock, Outbox, StoreOpenError

ACCEPTED_FORMS = (
    "sqlite:///./relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:, "
    "memory://, redis://host:port/db"
)


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def open_store(url: str, *, clock: Clock = time.time, exclusive: bool = False) -> Outbox:
    """Open the outbox named by ``url`` (the ``store`` setting).

    Forms:
        ``sqlite:///./wecom-bot.db`` (relative path), ``sqlite:////var/lib/wecom-bot.db``
        (absolute path), ``sqlite:///:memory:``, with optional query parameters
        ``synchronous=NORMAL|FULL`` and ``busy_timeout=<seconds>``; ``memory://``;
        ``redis://[:password@]host:port/db`` (also ``rediss://``), with optional
        ``prefix=<key prefix>``.

    A SQLite file is opened and written right away, so a bad path fails here. A Redis store
    connects lazily: ``await store.ping()`` at start to check it.

    Args:
        url: the setting's value.
        clock: the time source for calls made without ``now``.
        exclusive: for a SQLite file, hold its lock file for as long as the store is open, so
            that a second gateway on the file refuses to start (the gateway's own store; the
            store commands open it beside a running gateway). Other stores ignore it.

    Returns:
        The store; close it with ``await store.close()``.

    Raises:
        StoreOpenError: (a :class:`~wecom_bot.errors.ConfigError`) the URL is malformed, names
            an unknown scheme, or the database cannot be opened and written.
    """
    if not isinstance(url, str) or "://" not in url:
        raise StoreOpenError(
            f"store: {_mask_password(str(url))!r} is not a store URL; accepted forms: "
            f"{ACCEPTED_FORMS}"
        )
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "memory":
        if rest.strip("/"):
            raise StoreOpenError(
                f"store: memory:// takes no path; accepted forms: {ACCEPTED_FORMS}"
            )
        from .memory import MemoryOutbox

        return MemoryOutbox(clock=clock)
    if scheme == "sqlite":
        return _open_sqlite(url, rest, clock, exclusive)
    if scheme in ("redis", "rediss"):
        try:
            from .redis import RedisOutbox
        except ImportError as exc:  # redis-py is an optional extra
            raise StoreOpenError(
                "store: a redis:// store needs the redis package; install wecom-bot[redis]"
            ) from exc
        return RedisOutbox.from_url(url, clock=clock)
    raise StoreOpenError(
        f"store: unknown scheme {scheme + '://'!r} in {_mask_password(url)!r}; accepted forms: "
        f"{ACCEPTED_FORMS}"
    )


def _open_sqlite(url: str, rest: str, clock: Clock, exclusive: bool) -> Outbox:
    from .sqlite import SQLiteOutbox

    path, _, query = rest.partition("?")
    if not path.startswith("/") or path == "/":
        raise StoreOpenError(
            f"store: {url!r} has no database path; write sqlite:///./file.db (three slashes, "
            "then the path) or sqlite:///:memory:"
        )
    path = path[1:]
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "synchronous":
            if value.upper() not in ("NORMAL", "FULL"):
                raise StoreOpenError(f"store: synchronous must be NORMAL or FULL, not {value!r}")
            options["synchronous"] = value.upper()
        elif name == "busy_timeout":
            try:
                options["busy_timeout"] = float(value)
            except ValueError:
                raise StoreOpenError(
                    f"store: busy_timeout must be a number of seconds, not {value!r}"
                ) from None
            if options["busy_timeout"] < 0:
                raise StoreOpenError("store: busy_timeout must not be negative")
        else:
            raise StoreOpenError(
                f"store: unknown SQLite option {name!r} (known: synchronous, busy_timeout)"
            )
    return SQLiteOutbox(path, clock=clock, exclusive=exclusive, **options)
