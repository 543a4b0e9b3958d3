"""The gateway's clock: wall-clock time that never steps.

Queued messages, retries, leases and escalation timers are stored as wall-clock times
(seconds since the epoch: they outlive the process and are shared through Redis) and compared
with "now". Read from ``time.time``, a step of the system clock breaks those comparisons: a step
back of an hour left everything queued waiting for the clock to catch up, a step forward made
every timer of the next hour due at once.

:class:`SteadyClock` reads the monotonic clock (which NTP slews but never steps) and adds an
offset to it that follows the wall clock. While the two agree the clock *is* the wall clock.
When the wall clock steps, the offset does not jump: it moves toward the new wall time by at
most ``slew`` seconds per second, so this clock keeps counting from where it was, never goes
back, and catches up with the wall clock gradually (a one-hour step at the default 10 % takes
ten hours). Meanwhile what was due stays due, retries and timers keep their remaining delays
(stretched or shrunk by at most ``slew``), and nothing fires in a burst. Every step is logged at
WARNING once, with its size and how long the catch-up takes; the end of the catch-up at INFO.
A restart takes the wall clock as it is: a step back while the gateway is down still leaves
what was stored before it waiting for the wall clock (keep the host on NTP slewing; see
docs/deployment.md).

Redis-shared state that must agree across instances (the rate window, leases) is timed on the
Redis server's clock instead (see :mod:`wecom_bot.store.redis`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["SteadyClock"]

logger = logging.getLogger("wecom_bot.clock")

STEP_TOLERANCE = 1.0
"""Seconds the wall clock may move against the monotonic clock before it counts as a step."""

DEFAULT_SLEW = 0.1
"""The fraction of elapsed time by which the clock closes its gap with the wall clock."""


class SteadyClock:
    """Seconds since the epoch, monotonic, following the wall clock without its steps.

    Args:
        wall: the wall clock (``time.time``; tests pass a fake one).
        monotonic: the monotonic clock (``time.monotonic``).
        slew: the largest rate at which the gap to the wall clock closes (0 < slew < 1).
        tolerance: a gap larger than this is a step (logged); smaller ones close silently.

    Calling the instance returns the time. It is safe to call from several threads.
    """

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        slew: float = DEFAULT_SLEW,
        tolerance: float = STEP_TOLERANCE,
    ) -> None:
        if not 0 < slew < 1:
            raise ValueError("slew must be between 0 and 1 (exclusive)")
        self._wall = wall
        self._monotonic = monotonic
        self.slew = slew
        self.tolerance = tolerance
        self._lock = threading.Lock()
        self._last_mono = monotonic()
        self._offset = wall() - self._last_mono
        self._stepping = False
        self.steps = 0
        """Steps of the wall clock seen so far."""

    def __call__(self) -> float:
        with self._lock:
            mono = self._monotonic()
            elapsed = max(mono - self._last_mono, 0.0)
            self._last_mono = max(mono, self._last_mono)
            gap = self._wall() - (self._last_mono + self._offset)
            if abs(gap) > self.tolerance and not self._stepping:
                self._stepping = True
                self.steps += 1
                logger.warning(
                    "the wall clock stepped %s by %.1f s; this process keeps counting time "
                    "without the step (queued messages, retries, leases and timers keep their "
                    "delays) and catches up with the wall clock over %.0f s",
                    "forward" if gap > 0 else "back", abs(gap), abs(gap) / self.slew,
                )  # fmt: skip
            most = self.slew * elapsed
            self._offset += max(-most, min(most, gap))
            if self._stepping and abs(gap) <= most:
                self._stepping = False
                logger.info("the clock caught up with the wall clock after its step")
            return self._last_mono + self._offset
