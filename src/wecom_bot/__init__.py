"""wecom-bot: typed SDK, CLI, alert gateway and emulator for WeCom group-robot webhooks.

Quick start::

    from wecom_bot import Bot

    bot = Bot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...")
    bot.send_markdown('Deploy <font color="info">done</font>')
"""

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
