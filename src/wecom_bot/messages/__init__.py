"""Message models, one per webhook message type, validated when built.

Build a message with keywords (``TextMessage(content="hi")``), or validate a raw API payload
with :func:`parse_message`. ``to_payload()`` gives the exact JSON the API expects.
"""

from ._base import Message, TruncatedWarning
from ._parse import MSGTYPES, parse_message
from .cards import (
    CardAction,
    CardImage,
    EmphasisContent,
    HorizontalContent,
    ImageTextArea,
    JumpItem,
    MainTitle,
    NewsNoticeCard,
    QuoteArea,
    Source,
    TemplateCard,
    TextNoticeCard,
    VerticalContent,
)
from .content import MarkdownMessage, MarkdownV2Message, TextMessage
from .media import FileMessage, ImageMessage, VoiceMessage, image_format
from .news import Article, NewsMessage

__all__ = [
    "MSGTYPES",
    "Article",
    "CardAction",
    "CardImage",
    "EmphasisContent",
    "FileMessage",
    "HorizontalContent",
    "ImageMessage",
    "ImageTextArea",
    "JumpItem",
    "MainTitle",
    "MarkdownMessage",
    "MarkdownV2Message",
    "Message",
    "NewsMessage",
    "NewsNoticeCard",
    "QuoteArea",
    "Source",
    "TemplateCard",
    "TextMessage",
    "TextNoticeCard",
    "TruncatedWarning",
    "VerticalContent",
    "VoiceMessage",
    "image_format",
    "parse_message",
]
