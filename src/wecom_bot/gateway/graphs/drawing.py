"""Drawing charts and re-encoding images away from the event loop, within a deadline.

:class:`DrawPool` runs :func:`~.chart.draw_chart` (matplotlib, imported in the worker only)
and the SDK's image re-encoding (:func:`wecom_bot.cli.send.prepare_image`, Pillow) in worker
processes started like the render pool's (:class:`~..templates.render_pool._Worker`: a fresh
interpreter, an address-space cap). A job that does not answer within its timeout has its
worker killed and replaced, and fails with :class:`GraphDrawError`: the caller drops the
graph, the alert's text never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing.connection
import queue
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ... import limits
from ..templates.render_pool import _Worker

if TYPE_CHECKING:
    from .chart import ChartRequest

__all__ = ["DrawPool", "GraphDrawError", "serve_draw_worker"]

logger = logging.getLogger("wecom_bot.gateway.graphs")

_ENTRY = f"{__name__}:serve_draw_worker"


class GraphDrawError(Exception):
    """A chart could not be drawn or an image re-encoded (in time)."""


class DrawPool:
    """Worker processes that draw charts and fit images to WeCom's 2 MiB (see module docs).

    Args:
        workers: how many jobs run at once (one process each; started at first use).
        memory_bytes: each worker's address-space limit (matplotlib needs a few hundred MiB).
    """

    def __init__(self, *, workers: int = 1, memory_bytes: int = 1024 * 1024 * 1024) -> None:
        self.workers = workers
        self.memory_bytes = memory_bytes
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: set[_Worker] = set()
        self._threads: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def draw(self, request: ChartRequest, *, timeout: float) -> bytes:
        """The PNG of ``request``, at most 2 MiB.

        Raises:
            GraphDrawError: it failed, or took longer than ``timeout`` (worker killed).
        """
        return await self._submit(("draw", request), timeout)

    async def fit(self, data: bytes, *, timeout: float) -> bytes:
        """``data`` as a JPG/PNG within 2 MiB (re-encoded and downscaled when it is not).

        Raises:
            GraphDrawError: not an image, or it took longer than ``timeout``.
        """
        return await self._submit(("fit", data), timeout)

    async def _submit(self, job: tuple[str, Any], timeout: float) -> bytes:
        if self._closed:
            raise GraphDrawError("the gateway is stopping")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="wecom-bot-graph")
        async with self._slots:
            loop = asyncio.get_running_loop()
            kind, value = await loop.run_in_executor(self._threads, self._run, job, timeout)
        if kind != "ok":
            raise GraphDrawError(str(value))
        data: bytes = value
        return data

    def _run(self, job: tuple[str, Any], timeout: float) -> tuple[str, Any]:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = _Worker(self.memory_bytes, _ENTRY)
            self._all.add(worker)
        try:
            worker.wait_ready()
            worker.conn.send(job)
            if not worker.conn.poll(timeout):
                worker.kill()
                return "error", f"took longer than {timeout:g} s (killed)"
            outcome: tuple[str, Any] = worker.conn.recv()
            return outcome
        except (EOFError, OSError, RuntimeError) as exc:
            worker.kill()
            return "error", f"the drawing process died ({type(exc).__name__})"
        finally:
            if self._closed or not worker.alive():
                worker.kill()
                self._all.discard(worker)
            else:
                self._idle.put(worker)

    def close(self) -> None:
        """Kill the workers (a job in progress fails); the pool cannot be used again."""
        self._closed = True
        for worker in list(self._all):
            worker.kill()
        self._all.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)


def serve_draw_worker(fd: int, memory_bytes: int) -> None:
    """A drawing worker's loop on the socket ``fd``, run by :class:`DrawPool` in a fresh
    interpreter: answer each job until the socket closes."""
    import resource

    conn = multiprocessing.connection.Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when its workers end
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    conn.send("ready")
    while True:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_job(kind, value))


def _job(kind: str, value: Any) -> tuple[str, Any]:
    try:
        if kind == "draw":
            from .chart import draw_chart

            return "ok", _fitted(draw_chart(value))
        return "ok", _fitted(value)
    except MemoryError:
        return "error", "ran out of memory"
    except ImportError as exc:
        return "error", f"{exc.name or 'a module'} is not installed (the [graphs] extra)"
    except Exception as exc:  # a bad image, a chart that cannot be drawn: the graph is dropped
        return "error", f"{type(exc).__name__}: {exc}"[:300]


def _fitted(data: bytes) -> bytes:
    """``data`` within WeCom's image limit, re-encoded by the SDK's own helper when needed."""
    from ...cli.send import prepare_image

    fitted, _notices = prepare_image(data, "the graph", max_bytes=limits.IMAGE_MAX_BYTES)
    return fitted
