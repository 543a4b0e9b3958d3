"""Background work that gives way to the request path.

Rendering the journal and recomputing history states run on the event loop that answers
senders. After each piece of such work :func:`step_back` yields, and while requests are being
answered it also pauses in proportion to the time the piece took, so the work takes at most a
given share of the loop: a burst is accepted at full speed and the work catches up after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["step_back"]


async def step_back(started: float, busy: Callable[[], bool], share: float, longest: float) -> None:
    """Yield after a piece of background work begun at ``started`` (``time.perf_counter()``).

    Args:
        started: when the piece began.
        busy: whether requests are being answered right now.
        share: the most of the loop the work may take while ``busy`` (0 < share <= 1).
        longest: the longest pause, in seconds.
    """
    pause = 0.0
    if busy():
        pause = min((time.perf_counter() - started) * (1 / share - 1), longest)
    await asyncio.sleep(pause)
