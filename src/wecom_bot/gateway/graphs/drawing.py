"""Drawing charts and re-encoding images away from the event loop, within a deadline.

:class:`DrawPool` runs :func:`~.chart.draw_chart` (matplotlib, imported in the worker only)
and the SDK's image re-encoding (:func:`wecom_bot.cli.send.prepare_image`, Pillow) in worker
processes of a :class:`~..workers.WorkerPool`, as the render pool does (a fresh interpreter,
an address-space cap). A job that does not answer within its timeout has its
worker killed and replaced, and fails with :class:`GraphDrawError`: the caller drops the
graph, the alert's text never waits for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ... import limits
from ..workers import WorkerDied, WorkerPool, WorkerTimeout, serve

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
        self.processes = WorkerPool(
            _ENTRY, workers=workers, memory_bytes=memory_bytes, thread_name="wecom-bot-graph"
        )
        """The worker processes (started at first use, replaced at the next after one dies)."""

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
        if self.processes.closed:
            raise GraphDrawError("the gateway is stopping")
        try:
            kind, value = await self.processes.run(job, timeout)
        except WorkerTimeout:
            raise GraphDrawError(f"took longer than {timeout:g} s (killed)") from None
        except WorkerDied as exc:
            raise GraphDrawError(f"the drawing process died ({exc})") from None
        if kind != "ok":
            raise GraphDrawError(str(value))
        data: bytes = value
        return data

    def close(self) -> None:
        """Kill the workers (a job in progress fails); the pool cannot be used again."""
        self.processes.close()


def serve_draw_worker(fd: int, memory_bytes: int) -> None:
    """A drawing worker's loop on the socket ``fd``, run by :class:`DrawPool` in a fresh
    interpreter: answer each job until the socket closes."""
    serve(fd, memory_bytes, lambda job: _job(*job))


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
