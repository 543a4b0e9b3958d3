"""Real servers the tests start as processes (Prometheus, Alertmanager): started on 127.0.0.1,
waited for until their ``/-/ready`` answers, stopped when the block ends."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.gateway.harness import wait_for


def ready(url: str) -> bool:
    """Whether the server at ``url`` answers its readiness probe."""
    try:
        return httpx.get(url + "/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Daemons:
    """The processes started in one block (``procs``: to stop, pause or kill one)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def launch(self, argv: list[str], url: str, *, what: str, timeout: float) -> str:
        """Start ``argv`` (its output dropped) and wait until ``url`` is ready; returns it."""
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_for(lambda: ready(url), timeout=timeout, what=f"{what} to start")
        return url


@contextmanager
def daemons() -> Iterator[Daemons]:
    """Yields a :class:`Daemons`; every process it started is stopped after (a paused one
    is woken first, to hear SIGTERM)."""
    group = Daemons()
    try:
        yield group
    finally:
        for proc in group.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
            proc.terminate()
            proc.wait(10)
