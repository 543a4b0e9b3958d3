"""Which files the MCP media tools may read: regular files under directories the operator
allowed, never more than the message type can carry, opened without a race.

An agent names a path; whatever the tool reads is posted into a group. Each allowed
directory (``--allow-dir``, ``WECOM_BOT_MCP_ALLOW_DIRS``; none by default) is opened once,
when the server starts. A path is read only when it names a regular file below one of them,
and it is opened one component at a time relative to the directory's descriptor, never
following a symbolic link and never taking a ``..`` step. No name is looked up twice, so
swapping a directory for a link between a check and the open (to ``/proc/self``, whose
``environ`` holds every key) leads nowhere. The opened descriptor is then checked itself:
its real path (``/proc/self/fd/N``) must lie under the allowed directory and outside
``/proc``, ``/dev`` and ``/sys``, and ``fstat`` must show a regular file within the size
limit, before its bytes are read from that same descriptor.
"""

from __future__ import annotations

import errno
import os
import stat
import weakref
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
_NO_LINKS = (
    "symbolic links are not followed below an allowed directory (one can be switched to lead "
    "out of it); put the file itself in the directory"
)
_FORBIDDEN = "is under /proc, /dev or /sys, which are never read"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO opens at once (and is then refused) instead of waiting for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class FileRefused(Exception):
    """A path the media tools will not read; the message says why and how to allow it."""


