"""The media tools under a path-swapping race: a directory inside the allowed one is flipped,
as fast as another process can rename, between a real directory that holds a harmless file and a
symbolic link to somewhere the file of the same name is a secret (``/proc/self``, whose
``environ`` holds every key of the process, or a directory outside the allowed one).

A reader that checks a path and then opens it by name again posted ``/proc/self/environ``
in 884 of 5,347 calls; one that opens every component from the allowed directory's
descriptor without following links cannot be steered, however the swaps interleave.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.emulator.conftest import Emu, new_key
from tests.mcp.conftest import Harness, server_env
from wecom_bot.masking import key_fingerprint
from wecom_bot.mcp.files import FileRefused, MediaFiles

HARMLESS = b"nothing to see here\n"
SECRET = b"SECRET=do-not-post-this-anywhere\n"
READS = 5_000
SWAPS_AT_MOST = 5_000_000
"""The swapping process stops by itself after this many flips, even if no one stops it."""


_SWAP_LOOP = """
import os, sys
swap, parked_dir, parked_link, stop, most = sys.argv[1:6]
flips = 0
while flips < int(most) and not (flips % 256 == 0 and os.path.exists(stop)):
    os.rename(swap, parked_dir)
    os.rename(parked_link, swap)
    os.rename(swap, parked_link)
    os.rename(parked_dir, swap)
    flips += 2
print(flips)
"""


@dataclass
class Swapper:
    """Flips ``allowed/swap`` between a real directory and a link to ``target``, from a
    process of its own so that it runs truly beside the reader (no shared interpreter lock)."""

    swap: Path
    target: str
    flips: int = 0

    @contextmanager
    def running(self) -> Iterator[Swapper]:
        parked_dir = self.swap.with_name("parked-dir")
        parked_link = self.swap.with_name("parked-link")
        stop = self.swap.with_name("stop")
        self.swap.mkdir()
        (self.swap / "environ").write_bytes(HARMLESS)
        parked_link.symlink_to(self.target)
        # Each rename is atomic; between the two of a flip the name is briefly missing.
        args = [self.swap, parked_dir, parked_link, stop, SWAPS_AT_MOST]
        child = subprocess.Popen(
            [sys.executable, "-c", _SWAP_LOOP, *map(str, args)], stdout=subprocess.PIPE
        )
        try:
            yield self
        finally:
            stop.touch()
            out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        self.flips = int(out)


def refusal(text: str) -> str:
    """The kind of a refusal: the link rule, a name replaced or missing mid-flip, or the text
    of anything else."""
    if "symbolic link" in text:
        return "symlink"
    if "changed while it was being opened" in text:  # a link at the open, a directory after
        return "changed"
    return "missing" if "No such file or directory" in text else text


@pytest.fixture(params=["proc-self", "outside-dir"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "proc-self":
        return "/proc/self"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "environ").write_bytes(SECRET)
    return str(outside)


def test_no_read_follows_a_directory_swapped_for_a_link(tmp_path: Path, target: str) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    files = MediaFiles([allowed])
    path = str(allowed / "swap" / "environ")
    outcomes: Counter[str] = Counter()
    leaked: list[bytes] = []
    try:
        with Swapper(allowed / "swap", target).running() as swapper:
            for _ in range(READS):
                try:
                    data = files.read(path, 1024 * 1024)
                except FileRefused as exc:
                    outcomes[refusal(str(exc))] += 1
                    continue
                outcomes["read"] += 1
                if data != HARMLESS:
                    leaked.append(data)
    finally:
        files.close()
    counts = f"{READS} reads, {swapper.flips} flips, {dict(outcomes)}"
    print(f"\n{target}: {counts}, leaked {len(leaked)}")
    assert leaked == []
    # The race was really run: reads met the directory and met the link.
    assert outcomes["read"] > 0 and outcomes["symlink"] > 0, outcomes
    assert sum(outcomes.values()) == READS
    assert set(outcomes) <= {"read", "symlink", "changed", "missing"}, outcomes


KEY = new_key()
TOOL_CALLS = 300


def test_send_file_through_the_server_never_posts_its_environment(emu: Emu, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = server_env(emu, KEY, home, WECOM_BOT_RATE="10000/60s")
    harness = Harness(env, home, ("--allow-dir", str(allowed))).start()
    outcomes: Counter[str] = Counter()
    try:
        with Swapper(allowed / "swap", "/proc/self").running() as swapper:
            for _ in range(TOOL_CALLS):
                result = harness.call("send_file", path=str(allowed / "swap" / "environ"))
                if not result.is_error:
                    outcomes["sent"] += 1
                else:
                    outcomes[refusal(getattr(result.content[0], "text", ""))] += 1
    finally:
        harness.close()
    group = key_fingerprint(KEY)
    media = emu.client.get(f"/api/groups/{group}/media").json()["media"]
    uploads = [emu.client.get(f"/api/media/{m['media_id']}") for m in media]
    assert all(u.status_code == 200 for u in uploads)
    leaked = [u.content for u in uploads if u.content != HARMLESS]
    with_key = [data for data in leaked if KEY.encode() in data]
    print(
        f"\nsend_file: {TOOL_CALLS} calls, {swapper.flips} flips, {dict(outcomes)}, "
        f"leaked {len(leaked)} ({len(with_key)} with the key)"
    )
    assert leaked == []
    assert len(uploads) == outcomes["sent"] > 0
    assert outcomes["symlink"] > 0, outcomes
    assert set(outcomes) <= {"sent", "symlink", "changed", "missing"}, outcomes
