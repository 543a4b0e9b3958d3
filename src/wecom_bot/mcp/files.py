"""Which files the MCP media tools may read: regular files under directories the operator
allowed, never more than the message type can carry.

An agent names a path; whatever the tool reads is posted into a group. So a path is read
only when, with every symlink resolved, it lies under a directory given with ``--allow-dir``
or ``WECOM_BOT_MCP_ALLOW_DIRS`` (none by default), outside ``/proc``, ``/dev`` and ``/sys``,
and names a regular file whose size (by ``fstat``, before reading) is within the limit. The
file is opened without following a symlink at its last step, so one swapped in after the
check is refused too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError

__all__ = ["ENV_ALLOW_DIRS", "FORBIDDEN_ROOTS", "FileRefused", "MediaFiles"]

ENV_ALLOW_DIRS = "WECOM_BOT_MCP_ALLOW_DIRS"
"""Directories the media tools may read from, separated by ``os.pathsep`` (``:``)."""

FORBIDDEN_ROOTS = (Path("/proc"), Path("/dev"), Path("/sys"))
"""Never read under these, whatever is allowed: they hold the process's environment (every
key), devices that never end, and kernel state."""

_HOW = (
    f"start the server with --allow-dir DIR (or set {ENV_ALLOW_DIRS}=DIR1{os.pathsep}DIR2) "
    "and put the file there"
)


class FileRefused(Exception):
    """A path the media tools will not read; the message says why and how to allow it."""


class MediaFiles:
    """Reads the files an agent names, within the allowed directories.

    Args:
        allowed: the directories (resolved now; a missing one is a configuration error).
    """

    def __init__(self, allowed: Iterable[str | Path] = ()) -> None:
        dirs: list[Path] = []
        for entry in allowed:
            path = Path(entry).expanduser()
            if not path.is_dir():
                raise ConfigError(f"--allow-dir / {ENV_ALLOW_DIRS}: {entry} is not a directory")
            resolved = path.resolve()
            if _under_any(resolved, FORBIDDEN_ROOTS) or resolved == Path("/"):
                raise ConfigError(
                    f"--allow-dir / {ENV_ALLOW_DIRS}: {entry} may not be allowed "
                    "(it is, or holds, /proc, /dev or /sys)"
                )
            dirs.append(resolved)
        self.allowed: tuple[Path, ...] = tuple(dict.fromkeys(dirs))

    @classmethod
    def from_environment(
        cls, options: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> MediaFiles:
        """The directories of ``--allow-dir`` options and of ``WECOM_BOT_MCP_ALLOW_DIRS``.

        Raises:
            ConfigError: one of them is not a directory, or is a system tree.
        """
        env = os.environ if env is None else env
        listed = [d for d in env.get(ENV_ALLOW_DIRS, "").split(os.pathsep) if d.strip()]
        return cls([*options, *listed])

    def read(self, path: str, limit: int) -> bytes:
        """The bytes of the regular file ``path``, at most ``limit`` of them.

        Raises:
            FileRefused: the path is outside the allowed directories or in a system tree,
                is not a regular file, is larger than ``limit``, or cannot be read.
        """
        if not self.allowed:
            raise FileRefused(f"path: reading files is not allowed on this server; {_HOW}")
        try:
            target = Path(path).expanduser().resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise FileRefused(f"path: cannot resolve {path}: {exc}") from None
        if _under_any(target, FORBIDDEN_ROOTS):
            raise FileRefused(f"path: {path} is under /proc, /dev or /sys, which are never read")
        if not _under_any(target, self.allowed):
            shown = ", ".join(str(d) for d in self.allowed)
            raise FileRefused(f"path: {path} is not under an allowed directory ({shown}); {_HOW}")
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise FileRefused(f"path: cannot read {path}: {exc.strerror or exc}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FileRefused(f"path: {path} is not a regular file")
            if info.st_size > limit:
                raise FileRefused(
                    f"path: {path} is {info.st_size} bytes, over the limit of {limit} bytes"
                )
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(limit + 1)
        finally:
            os.close(fd)
        if len(data) > limit:  # it grew while being read
            raise FileRefused(f"path: {path} is over the limit of {limit} bytes")
        return data


def _under_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)
