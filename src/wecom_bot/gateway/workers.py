"""Worker processes that do the gateway's heavy or untrusted work away from the event loop.

:class:`WorkerPool` keeps a few fresh interpreters, each with an address-space cap, and hands
them one job at a time from a thread (the event loop only awaits the thread). A worker that
does not answer within the job's deadline is killed; one that dies is dropped (and replaced at
once, or at the next job). The render pool (templates) and the drawing pool (charts) are both
built on it; what a job is and how its answer reads is theirs.

A worker runs :func:`serve` with its own answering function.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing.connection
import os
import queue
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["WorkerDied", "WorkerPool", "WorkerTimeout", "serve"]

_START_TIMEOUT = 60.0
"""Seconds a new worker may take to start (imports, on a busy machine)."""

Answer = tuple[str, Any]
"""What a worker sends back: a kind (``ok``, ``error`` ... the pool's user decides) and a value.
A worker answering ``("memory", ...)`` survived a MemoryError and is retired."""


class WorkerTimeout(Exception):
    """The job took longer than its deadline; its worker was killed."""


class WorkerDied(Exception):
    """The worker died, did not start, or its pipe broke (the message names the exception's
    type); it was killed. :attr:`WorkerPool.closed` tells whether the pool was closing."""


class _Worker:
    """One worker process and the parent's end of its pipe.

    The worker is a fresh interpreter running ``entry`` (not a ``multiprocessing`` child: those
    import the parent's main module again, which an embedding script may not guard); the two
    ends speak :class:`multiprocessing.connection.Connection` over a socket pair.
    """

    def __init__(self, memory_bytes: int, entry: str) -> None:
        # entry: "module:function", run as function(fd, memory_bytes)
        parent, child = socket.socketpair()
        module, function = entry.split(":")
        code = f"from {module} import {function}; {function}({child.fileno()}, {memory_bytes})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=(child.fileno(),), env=env,
                stdin=subprocess.DEVNULL, start_new_session=False,
            )  # fmt: skip
        finally:
            child.close()  # so that the parent sees EOF when the worker dies
        self.conn = multiprocessing.connection.Connection(parent.detach())
        self.ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(_START_TIMEOUT) or self.conn.recv() != "ready":
            raise RuntimeError("the worker did not start")
        self.ready = True

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(5)
        with contextlib.suppress(Exception):
            self.conn.close()


class WorkerPool:
    """Worker processes running ``entry``, one job each at a time (see the module docs).

    Args:
        entry: ``"module:function"`` each worker runs as ``function(fd, memory_bytes)``
            (it calls :func:`serve`).
        workers: how many jobs run at once (one process each; started at first use or by
            :meth:`start`).
        memory_bytes: each worker's address-space limit.
        thread_name: the prefix of the threads that wait on the workers.
        respawn: start a replacement as soon as a worker dies (else at the next job).
    """

    def __init__(
        self, entry: str, *, workers: int, memory_bytes: int, thread_name: str,
        respawn: bool = False,
    ) -> None:  # fmt: skip
        self.entry = entry
        self.workers = workers
        self.memory_bytes = memory_bytes
        self.thread_name = thread_name
        self.respawn = respawn
        self.closed = False
        """Set by :meth:`close`; no job starts after it."""
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: set[_Worker] = set()
        self._threads: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def idle(self) -> int:
        """Workers started and waiting for a job."""
        return self._idle.qsize()

    @property
    def started(self) -> int:
        """Worker processes the pool holds (idle or busy)."""
        return len(self._all)

    def start(self) -> None:
        """Start the workers now (jobs work without it: they start at first use)."""
        self._executor()
        for _ in range(self.workers - self._idle.qsize()):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        worker = _Worker(self.memory_bytes, self.entry)
        self._all.add(worker)
        return worker

    def _executor(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix=self.thread_name)
        return self._threads

    async def run(
        self, job: Any, timeout: float, *, admitted: Callable[[], None] | None = None
    ) -> Answer:
        """Send ``job`` to a free worker and return its answer, waiting for a free one first.

        Args:
            job: what the worker's function receives (picklable).
            timeout: seconds the worker has to answer once it has the job.
            admitted: called once a worker is free for the job, before it is sent (it may
                raise to give the job up).

        Raises:
            WorkerTimeout: no answer within ``timeout`` (the worker was killed).
            WorkerDied: the worker died or did not start (it was killed).
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        async with self._slots:
            if admitted is not None:
                admitted()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor(), self._run, job, timeout)

    def _run(self, job: Any, timeout: float) -> Answer:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = self._spawn()
        try:
            return self._exchange(worker, job, timeout)
        finally:
            if self.closed:
                worker.kill()
                self._all.discard(worker)
            elif worker.alive():
                self._idle.put(worker)
            else:
                self._all.discard(worker)
                if self.respawn:
                    self._idle.put(self._spawn())

    def _exchange(self, worker: _Worker, job: Any, timeout: float) -> Answer:
        try:
            worker.wait_ready()
            worker.conn.send(job)
            if not worker.conn.poll(timeout):
                worker.kill()
                raise WorkerTimeout(f"no answer within {timeout:g} s")
            answer: Answer = worker.conn.recv()
        except (EOFError, OSError, RuntimeError) as exc:
            worker.kill()
            raise WorkerDied(type(exc).__name__) from None
        if answer[0] == "memory":
            worker.kill()  # it survived its MemoryError, but its heap may be in a poor state
        return answer

    def close(self) -> None:
        """Kill the workers (a job in progress fails); the pool cannot be used again."""
        self.closed = True
        for worker in list(self._all):
            worker.kill()
        self._all.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)


def serve(fd: int, memory_bytes: int, answer: Callable[[Any], Answer]) -> None:
    """A worker's loop on the socket ``fd``: cap the address space at ``memory_bytes``, then
    send ``answer(job)`` for each job received, until the socket closes."""
    import resource

    conn = multiprocessing.connection.Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when its workers end
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(answer(job))
