"""Calls made in one turn of the event loop, run together.

Under load many requests reach the same store call in the same turn of the loop (each one
parsed its payload and now wants its journal record written). :class:`TurnBatch` collects
them and hands the whole list to one function at the end of the turn: one job for the SQLite
thread, one round trip to Redis, instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["TurnBatch"]

I = TypeVar("I")  # noqa: E741 - an item, as in the signature below
R = TypeVar("R")


class TurnBatch(Generic[I, R]):
    """Runs the items added in one turn of the loop as one call of ``run``.

    Args:
        run: takes the items in the order they were added and returns one result per item;
            a result that is an exception is raised to that item's caller alone. If ``run``
            itself raises, every caller of the batch gets that exception.
    """

    def __init__(self, run: Callable[[list[I]], Awaitable[Sequence[R | BaseException]]]) -> None:
        self._run = run
        self._pending: list[tuple[I, asyncio.Future[R]]] = []

    async def add(self, item: I) -> R:
        """Queue ``item`` with the others of this turn and wait for its result."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, waiter))
        if len(self._pending) == 1:
            loop.call_soon(lambda: asyncio.ensure_future(self._flush()))
        return await waiter

    async def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        results: Sequence[R | BaseException]
        try:
            results = await self._run([item for item, _ in pending])
        except Exception as exc:
            results = [exc] * len(pending)
        for (_, waiter), result in zip(pending, results, strict=True):
            if waiter.done():  # its caller was cancelled
                continue
            if isinstance(result, BaseException):
                waiter.set_exception(result)
            else:
                waiter.set_result(result)
