"""Exact sliding-window rate limiting per webhook key.

WeCom allows 20 messages per minute per robot and answers errcode 45009 beyond that. Whether
its window is fixed or sliding is not documented, so this limiter enforces the stricter
reading, which is safe under both: never more than ``limit`` sends in any half-open interval
``[t, t + window)``. It keeps the timestamps of the sends of the last window per key (at most
``limit`` of them), so the answer is exact rather than an approximation like a token bucket.

The clock and the sleep functions are constructor arguments, so tests run on a fake clock.
Keys are only used as dictionary keys here; they never reach a message or a log line.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from . import limits
from .errors import RateLimitWaitExceeded

__all__ = ["KeyPool", "Rate", "SlidingWindowLimiter", "parse_rate"]

MARK_TOLERANCE = 0.01
"""How far (a share of the window) a send's mark may lie from where :meth:`SlidingWindowLimiter.
answered` looks for it."""

SLOW_ANSWER = 0.01
"""An answer later than this share of the window after its slot moves the send's mark to the
answer (faster ones are within any rate margin: moving their marks would cost a store write
or a Redis call for nothing)."""


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` sends in any ``window`` seconds.

    Attributes:
        limit: the number of sends allowed per window (at least 1).
        window: the window length in seconds (greater than 0).
    """

    limit: int = limits.RATE_LIMIT_MESSAGES
    window: float = limits.RATE_LIMIT_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"rate limit must be an integer >= 1, got {self.limit!r}")
        if not self.window > 0:
            raise ValueError(f"rate window must be > 0 seconds, got {self.window!r}")

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"


_RATE_RE = re.compile(
    r"^\s*(?P<limit>\d+)\s*/\s*(?P<amount>\d+(?:\.\d+)?)?\s*(?P<unit>ms|s|sec|m|min|h)\s*$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate(text: str) -> Rate:
    """Parse a rate such as ``"20/60s"``, ``"20/1s"``, ``"5/500ms"``, ``"20/1m"`` or ``"20/min"``.

    The unit is required (``ms``, ``s``, ``m``/``min``, ``h``); the amount before it defaults to 1.

    Args:
        text: the rate as ``<sends>/<amount><unit>``.

    Returns:
        The parsed :class:`Rate`.

    Raises:
        ValueError: the text is not of that form, the limit is 0 or the window is 0.
    """
    match = _RATE_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"invalid rate {text!r}: expected '<sends>/<window>' with a unit, "
            "e.g. '20/60s', '20/1m', '5/500ms'"
        )
    limit = int(match["limit"])
    amount = float(match["amount"]) if match["amount"] is not None else 1.0
    window = amount * _UNIT_SECONDS[match["unit"].lower()]
    if limit < 1:
        raise ValueError(f"invalid rate {text!r}: the number of sends must be at least 1")
    if window <= 0:
        raise ValueError(f"invalid rate {text!r}: the window must be longer than 0")
    return Rate(limit, window)


class _KeyState:
    __slots__ = ("sends", "blocked_until")

    def __init__(self) -> None:
        self.sends: deque[float] = deque()
        self.blocked_until = float("-inf")


class SlidingWindowLimiter:
    """Exact sliding-window limiter, one window per key.

    A send at time ``t`` occupies a slot during ``[t, t + window)``; a new send is allowed when
    fewer than ``limit`` slots are occupied and the key is not blocked by a server rejection.
    The sync methods are thread-safe; the async one shares the same state and lock (held only
    for bookkeeping, never while waiting).

    Args:
        rate: the allowed rate; defaults to WeCom's 20 per 60 s.
        clock: a monotonic clock in seconds.
        sleep: how :meth:`acquire` waits.
        async_sleep: how :meth:`acquire_async` waits (default ``asyncio.sleep``).
    """

    def __init__(
        self,
        rate: Rate | str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        if rate is None:
            rate = Rate()
        elif isinstance(rate, str):
            rate = parse_rate(rate)
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep or _asyncio_sleep
        self._lock = threading.Lock()
        self._keys: dict[str, _KeyState] = {}

    @property
    def rate(self) -> Rate:
        """The enforced rate."""
        return self._rate

    def _state(self, key: str, now: float) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
            return state
        window = self._rate.window
        sends = state.sends
        while sends and sends[0] + window <= now:
            sends.popleft()
        return state

    def _wait_locked(self, state: _KeyState, now: float) -> float:
        wait = state.blocked_until - now
        sends = state.sends
        if len(sends) >= self._rate.limit:
            wait = max(wait, sends[-self._rate.limit] + self._rate.window - now)
        return max(wait, 0.0)

    def _forget_if_idle(self, key: str, state: _KeyState, now: float) -> None:
        # Keeps memory bounded when many keys come and go (one gateway, many robots).
        if not state.sends and state.blocked_until <= now:
            self._keys.pop(key, None)

    def try_acquire(self, key: str) -> float:
        """Take a send slot for ``key`` if one is free now.

        Args:
            key: the webhook key (or any identifier of one robot).

        Returns:
            ``0.0`` when a slot was taken (the caller may send now); otherwise the seconds
            until a slot frees, and nothing was taken.
        """
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            wait = self._wait_locked(state, now)
            if wait > 0.0:
                return wait
            state.sends.append(now)
            return 0.0

    def wait_time(self, key: str) -> float:
        """Seconds until a send for ``key`` would be allowed (``0.0`` if now); takes nothing."""
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            wait = self._wait_locked(state, now)
            self._forget_if_idle(key, state, now)
            return wait

    def used(self, key: str) -> int:
        """The number of sends recorded for ``key`` in the current window."""
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            count = len(state.sends)
            self._forget_if_idle(key, state, now)
            return count

    def eta(self, key: str, count: int) -> float:
        """Seconds from now until ``count`` more sends for ``key`` could all have been made.

        The earliest schedule that respects the window and any penalty; ``0.0`` for
        ``count <= 0``. The dispatcher uses it to tell whether a backlog drains in time.
        """
        if count <= 0:
            return 0.0
        limit, window = self._rate.limit, self._rate.window
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            schedule = list(state.sends)
            start = max(now, state.blocked_until)
            self._forget_if_idle(key, state, now)
        for _ in range(count):
            at = start
            if len(schedule) >= limit:
                at = max(at, schedule[-limit] + window)
            schedule.append(at)
        return schedule[-1] - now

    def capacity(self, key: str, within: float, *, cap: int = 10_000) -> int:
        """How many sends for ``key`` could be made from now until ``within`` seconds from now.

        ``0`` when the next slot frees later than that; never more than ``cap``. The dispatcher
        uses it to claim only what it can send and to tell whether a backlog drains in time.
        """
        limit, window = self._rate.limit, self._rate.window
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            schedule = list(state.sends)
            start = max(now, state.blocked_until)
            self._forget_if_idle(key, state, now)
        deadline = now + within
        count = 0
        while count < cap:
            at = start
            if len(schedule) >= limit:
                at = max(at, schedule[-limit] + window)
            if at > deadline:
                break
            schedule.append(at)
            count += 1
        return count

    def seed(self, key: str, sent_ago: Iterable[float], *, blocked_for: float = 0.0) -> None:
        """Count sends for ``key`` that this limiter did not make itself.

        For a process that starts (or reloads) while WeCom still counts the sends of the one
        before it: without them the first sends of the new window are refused with 45009.

        Args:
            key: the webhook key.
            sent_ago: how many seconds ago each send was made; those a whole window ago or
                more no longer count and are ignored, negative ages count as now.
            blocked_for: block ``key`` for this many seconds from now as well (a 45009 the
                previous process was answered); ``0`` blocks nothing.
        """
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            window = self._rate.window
            seeded = [now - max(age, 0.0) for age in sent_ago if age < window]
            if seeded:
                state.sends = deque(sorted([*state.sends, *seeded]))
            if blocked_for > 0.0:
                state.blocked_until = max(state.blocked_until, now + blocked_for)
            self._forget_if_idle(key, state, now)

    def answered(self, key: str, after: float, *, later: float = 0.0) -> None:
        """A send for ``key`` whose slot was taken ``after`` seconds ago got its answer only now,
        or none (a timeout).

        The server counts a send when it processes it, which may be any moment until now (and
        for a send that got no answer, a while longer: ``later`` seconds, at most a window):
        the send's mark moves there, so the window holds it for a whole window after that (a
        slow answer causes no 45009). The mark nearest ``after`` seconds ago (within
        :data:`MARK_TOLERANCE` of the window) is the one moved; without one (it already left
        the window) a mark is added.
        """
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            taken = now - after
            tolerance = max(MARK_TOLERANCE * self._rate.window, 0.05)
            sends = state.sends
            near = [i for i, at in enumerate(sends) if abs(at - taken) <= tolerance]
            if near:
                del sends[min(near, key=lambda i: abs(sends[i] - taken))]
            bisect.insort(sends, now + min(max(later, 0.0), self._rate.window))

    def penalize(self, key: str, until: float) -> None:
        """Block ``key`` until the clock reads ``until`` (in the limiter's clock's time base).

        A later block is never shortened by an earlier ``until``.
        """
        with self._lock:
            state = self._state(key, self._clock())
            state.blocked_until = max(state.blocked_until, until)

    def record_rejection(self, key: str) -> float:
        """Note that the server answered 45009 for ``key``; returns the seconds it is blocked.

        The server counted sends this limiter did not see (another process, another host), so
        nothing short of a whole window is known to be safe: the key is blocked for one window
        from now.
        """
        with self._lock:
            now = self._clock()
            state = self._state(key, now)
            state.blocked_until = max(state.blocked_until, now + self._rate.window)
            return state.blocked_until - now

    def _exceeded(self, wait: float, max_wait: float) -> RateLimitWaitExceeded:
        return RateLimitWaitExceeded(
            f"rate limit {self._rate}: the next send slot frees in {wait:.3f} s, "
            f"longer than max_wait={max_wait:g} s",
            retry_after=wait,
        )

    def acquire(self, key: str, *, max_wait: float | None = None) -> float:
        """Take a send slot for ``key``, sleeping until one frees.

        Args:
            key: the webhook key.
            max_wait: the longest total wait allowed, in seconds; ``None`` waits as long as needed.

        Returns:
            The seconds waited (``0.0`` when a slot was free).

        Raises:
            RateLimitWaitExceeded: the wait would exceed ``max_wait``; checked before sleeping,
                so no time is wasted. ``retry_after`` tells when a slot frees.
        """
        start = self._clock()
        while True:
            wait = self.try_acquire(key)
            if wait == 0.0:
                return max(self._clock() - start, 0.0)
            if max_wait is not None and (self._clock() - start) + wait > max_wait:
                raise self._exceeded(wait, max_wait)
            self._sleep(wait)

    async def acquire_async(self, key: str, *, max_wait: float | None = None) -> float:
        """The async form of :meth:`acquire`: waits with the injected async sleep."""
        start = self._clock()
        while True:
            wait = self.try_acquire(key)
            if wait == 0.0:
                return max(self._clock() - start, 0.0)
            if max_wait is not None and (self._clock() - start) + wait > max_wait:
                raise self._exceeded(wait, max_wait)
            await self._async_sleep(wait)


async def _asyncio_sleep(seconds: float) -> None:
    # asyncio is imported on first use: a blocking program (the CLI) never needs it.
    import asyncio

    await asyncio.sleep(seconds)


class KeyPool:
    """Several robots in one group: spread sends over their keys, multiplying throughput.

    Each key keeps its own window in the shared limiter. :meth:`acquire` picks the next key in
    round-robin order that has a free slot, so with ``k`` keys up to ``k * limit`` sends fit
    in a window; when every key is full it waits for the earliest slot.

    Args:
        keys: the webhook keys of the robots (distinct, at least one).
        limiter: the limiter that holds the windows; a new default one when omitted.

    Raises:
        ValueError: no keys, or the same key twice (it would not add capacity).
    """

    def __init__(self, keys: Sequence[str], limiter: SlidingWindowLimiter | None = None) -> None:
        keys = list(keys)
        if not keys:
            raise ValueError("a key pool needs at least one key")
        if len(set(keys)) != len(keys):
            raise ValueError("a key pool must not hold the same key twice")
        self._keys = keys
        self._limiter = limiter if limiter is not None else SlidingWindowLimiter()
        self._lock = threading.Lock()
        self._next = 0

    @property
    def keys(self) -> tuple[str, ...]:
        """The pool's keys, in round-robin order."""
        return tuple(self._keys)

    @property
    def limiter(self) -> SlidingWindowLimiter:
        """The limiter that holds the per-key windows."""
        return self._limiter

    def __len__(self) -> int:
        return len(self._keys)

    def try_acquire(self) -> tuple[str | None, float]:
        """Take a slot on the next key with free capacity.

        Returns:
            ``(key, 0.0)`` when a slot was taken, else ``(None, seconds until one frees)``.
        """
        with self._lock:
            count = len(self._keys)
            waits: list[float] = []
            for offset in range(count):
                index = (self._next + offset) % count
                wait = self._limiter.try_acquire(self._keys[index])
                if wait == 0.0:
                    self._next = (index + 1) % count
                    return self._keys[index], 0.0
                waits.append(wait)
            return None, min(waits)

    def wait_time(self) -> float:
        """Seconds until some key of the pool has a free slot (``0.0`` if one has now)."""
        return min(self._limiter.wait_time(key) for key in self._keys)

    def _exceeded(self, wait: float, max_wait: float) -> RateLimitWaitExceeded:
        return RateLimitWaitExceeded(
            f"rate limit {self._limiter.rate} on all {len(self._keys)} keys of the pool: "
            f"the next send slot frees in {wait:.3f} s, longer than max_wait={max_wait:g} s",
            retry_after=wait,
        )

    def acquire(self, *, max_wait: float | None = None) -> str:
        """Take a slot on some key of the pool, sleeping when all are full.

        Args:
            max_wait: the longest total wait allowed, in seconds; ``None`` waits as needed.

        Returns:
            The key to send with.

        Raises:
            RateLimitWaitExceeded: the wait would exceed ``max_wait``.
        """
        clock = self._limiter._clock
        start = clock()
        while True:
            key, wait = self.try_acquire()
            if key is not None:
                return key
            if max_wait is not None and (clock() - start) + wait > max_wait:
                raise self._exceeded(wait, max_wait)
            self._limiter._sleep(wait)

    async def acquire_async(self, *, max_wait: float | None = None) -> str:
        """The async form of :meth:`acquire`."""
        clock = self._limiter._clock
        start = clock()
        while True:
            key, wait = self.try_acquire()
            if key is not None:
                return key
            if max_wait is not None and (clock() - start) + wait > max_wait:
                raise self._exceeded(wait, max_wait)
            await self._limiter._async_sleep(wait)
