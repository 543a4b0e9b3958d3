"""The clock-step shim: an ``LD_PRELOAD`` library that offsets a process's wall clock (not its
monotonic clock), as an NTP step does, for tests on real processes (see fixtures/clockshim.c)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).parent / "fixtures" / "clockshim.c"


class ClockShim:
    """The built library and its offset file; :meth:`env` is what a child process needs."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("gcc") is None:
            raise RuntimeError("the clock shim needs gcc (apt-get install gcc)")
        self.library = directory / "clockshim.so"
        self.offset_file = directory / "clock-offset"
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O2", "-o", str(self.library), str(SOURCE), "-ldl",
             "-lpthread"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.set(0.0)

    def set(self, seconds: float) -> None:
        """Step the wall clock of every process using the shim to real time + ``seconds``."""
        temporary = self.offset_file.with_suffix(".tmp")
        temporary.write_text(f"{seconds!r}\n", "ascii")
        temporary.replace(self.offset_file)  # atomic: a reader sees the old or the new value

    def env(self) -> dict[str, str]:
        """Environment variables that load the shim into a child process."""
        return {"LD_PRELOAD": str(self.library), "CLOCK_SHIM_FILE": str(self.offset_file)}
