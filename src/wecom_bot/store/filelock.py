"""One gateway per SQLite outbox: an advisory lock on a file beside the database.

Two gateways on one SQLite file each believe they own the key's 20 messages a minute and its
timers, so together they exceed the limit (45009) and send some messages twice. SQLite itself
would let them share the file, so the gateway takes ``NAME.lock`` beside it with ``flock``
(exclusive, non-blocking) for as long as it runs. The operating system drops the lock when the
process ends however it ends (SIGKILL, OOM, power loss of a container), so a crash never leaves
a stale lock that blocks the restart; the file itself stays and is harmless. The holder writes
its pid into the file, for the message the next one shows.

Only the gateway takes the lock: the store commands (``gateway store ...``) and tests open the
file beside a running gateway on purpose. Several instances belong on Redis.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from .base import StoreOpenError

__all__ = ["StoreInUseError", "StoreLock"]


class StoreInUseError(StoreOpenError):
    """Another running gateway holds the SQLite outbox (its lock file is locked)."""


class StoreLock:
    """The lock of one SQLite outbox file, held from construction until :meth:`release`.

    Args:
        database: the SQLite file the lock guards (the lock is ``database + ".lock"``).

    Raises:
        StoreInUseError: another process holds it; the message names the file, the holder's
            pid when known, and the ways out.
        StoreOpenError: the lock file cannot be created (a read-only directory).
    """

    _fd: int | None = None

    def __init__(self, database: str) -> None:
        self.database = database
        self.path = database + ".lock"
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreOpenError(
                f"store: cannot create the lock file {self.path!r} beside the SQLite outbox "
                f"({exc.strerror}); make the directory writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise StoreInUseError(
                f"store: the SQLite outbox {database!r} is in use by another running gateway "
                f"({who}, lock file {self.path!r}). Two gateways on one SQLite file exceed the "
                "rate limit (45009) and send messages twice, so this one does not start: stop "
                "the other one, give each gateway its own file, or run several instances on "
                "Redis (store: redis://host:6379/0, see docs/deployment.md)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreOpenError(
                f"store: cannot lock {self.path!r} ({exc.strerror}); put the outbox on a file "
                "system that supports locks (a local disk)"
            ) from None
        self._fd: int | None = fd
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Let another gateway open the file (idempotent). The lock file stays."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock

    def __del__(self) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip() or "0") or None
    return None
