"""The rate window of a gateway on one store, kept across restarts and reloads.

The in-process :class:`~wecom_bot.ratelimit.SlidingWindowLimiter` forgets everything with its
process, but WeCom does not: a gateway that restarts within a minute of its last sends used to
send at once, be refused with 45009, and then wait a whole window. :class:`DurableWindow` writes
every send slot it hands out (and every 45009) to the outbox's send log before the send is
made, and before a key's first use it seeds the limiter with what that log holds for the key.
A reload with the same rate hands the live limiter itself over, so the two runtimes that
overlap for a moment during the swap share one window.

The log is keyed by :func:`~wecom_bot.masking.key_fingerprint`, never by the key. On Redis the
gateway does not need any of this: :class:`~wecom_bot.store.redis.RedisWindowLimiter` keeps the
window in Redis for every instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..dispatcher import SendLimiter
from ..masking import key_fingerprint
from ..ratelimit import SLOW_ANSWER, Rate, SlidingWindowLimiter
from ..store import Outbox, StoreUnavailableError

__all__ = ["DurableWindow"]

logger = logging.getLogger("wecom_bot.gateway")

KEEP_WINDOWS = 2.0
"""The send log keeps this many windows of marks per key; a seed reads only the last one."""


class DurableWindow:
    """A :class:`~wecom_bot.dispatcher.SendLimiter` whose window outlives the process.

    Args:
        rate: the enforced rate (with its safety margin already applied).
        store: the outbox that keeps the send log.
        clock: wall-clock time, the time base of the send log (records outlive the process).
        previous: the window of the runtime being replaced by a reload; with the same rate its
            limiter is taken over as it is, otherwise the new one is seeded from the store.
        limiter: the in-process limiter to wrap (tests inject one on a fake clock).
    """

    def __init__(
        self,
        rate: Rate,
        store: Outbox,
        *,
        clock: Callable[[], float],
        previous: SendLimiter | None = None,
        limiter: SlidingWindowLimiter | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self._seeded: set[str] = set()
        self._seeding = asyncio.Lock()
        self.limiter: SlidingWindowLimiter
        if isinstance(previous, DurableWindow) and previous.limiter.rate == rate:
            self.limiter = previous.limiter
            self._seeded = previous._seeded
        else:
            self.limiter = limiter if limiter is not None else SlidingWindowLimiter(rate)

    @property
    def rate(self) -> Rate:
        """The enforced rate."""
        return self.limiter.rate

    async def _ready(self, key: str) -> None:
        """Seed ``key`` from the send log on its first use by this window.

        Raises:
            StoreUnavailableError: the log could not be read; the next call tries again.
        """
        if key in self._seeded:
            return
        async with self._seeding:
            if key in self._seeded:
                return
            window = self.limiter.rate.window
            now = self.clock()
            marks = await self.store.recent_sends(key_fingerprint(key), now - window)
            sent = [now - m.at for m in marks if not m.rejected]
            refused = [m.at + window - now for m in marks if m.rejected]
            self.limiter.seed(key, sent, blocked_for=max(refused, default=0.0))
            self._seeded.add(key)

    async def _note(self, key: str, *, rejected: bool, later: float = 0.0) -> None:
        keep = KEEP_WINDOWS * self.limiter.rate.window
        at = self.clock() + min(max(later, 0.0), self.limiter.rate.window)
        try:
            await self.store.note_send(key_fingerprint(key), at, keep=keep, rejected=rejected)
        except StoreUnavailableError as exc:
            # The send goes ahead: this process's own window still holds it, and only a
            # restart within the window could be refused for the missing mark.
            logger.warning("could not record a send in the send log: %s", exc)

    async def try_acquire(self, key: str) -> float:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`; a slot taken is in the log
        before this returns."""
        await self._ready(key)
        wait = self.limiter.try_acquire(key)
        if wait == 0.0:
            await self._note(key, rejected=False)
        return wait

    async def record_rejection(self, key: str) -> float:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`; the block is logged too."""
        await self._ready(key)
        blocked = self.limiter.record_rejection(key)
        await self._note(key, rejected=True)
        return blocked

    async def answered(self, key: str, after: float, *, later: float = 0.0) -> None:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`; a slow answer's mark is logged again
        at its answer (a restart within the window then counts it from there)."""
        await self._ready(key)
        self.limiter.answered(key, after, later=later)
        if after > SLOW_ANSWER * self.limiter.rate.window:
            await self._note(key, rejected=False, later=later)

    async def eta(self, key: str, count: int) -> float:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`."""
        await self._ready(key)
        return self.limiter.eta(key, count)

    async def used(self, key: str) -> int:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`; counts the previous process's sends."""
        await self._ready(key)
        return self.limiter.used(key)

    async def capacity(self, key: str, within: float, *, cap: int) -> int:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`."""
        await self._ready(key)
        return self.limiter.capacity(key, within, cap=cap)
