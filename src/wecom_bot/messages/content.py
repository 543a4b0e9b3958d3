"""Messages whose body is a ``content`` string: text, markdown and markdown_v2."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator

from .. import limits
from ._base import Message, check_content, check_string_list


class TextMessage(Message):
    """Plain text, at most 2048 UTF-8 bytes, with optional @mentions.

    Args:
        content: the text.
        mentioned_list: userids to @mention; ``"@all"`` mentions everyone.
        mentioned_mobile_list: mobile numbers to @mention; ``"@all"`` mentions everyone.
    """

    msgtype: ClassVar[str] = "text"
    content: str
    mentioned_list: list[str] | None = None
    mentioned_mobile_list: list[str] | None = None

    @field_validator("content")
    @classmethod
    def _check_content(cls, value: str) -> str:
        return check_content(value, limits.TEXT_CONTENT_MAX_BYTES)

    @field_validator("mentioned_list", "mentioned_mobile_list", mode="before")
    @classmethod
    def _check_mentions(cls, value: object) -> object:
        return check_string_list(value)


class MarkdownMessage(Message):
    """Markdown in WeCom's legacy subset, at most 4096 UTF-8 bytes.

    Supports headings 1-6, bold, links, inline code, quotes, ``<font color="info|comment|warning">``
    and ``<@userid>`` mentions.
    """

    msgtype: ClassVar[str] = "markdown"
    content: str

    @field_validator("content")
    @classmethod
    def _check_content(cls, value: str) -> str:
        return check_content(value, limits.MARKDOWN_CONTENT_MAX_BYTES)


class MarkdownV2Message(Message):
    """Markdown v2 (tables, lists, code blocks, images), at most 4096 UTF-8 bytes.

    It has no font colours and no @mentions; clients older than 4.1.36 show it as plain text.
    """

    msgtype: ClassVar[str] = "markdown_v2"
    content: str

    @field_validator("content")
    @classmethod
    def _check_content(cls, value: str) -> str:
        return check_content(value, limits.MARKDOWN_V2_CONTENT_MAX_BYTES)
