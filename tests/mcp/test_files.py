"""The media tools read only regular files under the allowed directories, through a real
``wecom-bot mcp`` over stdio: every attack is a tool call an agent could make."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key
from tests.mcp.conftest import Harness, server_env
from wecom_bot.errors import ConfigError
from wecom_bot.masking import key_fingerprint
from wecom_bot.mcp.files import FileRefused, MediaFiles

KEY = new_key()


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="module")
def mcp(emu: Emu, allowed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("mcp-files")
    harness = Harness(server_env(emu, KEY, tmp), tmp, ("--allow-dir", str(allowed))).start()
    yield harness
    harness.close()


def stored(emu: Emu) -> list[dict[str, Any]]:
    answer = emu.client.get(f"/api/groups/{key_fingerprint(KEY)}/messages")
    if answer.status_code == 404:  # nothing was ever posted with the key
        return []
    entries: list[dict[str, Any]] = answer.json()["messages"]
    return entries


def last(emu: Emu) -> int:
    entries = stored(emu)
    return entries[-1]["id"] if entries else 0


def posted(emu: Emu, since: int) -> list[dict[str, Any]]:
    return [e for e in stored(emu) if e["id"] > since]


def test_a_file_in_the_allowed_directory_is_sent(mcp: Harness, emu: Emu, allowed: Path) -> None:
    path = allowed / "report.csv"
    path.write_bytes(b"host,cpu\nweb-1,97\n")
    since = last(emu)
    report = mcp.ok("send_file", path=str(path))
    assert report["media_id"]
    assert [e["payload"]["msgtype"] for e in posted(emu, since)] == ["file"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/proc/self/environ", "/proc, /dev or /sys"),
        ("/proc/1/environ", "/proc, /dev or /sys"),
        ("/dev/zero", "/proc, /dev or /sys"),
        ("/dev/urandom", "/proc, /dev or /sys"),
        ("/sys/kernel/mm/transparent_hugepage/enabled", "/proc, /dev or /sys"),
        ("/etc/passwd", "not under an allowed directory"),
        ("~/.ssh/id_rsa", "not under an allowed directory"),
    ],
)
def test_system_and_outside_files_are_refused(
    mcp: Harness, emu: Emu, path: str, expected: str
) -> None:
    since = last(emu)
    started = time.monotonic()
    for tool in ("send_file", "send_voice", "send_image"):
        text = mcp.error(tool, path=path)
        assert expected in text, text
        assert "--allow-dir" in text or "never read" in text
    assert time.monotonic() - started < 10  # /dev/zero is not read at all
    assert posted(emu, since) == []


def test_links_and_dot_dots_out_of_the_allowed_directory_are_refused(
    mcp: Harness, emu: Emu, allowed: Path
) -> None:
    # Before the race fix these were refused by where they led (/proc..., not allowed);
    # now no link below an allowed directory is followed at all, and the refusal says so.
    (allowed / "environ").symlink_to("/proc/self/environ")
    (allowed / "zero").symlink_to("/dev/zero")
    (allowed / "passwd").symlink_to("/etc/passwd")
    (allowed / "proc").symlink_to("/proc/self")
    since = last(emu)
    for name in ("environ", "zero", "passwd"):
        text = mcp.error("send_file", path=str(allowed / name))
        assert f"{allowed / name} is a symbolic link; symbolic links are not followed" in text
    text = mcp.error("send_file", path=str(allowed / "proc" / "environ"))
    assert f"passes through a symbolic link at {allowed / 'proc'}" in text
    escape = f"{allowed}/../../../../../../proc/self/environ"
    assert "/proc, /dev or /sys" in mcp.error("send_file", path=escape)
    assert posted(emu, since) == []


def test_links_and_dot_dots_within_the_allowed_directory_are_refused_too(
    mcp: Harness, emu: Emu, allowed: Path, tmp_path: Path
) -> None:
    (allowed / "inner").mkdir()
    (allowed / "inner" / "real.txt").write_bytes(b"fine")
    (allowed / "alias.txt").symlink_to(allowed / "inner" / "real.txt")
    (allowed / "inner-alias").symlink_to(allowed / "inner")
    (tmp_path / "pointer.txt").symlink_to(allowed / "inner" / "real.txt")
    since = last(emu)
    assert "is a symbolic link" in mcp.error("send_file", path=str(allowed / "alias.txt"))
    text = mcp.error("send_file", path=str(allowed / "inner-alias" / "real.txt"))
    assert "passes through a symbolic link" in text
    text = mcp.error("send_file", path=f"{allowed}/inner/../inner/real.txt")
    assert "has a '..' component, which is never followed" in text
    text = mcp.error("send_file", path=str(tmp_path / "pointer.txt"))
    assert "leads into an allowed directory through a symbolic link" in text
    assert "not a directory" in mcp.error("send_file", path=f"{allowed}/inner/real.txt/x")
    assert posted(emu, since) == []


def test_files_below_subdirectories_and_through_links_above_the_directory_are_sent(
    mcp: Harness, emu: Emu, allowed: Path, tmp_path: Path
) -> None:
    (allowed / "reports" / "2026").mkdir(parents=True)
    (allowed / "reports" / "2026" / "cpu.csv").write_bytes(b"host,cpu\nweb-2,12\n")
    (tmp_path / "shortcut").symlink_to(allowed)  # a link above the allowed directory
    since = last(emu)
    mcp.ok("send_file", path=str(allowed / "reports" / "2026" / "cpu.csv"))
    mcp.ok("send_file", path=str(tmp_path / "shortcut" / "reports" / "2026" / "cpu.csv"))
    mcp.ok("send_file", path=f"{allowed}/./reports//2026/cpu.csv")
    assert [e["payload"]["msgtype"] for e in posted(emu, since)] == ["file"] * 3


def test_fifos_directories_and_oversize_files_are_refused_before_reading(
    mcp: Harness, emu: Emu, allowed: Path
) -> None:
    fifo = allowed / "pipe"
    os.mkfifo(fifo)  # opening it for reading would block forever
    huge = allowed / "huge.bin"
    with huge.open("wb") as file:  # sparse: 100 MiB by stat, no disk used
        file.truncate(100 * 1024 * 1024)
    since = last(emu)
    started = time.monotonic()
    assert "not a regular file" in mcp.error("send_file", path=str(fifo))
    assert "not a regular file" in mcp.error("send_file", path=str(allowed))
    text = mcp.error("send_file", path=str(huge))
    assert "104857600 bytes, over the limit of 20971520 bytes" in text
    assert "over the limit of 2097152" in mcp.error("send_image", path=str(huge))
    assert time.monotonic() - started < 10
    assert posted(emu, since) == []


def test_a_voice_that_is_not_amr_is_refused_by_its_model(
    mcp: Harness, emu: Emu, allowed: Path
) -> None:
    path = allowed / "not-a-voice.amr"
    path.write_bytes(b"RIFF....WAVE")
    assert "AMR" in mcp.error("send_voice", path=str(path))


def test_no_directory_is_allowed_by_default(emu: Emu, tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    target.write_text("hello there")
    harness = Harness(server_env(emu, new_key(), tmp_path), tmp_path).start()
    try:
        text = harness.error("send_file", path=str(target))
        assert "reading files is not allowed on this server" in text
        assert "--allow-dir" in text and "WECOM_BOT_MCP_ALLOW_DIRS" in text
    finally:
        harness.close()


def test_the_environment_variable_allows_directories_and_system_trees_cannot_be(
    tmp_path: Path,
) -> None:
    files = MediaFiles.from_environment(env={"WECOM_BOT_MCP_ALLOW_DIRS": f"{tmp_path}:"})
    assert files.allowed == (tmp_path.resolve(),)
    for bad in ("/proc", "/dev", "/sys/kernel", "/", str(tmp_path / "missing")):
        with pytest.raises(ConfigError):
            MediaFiles([bad])


def test_the_directory_opened_at_start_is_the_one_read_and_moving_it_is_noticed(
    tmp_path: Path,
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "a.txt").write_bytes(b"first")
    files = MediaFiles([allowed])
    try:
        assert files.read(str(allowed / "a.txt"), 100) == b"first"
        # The opened directory is moved away and another put at its name: the reader keeps
        # to the directory it opened, whose real path is no longer the allowed one.
        allowed.rename(tmp_path / "moved")
        allowed.mkdir()
        (allowed / "a.txt").write_bytes(b"second")
        with pytest.raises(FileRefused, match="no longer under the allowed directory"):
            files.read(str(allowed / "a.txt"), 100)
        with pytest.raises(FileRefused, match="is not under an allowed directory"):
            files.read(str(tmp_path / "moved" / "a.txt"), 100)
    finally:
        files.close()
    with pytest.raises(FileRefused, match="reading files is not allowed"):
        files.read(str(allowed / "a.txt"), 100)
