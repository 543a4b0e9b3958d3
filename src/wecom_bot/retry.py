"""Retry policy: given a failed attempt and its error, the delay before the next one or give up.

The policy never sleeps and never sends; the SDK and the dispatcher ask it and do the waiting
themselves (sync or async), so it is the same decision everywhere and tests run without time.

What is retried is decided by the one attribute :attr:`wecom_bot.errors.DeliveryError.retryable`
(transport errors, timeouts, HTTP 5xx / 408 / 429, errcode -1 and 45009). Everything else —
an invalid key, a validation error, any other errcode, an exception that is not a
``DeliveryError`` — is permanent: trying the same request again cannot succeed.

Errcode 45009 is not a fault to back off from but a statement about time: the key's window is
full. The delay is the time until the window frees (the limiter's ``retry_after`` when it is
known, else one whole window), never a blind exponential guess that would retry too early.

Backoff uses *equal jitter*: ``d = min(max_delay, base_delay * multiplier ** (attempt - 1))``
and the delay is uniform in ``[d / 2, d]``. Full jitter (uniform in ``[0, d]``) spreads load a
little better when many clients contend, but it draws delays near zero as often as any other;
here the typical failure is one busy or unreachable endpoint and the attempts are few (six by
default), so a retry that comes back after a few milliseconds is a wasted attempt. Equal jitter
keeps at least half the backoff and still de-synchronises workers over the other half.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from . import limits
from .errors import DeliveryError, WeComAPIError

__all__ = ["RetryPolicy"]


def _is_rate_limited(error: BaseException) -> bool:
    return isinstance(error, WeComAPIError) and error.errcode == limits.ERRCODE_RATE_LIMITED


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with equal jitter, and window-aware waits for 45009.

    Attributes:
        max_attempts: attempts in total, the first one included (at least 1).
        base_delay: the backoff before the second attempt, before jitter, in seconds.
        max_delay: the cap of the backoff, before jitter, in seconds.
        multiplier: the growth of the backoff per attempt (at least 1).
        jitter: returns a number in ``[0, 1)``; injected so tests are deterministic.
        rate_window: the rate-limit window in seconds, the wait after a 45009 when the caller
            does not know better.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: Callable[[], float] = field(default=random.random, compare=False)
    rate_window: float = limits.RATE_LIMIT_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0:
            raise ValueError(f"base_delay must be >= 0, got {self.base_delay}")
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) must be >= base_delay ({self.base_delay})"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not self.rate_window > 0:
            raise ValueError(f"rate_window must be > 0, got {self.rate_window}")

    @staticmethod
    def is_retryable(error: BaseException) -> bool:
        """Whether the same request may succeed later (a retryable ``DeliveryError``)."""
        return isinstance(error, DeliveryError) and error.retryable

    def backoff(self, attempt: int) -> float:
        """The capped backoff after failed attempt number ``attempt``, before jitter."""
        try:
            delay = self.base_delay * self.multiplier ** (attempt - 1)
        except OverflowError:
            return self.max_delay
        return min(self.max_delay, delay)

    def decide(
        self, attempt: int, error: BaseException, *, retry_after: float | None = None
    ) -> float | None:
        """Decide what to do after attempt number ``attempt`` failed with ``error``.

        Args:
            attempt: the number of the attempt that just failed, starting at 1.
            error: what it failed with.
            retry_after: seconds before which a retry cannot succeed, when known: for 45009
                the limiter's time until the window frees; for other errors a server hint
                (the delay is then at least this long).

        Returns:
            The seconds to wait before the next attempt, or ``None`` to give up: the error is
            permanent or ``max_attempts`` attempts have been made.

        Raises:
            ValueError: ``attempt`` is less than 1.
        """
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        if attempt >= self.max_attempts or not self.is_retryable(error):
            return None
        if _is_rate_limited(error):
            return max(retry_after, 0.0) if retry_after is not None else self.rate_window
        ceiling = self.backoff(attempt)
        share = min(max(self.jitter(), 0.0), 1.0)
        delay = ceiling / 2 + share * ceiling / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
