"""What the sync and async clients share beyond the core: construction and message helpers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import limits
from ..messages import (
    Article,
    ImageMessage,
    MarkdownMessage,
    MarkdownV2Message,
    Message,
    NewsMessage,
    TemplateCard,
    TextMessage,
)
from ..messages._base import as_list
from ._core import DEFAULT_TIMEOUT, Endpoint, parse_endpoint

if TYPE_CHECKING:
    from ..ratelimit import SlidingWindowLimiter
    from ..retry import RetryPolicy

R = TypeVar("R")


def build_limiter(rate_limit: bool | str | SlidingWindowLimiter) -> SlidingWindowLimiter | None:
    """Turn the ``rate_limit`` argument of a client into a limiter (or None)."""
    from ..ratelimit import Rate, SlidingWindowLimiter, parse_rate

    if rate_limit is False:
        return None
    if rate_limit is True:
        return SlidingWindowLimiter(
            Rate(limits.RATE_LIMIT_MESSAGES, limits.RATE_LIMIT_WINDOW_SECONDS)
        )
    if isinstance(rate_limit, str):
        return SlidingWindowLimiter(parse_rate(rate_limit))
    return rate_limit


def default_retry() -> RetryPolicy:
    """The retry policy clients use unless told otherwise."""
    from ..retry import RetryPolicy

    return RetryPolicy()


class BotBase(ABC, Generic[R]):
    """Construction and per-type helpers shared by :class:`Bot` and :class:`AsyncBot`.

    Args:
        webhook_or_key: the full webhook URL, or the key alone.
        base_url: API base URL (a proxy, or ``wecom-bot emulator``); default WeCom's.
        timeout: seconds for each request.
        rate_limit: ``True`` waits locally to stay within 20 messages per 60 s per key;
            a string like ``"20/1s"`` sets another window (tests); or a shared limiter.
        retry: the retry policy; ``None`` disables retries. Default: retry transport
            errors, HTTP 5xx, errcode -1 and 45009 with capped backoff.
        max_rate_wait: the longest a send waits for the local limiter (seconds), None = no cap.
    """

    def __init__(
        self,
        webhook_or_key: str,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        rate_limit: bool | str | SlidingWindowLimiter = False,
        retry: RetryPolicy | None | bool = True,
        max_rate_wait: float | None = None,
    ) -> None:
        self.endpoint: Endpoint = parse_endpoint(webhook_or_key, base_url)
        self.timeout = timeout
        self.limiter = build_limiter(rate_limit)
        if retry is True:
            self.retry: RetryPolicy | None = default_retry()
        elif retry is False:
            self.retry = None
        else:
            self.retry = retry
        self.max_rate_wait = max_rate_wait

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key={self.endpoint.masked_key!r}, "
            f"base_url={self.endpoint.base_url!r})"
        )

    @abstractmethod
    def send(self, message: Message) -> R:
        """Send a message; success means ``errcode == 0``."""

    def send_text(
        self,
        content: str,
        *,
        mentioned_list: list[str] | tuple[str, ...] | None = None,
        mentioned_mobile_list: list[str] | tuple[str, ...] | None = None,
    ) -> R:
        """Send a text message (<= 2048 UTF-8 bytes), optionally @mentioning people or ``@all``.

        Raises:
            MessageValidationError: the content is too long, or a mention list is not a
                list (a bare ``"alice"`` is refused rather than read as five letters).
        """
        return self.send(
            TextMessage(
                content=content,
                mentioned_list=as_list(mentioned_list),
                mentioned_mobile_list=as_list(mentioned_mobile_list),
            )
        )

    def send_markdown(self, content: str) -> R:
        """Send markdown in WeCom's legacy subset (<= 4096 bytes; colours, ``<@userid>``)."""
        return self.send(MarkdownMessage(content=content))

    def send_markdown_v2(self, content: str) -> R:
        """Send markdown v2 (<= 4096 bytes; tables, lists, code blocks; no mentions)."""
        return self.send(MarkdownV2Message(content=content))

    def send_image(self, data_or_path: bytes | str | Path) -> R:
        """Send a JPG/PNG image (<= 2 MiB) given as bytes or a file path."""
        if isinstance(data_or_path, bytes | bytearray):
            return self.send(ImageMessage.from_bytes(bytes(data_or_path)))
        return self.send(ImageMessage.from_path(data_or_path))

    def send_news(self, articles: Sequence[Article | dict[str, Any]]) -> R:
        """Send 1 to 8 news articles (dicts or :class:`Article`)."""
        items = [a if isinstance(a, Article) else Article(**a) for a in articles]
        return self.send(NewsMessage(articles=items))

    def send_template_card(self, card: TemplateCard) -> R:
        """Send a ``text_notice`` or ``news_notice`` template card."""
        return self.send(card)
