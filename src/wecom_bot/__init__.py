"""wecom-bot: typed SDK, CLI, alert gateway and emulator for WeCom group-robot webhooks.

Quick start::

    from wecom_bot import Bot

    bot = Bot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...")
    bot.send_markdown('Deploy <font color="info">done</font>')
"""

# The names below are loaded on first use (PEP 562): `import wecom_bot` stays as cheap as a
# script tool needs, and a program pays for the pydantic models and httpx only when it uses them.

import importlib
import typing

if typing.TYPE_CHECKING:
    from .client import AsyncBot, Bot, MediaUpload, SendResult
    from .errors import (
        ConfigError,
        DeliveryError,
        HTTPStatusError,
        InvalidKeyError,
        MediaValidationError,
        MessageValidationError,
        RateLimitedError,
        RateLimitWaitExceeded,
        RequestTimeout,
        TransportError,
        UnexpectedAnswerError,
        WeComAPIError,
        WeComBotError,
    )
    from .masking import mask_key
    from .messages import (
        Article,
        CardAction,
        CardImage,
        EmphasisContent,
        FileMessage,
        HorizontalContent,
        ImageMessage,
        ImageTextArea,
        JumpItem,
        MainTitle,
        MarkdownMessage,
        MarkdownV2Message,
        Message,
        NewsMessage,
        NewsNoticeCard,
        QuoteArea,
        Source,
        TextMessage,
        TextNoticeCard,
        TruncatedWarning,
        VerticalContent,
        VoiceMessage,
        parse_message,
    )
    from .ratelimit import KeyPool, Rate, SlidingWindowLimiter, parse_rate
    from .retry import RetryPolicy
    from .split import SplitPart, plan_split, split_content, split_message, split_to_messages

__version__ = "0.1.0"

_WHERE: dict[str, str] = {
    "Article": "wecom_bot.messages",
    "AsyncBot": "wecom_bot.client",
    "Bot": "wecom_bot.client",
    "CardAction": "wecom_bot.messages",
    "CardImage": "wecom_bot.messages",
    "ConfigError": "wecom_bot.errors",
    "DeliveryError": "wecom_bot.errors",
    "EmphasisContent": "wecom_bot.messages",
    "FileMessage": "wecom_bot.messages",
    "HTTPStatusError": "wecom_bot.errors",
    "HorizontalContent": "wecom_bot.messages",
    "ImageMessage": "wecom_bot.messages",
    "ImageTextArea": "wecom_bot.messages",
    "InvalidKeyError": "wecom_bot.errors",
    "JumpItem": "wecom_bot.messages",
    "KeyPool": "wecom_bot.ratelimit",
    "MainTitle": "wecom_bot.messages",
    "MarkdownMessage": "wecom_bot.messages",
    "MarkdownV2Message": "wecom_bot.messages",
    "MediaUpload": "wecom_bot.client",
    "MediaValidationError": "wecom_bot.errors",
    "Message": "wecom_bot.messages",
    "MessageValidationError": "wecom_bot.errors",
    "NewsMessage": "wecom_bot.messages",
    "NewsNoticeCard": "wecom_bot.messages",
    "QuoteArea": "wecom_bot.messages",
    "Rate": "wecom_bot.ratelimit",
    "RateLimitWaitExceeded": "wecom_bot.errors",
    "RateLimitedError": "wecom_bot.errors",
    "RequestTimeout": "wecom_bot.errors",
    "RetryPolicy": "wecom_bot.retry",
    "SendResult": "wecom_bot.client",
    "SlidingWindowLimiter": "wecom_bot.ratelimit",
    "Source": "wecom_bot.messages",
    "SplitPart": "wecom_bot.split",
    "TextMessage": "wecom_bot.messages",
    "TextNoticeCard": "wecom_bot.messages",
    "TransportError": "wecom_bot.errors",
    "TruncatedWarning": "wecom_bot.messages",
    "UnexpectedAnswerError": "wecom_bot.errors",
    "VerticalContent": "wecom_bot.messages",
    "VoiceMessage": "wecom_bot.messages",
    "WeComAPIError": "wecom_bot.errors",
    "WeComBotError": "wecom_bot.errors",
    "mask_key": "wecom_bot.masking",
    "parse_message": "wecom_bot.messages",
    "parse_rate": "wecom_bot.ratelimit",
    "plan_split": "wecom_bot.split",
    "split_content": "wecom_bot.split",
    "split_message": "wecom_bot.split",
    "split_to_messages": "wecom_bot.split",
}

__all__ = [
    "Article",
    "AsyncBot",
    "Bot",
    "CardAction",
    "CardImage",
    "ConfigError",
    "DeliveryError",
    "EmphasisContent",
    "FileMessage",
    "HTTPStatusError",
    "HorizontalContent",
    "ImageMessage",
    "ImageTextArea",
    "InvalidKeyError",
    "JumpItem",
    "KeyPool",
    "MainTitle",
    "MarkdownMessage",
    "MarkdownV2Message",
    "MediaUpload",
    "MediaValidationError",
    "Message",
    "MessageValidationError",
    "NewsMessage",
    "NewsNoticeCard",
    "QuoteArea",
    "Rate",
    "RateLimitWaitExceeded",
    "RateLimitedError",
    "RequestTimeout",
    "RetryPolicy",
    "SendResult",
    "SlidingWindowLimiter",
    "Source",
    "SplitPart",
    "TextMessage",
    "TextNoticeCard",
    "TransportError",
    "TruncatedWarning",
    "UnexpectedAnswerError",
    "VerticalContent",
    "VoiceMessage",
    "WeComAPIError",
    "WeComBotError",
    "__version__",
    "mask_key",
    "parse_message",
    "parse_rate",
    "plan_split",
    "split_content",
    "split_message",
    "split_to_messages",
]


def __getattr__(name: str) -> object:
    """Load a public name from its module on first access."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'wecom_bot' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
