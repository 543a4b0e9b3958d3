"""The emulator's per-key rate limit: a sliding window over accepted messages.

WeCom documents "20 messages per minute per robot" without saying whether the minute is a
fixed or a sliding window; the emulator takes the stricter reading (never more than ``limit``
accepted messages in any ``window_seconds``), so a client that passes here passes WeCom.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .. import limits
from ..errors import ConfigError

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|min|h)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_OFF = {"off", "none", "no", "0", "false"}


@dataclass(frozen=True)
class RateSpec:
    """At most ``limit`` accepted messages per key in any ``window_seconds``.

    Attributes:
        limit: messages allowed in one window (WeCom: 20).
        window_seconds: the window length (WeCom: 60 s).
    """

    limit: int = limits.RATE_LIMIT_MESSAGES
    window_seconds: float = limits.RATE_LIMIT_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ConfigError(f"rate limit must allow at least 1 message, got {self.limit}")
        if not self.window_seconds > 0:
            raise ConfigError(f"rate window must be positive, got {self.window_seconds}")

    @classmethod
    def parse(cls, text: str) -> RateSpec | None:
        """Parse ``"20/60s"``, ``"20/1s"``, ``"5/500ms"``, ``"20/m"``; ``"off"`` gives None.

        Raises:
            ConfigError: the text is not of the form ``N/<number><ms|s|m|h>``.
        """
        if text.strip().lower() in _OFF:
            return None
        match = _RATE.match(text)
        if match is None:
            raise ConfigError(
                f"rate must look like 20/60s (messages per window; units ms, s, m, h) "
                f"or 'off', got {text!r}"
            )
        count, number, unit = match.groups()
        window = float(number or 1) * _UNIT_SECONDS[unit.lower()]
        return cls(limit=int(count), window_seconds=window)

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_seconds:g}s"


class SlidingWindowLimiter:
    """Counts accepted messages per group in a sliding window.

    Not thread-safe by design: the emulator calls it from its event loop only, and the check
    and the record happen in one call so two concurrent requests cannot both take the last slot.

    Args:
        spec: how many messages per window.
        clock: monotonic seconds (injected so tests need not sleep).
    """

    def __init__(self, spec: RateSpec, clock: Callable[[], float]) -> None:
        self.spec = spec
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def try_acquire(self, group_id: str) -> float:
        """Record one message for ``group_id`` if the window has room.

        Returns:
            0.0 when the message is admitted (and counted); otherwise the seconds until the
            oldest message in the window leaves it (nothing is counted).
        """
        now = self._clock()
        sent = self._sent.setdefault(group_id, deque())
        horizon = now - self.spec.window_seconds
        while sent and sent[0] <= horizon:
            sent.popleft()
        if len(sent) >= self.spec.limit:
            return max(sent[0] - horizon, 0.0) or 1e-6
        sent.append(now)
        if len(self._sent) > 10_000:
            self._forget_idle(horizon)
        return 0.0

    def reset(self, group_id: str | None = None) -> None:
        """Forget the history of one group, or of every group."""
        if group_id is None:
            self._sent.clear()
        else:
            self._sent.pop(group_id, None)

    def _forget_idle(self, horizon: float) -> None:
        # Bounds memory when many distinct keys are used (fuzzing, load tests).
        for gid in [g for g, sent in self._sent.items() if not sent or sent[-1] <= horizon]:
            del self._sent[gid]