class MediaFiles:
    """Reads the files an agent names, within the allowed directories.

    Each directory is resolved and opened now, and read through that descriptor for the
    object's life: a directory moved or replaced afterwards is not followed (restart to
    pick up the new one). :meth:`close` releases the descriptors.

    Args:
        allowed: the directories (a missing one, or a system tree, is a configuration error).
    """

    def __init__(self, allowed: Iterable[str | Path] = ()) -> None:
        roots: dict[Path, int] = {}
        self._close = weakref.finalize(self, _close_all, roots)
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
            if resolved not in roots:
                try:
                    roots[resolved] = _open_directory(resolved)
                except OSError as exc:
                    raise ConfigError(
                        f"--allow-dir / {ENV_ALLOW_DIRS}: cannot open {entry}: "
                        f"{exc.strerror or exc}"
                    ) from None
        self._roots = roots
        self.allowed: tuple[Path, ...] = tuple(roots)

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

    def close(self) -> None:
        """Release the allowed directories' descriptors; reads are refused afterwards."""
        self._close()

    def read(self, path: str, limit: int) -> bytes:
        """The bytes of the regular file ``path``, at most ``limit`` of them.

        Raises:
            FileRefused: the path is outside the allowed directories or in a system tree,
                passes through a symbolic link or a ``..`` below an allowed directory, is
                not a regular file, is larger than ``limit``, or cannot be read.
        """
        if not self._roots:
            raise FileRefused(f"path: reading files is not allowed on this server; {_HOW}")
        if "\0" in path:
            raise FileRefused("path: a path cannot contain a NUL character")
        try:
            absolute = Path(os.getcwd(), os.path.expanduser(path))
        except OSError as exc:  # a relative path, and the working directory is gone
            raise FileRefused(f"path: cannot resolve {path}: {exc.strerror or exc}") from None
        if _under_any(Path(os.path.normpath(absolute)), FORBIDDEN_ROOTS):
            raise FileRefused(f"path: {path} {_FORBIDDEN}")
        if ".." in absolute.parts:
            raise FileRefused(
                f"path: {path} has a '..' component, which is never followed; name the file "
                "by its path inside an allowed directory"
            )
        found = self._root_of(absolute)
        if found is None:
            raise FileRefused(self._why_outside(path, absolute))
        root, rest = found
        fd = self._open_below(root, rest, path)
        try:
            return self._read_checked(fd, root, path, limit)
        finally:
            os.close(fd)

    def _root_of(self, absolute: Path) -> tuple[Path, tuple[str, ...]] | None:
        """The allowed directory ``absolute`` starts with, and the names below it."""
        by_name = [r for r in self._roots if absolute == r or absolute.is_relative_to(r)]
        if by_name:
            root = max(by_name, key=lambda r: len(r.parts))  # the innermost of nested ones
            return root, absolute.parts[len(root.parts) :]
        # A path may reach an allowed directory through a link above it (a symlinked home,
        # /tmp -> /private/tmp). Where the link leads only picks which allowed directory's
        # descriptor the rest is opened from, so resolving it here opens no window.
        for cut in range(1, len(absolute.parts) + 1):
            try:
                prefix = Path(*absolute.parts[:cut]).resolve()
            except (OSError, RuntimeError):
                return None
            if prefix in self._roots:
                return prefix, absolute.parts[cut:]
        return None

    def _why_outside(self, path: str, absolute: Path) -> str:
        """The refusal for a path under no allowed directory, naming where it leads."""
        try:
            target = absolute.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            return f"path: cannot resolve {path}: {exc}"
        if _under_any(target, FORBIDDEN_ROOTS):
            return f"path: {path} {_FORBIDDEN}"
        if _under_any(target, self._roots):
            return (
                f"path: {path} leads into an allowed directory through a symbolic link; "
                "name the file by its own path there"
            )
        shown = ", ".join(str(d) for d in self._roots)
        return f"path: {path} is not under an allowed directory ({shown}); {_HOW}"

    def _open_below(self, root: Path, names: Sequence[str], path: str) -> int:
        """A descriptor of ``names`` below ``root``, each opened from its parent's descriptor
        with no link followed."""
        names = names or (".",)  # the allowed directory itself, refused as not a file
        current = self._roots[root]
        try:
            for depth, name in enumerate(names):
                last = depth == len(names) - 1
                try:
                    opened = os.open(name, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=current)
                except OSError as exc:
                    shown = path if last else str(root.joinpath(*names[: depth + 1]))
                    raise FileRefused(_why_unopened(exc, current, name, shown, path)) from None
                if current != self._roots[root]:
                    os.close(current)
                current = opened
            return current
        except BaseException:
            if current != self._roots[root]:
                os.close(current)
            raise

    def _read_checked(self, fd: int, root: Path, path: str, limit: int) -> bytes:
        """The bytes behind ``fd`` once the descriptor itself shows it may be read."""
        try:
            where = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # no /proc here: the walk above is the whole defence
            where = None
        if where is not None:
            if _under_any(where, FORBIDDEN_ROOTS):
                raise FileRefused(f"path: {path} {_FORBIDDEN}")
            if not _under_any(where, (root,)):
                raise FileRefused(
                    f"path: {path} is no longer under the allowed directory {root} "
                    "(was the directory moved or replaced? restart the server after doing so)"
                )
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"path: {path} is not a regular file")
        if info.st_size > limit:
            raise FileRefused(
                f"path: {path} is {info.st_size} bytes, over the limit of {limit} bytes"
            )
        try:
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(limit + 1)
        except OSError as exc:
            raise FileRefused(f"path: cannot read {path}: {exc.strerror or exc}") from None
        if len(data) > limit:  # it grew while being read
            raise FileRefused(f"path: {path} is over the limit of {limit} bytes")
        return data


def _open_directory(path: Path) -> int:
    """A descriptor of the directory at the absolute, resolved ``path``, opened from ``/``
    with no link followed (a link swapped in since it was resolved fails the open)."""
    current = os.open("/", _DIR_FLAGS)
    try:
        for name in path.parts[1:]:
            opened = os.open(name, _DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = opened
    except BaseException:
        os.close(current)
        raise
    return current


def _why_unopened(exc: OSError, parent: int, name: str, shown: str, path: str) -> str:
    """The refusal for a component (``shown``: the path the agent gave, or the directory on
    its way) that did not open, naming the rule it broke."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            if shown == path:
                return f"path: {path} is a symbolic link; {_NO_LINKS}"
            return f"path: {path} passes through a symbolic link at {shown}; {_NO_LINKS}"
        if exc.errno == errno.ENOTDIR and mode and not stat.S_ISDIR(mode):
            return f"path: cannot read {path}: {shown} is not a directory"
        if exc.errno == errno.ENOTDIR:  # a link or a file at the open, not any more
            return f"path: cannot read {path}: {shown} changed while it was being opened"
    return f"path: cannot read {path}: {exc.strerror or exc}"


def _close_all(roots: dict[Path, int]) -> None:
    for fd in roots.values():
        os.close(fd)
    roots.clear()


def _under_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)
