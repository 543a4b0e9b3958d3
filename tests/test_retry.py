"""Retry decisions per error class, backoff cap and jitter bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wecom_bot.errors import (
    DeliveryError,
    HTTPStatusError,
    InvalidKeyError,
    MessageValidationError,
    RateLimitWaitExceeded,
    RequestTimeout,
    TransportError,
    WeComAPIError,
    api_error,
)
from wecom_bot.retry import RetryPolicy

LOW = RetryPolicy(jitter=lambda: 0.0)
HIGH = RetryPolicy(jitter=lambda: 1.0)

RETRYABLE = [
    TransportError("connection reset"),
    RequestTimeout("no answer in 10 s"),
    HTTPStatusError(500),
    HTTPStatusError(502),
    HTTPStatusError(503),
    HTTPStatusError(429),
    api_error(-1, "system busy"),
]
PERMANENT = [
    api_error(93000, "invalid webhook url"),
    api_error(40058, "markdown.content exceed max length 4096. invalid Request Parameter"),
    api_error(40008, "invalid message type"),
    api_error(44004, "empty content"),
    api_error(301019, "media md5 not match"),
    api_error(40007, "invalid media_id"),
    api_error(123456, "a code nobody documented"),
    HTTPStatusError(400),
    HTTPStatusError(404),
    MessageValidationError("text.content: is 3000 bytes (UTF-8), limit 2048 bytes"),
    DeliveryError("some delivery failure that is not retryable"),
    RateLimitWaitExceeded("local limiter would wait 50 s", retry_after=50.0),
    ValueError("a bug in the caller"),
    KeyboardInterrupt(),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=repr)
def test_transient_errors_are_retried_with_backoff(error: BaseException) -> None:
    assert LOW.decide(1, error) == pytest.approx(0.25)
    assert HIGH.decide(1, error) == pytest.approx(0.5)
    assert HIGH.decide(3, error) == pytest.approx(2.0)


@pytest.mark.parametrize("error", PERMANENT, ids=repr)
def test_permanent_errors_give_up_at_once(error: BaseException) -> None:
    assert HIGH.decide(1, error) is None
    assert HIGH.decide(1, error, retry_after=1.0) is None


def test_rate_limited_waits_for_the_window_not_for_backoff() -> None:
    error = api_error(45009, "api freq out of limit")
    assert isinstance(error, WeComAPIError) and error.retryable
    # Without the limiter's estimate: a whole window, whatever the attempt number.
    assert LOW.decide(1, error) == 60.0
    assert LOW.decide(5, error) == 60.0
    # With it: exactly that, no jitter, and not capped by max_delay (30 s).
    assert HIGH.decide(1, error, retry_after=42.5) == 42.5
    assert HIGH.decide(2, error, retry_after=0.0) == 0.0
    assert RetryPolicy(rate_window=1.0).decide(1, error) == 1.0
    # It still counts as an attempt.
    assert HIGH.decide(6, error, retry_after=1.0) is None


def test_retry_after_is_a_floor_for_other_retryable_errors() -> None:
    assert LOW.decide(1, HTTPStatusError(429), retry_after=7.0) == 7.0
    assert HIGH.decide(4, HTTPStatusError(503), retry_after=1.0) == pytest.approx(4.0)


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, jitter=lambda: 0.5)
    error = TransportError("reset")
    assert policy.decide(1, error) is not None
    assert policy.decide(2, error) is not None
    assert policy.decide(3, error) is None
    assert RetryPolicy(max_attempts=1).decide(1, error) is None


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=100)
    ceilings = [policy.backoff(a) for a in range(1, 10)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert policy.backoff(5000) == 30.0  # no overflow on absurd attempt numbers
    assert RetryPolicy(multiplier=1e10).backoff(400) == 30.0


@given(
    attempt=st.integers(min_value=1, max_value=60),
    share=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_equal_jitter_bounds(attempt: int, share: float) -> None:
    policy = RetryPolicy(max_attempts=100, jitter=lambda: share)
    delay = policy.decide(attempt, RequestTimeout("timeout"))
    ceiling = min(30.0, 0.5 * 2.0 ** (attempt - 1))
    assert delay is not None
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= policy.max_delay


def test_out_of_range_jitter_is_clamped() -> None:
    assert RetryPolicy(jitter=lambda: 7.0).decide(1, TransportError("x")) == pytest.approx(0.5)
    assert RetryPolicy(jitter=lambda: -3.0).decide(1, TransportError("x")) == pytest.approx(0.25)


def test_default_jitter_is_random_within_bounds() -> None:
    policy = RetryPolicy()
    delays = {policy.decide(2, TransportError("x")) for _ in range(50)}
    assert all(d is not None and 0.5 <= d <= 1.0 for d in delays)
    assert len(delays) > 1


def test_is_retryable_reads_the_single_attribute() -> None:
    assert RetryPolicy.is_retryable(HTTPStatusError(503))
    assert not RetryPolicy.is_retryable(InvalidKeyError(93000, "invalid webhook url"))
    assert not RetryPolicy.is_retryable(OSError("not translated at the boundary"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": -1.0},
        {"base_delay": 5.0, "max_delay": 1.0},
        {"multiplier": 0.5},
        {"rate_window": 0.0},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        LOW.decide(0, TransportError("x"))
