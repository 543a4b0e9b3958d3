"""The news message: one to eight articles with title, link, description and picture."""

from __future__ import annotations

import warnings
from typing import ClassVar

from pydantic import Field, field_validator

from .. import limits
from ..errors import Rule
from ._base import ApiModel, Message, TruncatedWarning, fail


def _truncate(value: str, max_bytes: int, name: str) -> str:
    cut = limits.truncate_utf8(value, max_bytes)
    if cut != value:
        warnings.warn(
            f"news article {name} is {limits.utf8_len(value)} bytes; cut to "
            f"{limits.utf8_len(cut)} bytes (limit {max_bytes}), as the WeCom server does",
            TruncatedWarning,
            stacklevel=2,
        )
    return cut


class Article(ApiModel):
    """One article of a news message.

    Args:
        title: required; over 128 bytes it is cut at a character boundary (with a warning).
        url: required; where a click leads.
        description: optional; over 512 bytes it is cut likewise.
        picurl: optional JPG/PNG picture URL (best 1068x455 for the first, 150x150 for others).
    """

    api_path: ClassVar[str] = "news.articles[]"

    title: str
    url: str
    description: str | None = None
    picurl: str | None = None

    @field_validator("title")
    @classmethod
    def _check_title(cls, value: str) -> str:
        if not value:
            raise fail(Rule.EMPTY, "must not be empty")
        return _truncate(value, limits.NEWS_TITLE_MAX_BYTES, "title")

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _truncate(value, limits.NEWS_DESCRIPTION_MAX_BYTES, "description")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value:
            raise fail(Rule.EMPTY, "must not be empty")
        return value


class NewsMessage(Message):
    """A news message with 1 to 8 articles; the first is shown large."""

    msgtype: ClassVar[str] = "news"
    articles: list[Article] = Field(
        min_length=limits.NEWS_MIN_ARTICLES, max_length=limits.NEWS_MAX_ARTICLES
    )
