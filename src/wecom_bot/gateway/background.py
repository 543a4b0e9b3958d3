"""One background task of the gateway: started, woken and stopped the same way.

The inbox processor (notifications to messages) and the escalator (due timers to messages)
each run one loop per process that sleeps until woken or until its poll interval ends, and
stops after the item in hand (the store keeps the rest).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib

__all__ = ["BackgroundLoop"]


class BackgroundLoop(abc.ABC):
    """A task running :meth:`_loop` until :meth:`stop`; :meth:`wake` cuts a wait short.

    Args:
        name: the asyncio task's name (seen in task dumps).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (it picks up what an earlier run left in the store, too)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        """Finish the item in hand and stop; the store keeps the rest for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Look at the store now (something new was stored here)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the loop runs (readiness)."""
        return self._task is not None and not self._task.done()

    @abc.abstractmethod
    async def _loop(self) -> None:
        """Work until ``_stopping`` is set, waiting on ``_wake`` when there is nothing to do."""
