"""Every documented limit of the WeCom group-robot webhook API, in one place.

Byte limits are UTF-8 bytes, never characters. "Advised" lengths are display advice
from the spec (characters): exceeding them is not an error, only a warning.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://qyapi.weixin.qq.com"
SEND_PATH: Final = "/cgi-bin/webhook/send"
UPLOAD_PATH: Final = "/cgi-bin/webhook/upload_media"

# -- content, in UTF-8 bytes --------------------------------------------------
TEXT_CONTENT_MAX_BYTES: Final = 2048
MARKDOWN_CONTENT_MAX_BYTES: Final = 4096
MARKDOWN_V2_CONTENT_MAX_BYTES: Final = 4096
# Not documented: the live server has been seen to refuse text only above this (reference.md).
TEXT_CONTENT_LIVE_MAX_BYTES: Final = 5120

# -- news ------------------------------------------------------------------
NEWS_MIN_ARTICLES: Final = 1
NEWS_MAX_ARTICLES: Final = 8
NEWS_TITLE_MAX_BYTES: Final = 128  # the server truncates, it does not reject
NEWS_DESCRIPTION_MAX_BYTES: Final = 512  # likewise

# -- image -------------------------------------------------------------------
IMAGE_MAX_BYTES: Final = 2 * 1024 * 1024  # before base64

# -- media upload ------------------------------------------------------------
UPLOAD_MIN_BYTES_EXCLUSIVE: Final = 5  # every upload must be larger than 5 bytes
FILE_MAX_BYTES: Final = 20 * 1024 * 1024
VOICE_MAX_BYTES: Final = 2 * 1024 * 1024
VOICE_MAX_SECONDS: Final = 60
MEDIA_TTL_SECONDS: Final = 3 * 24 * 3600
UPLOAD_TYPES: Final = ("file", "voice")

# -- template cards ------------------------------------------------------------
CARD_TYPES: Final = ("text_notice", "news_notice")
HORIZONTAL_CONTENT_MAX_ITEMS: Final = 6
JUMP_LIST_MAX_ITEMS: Final = 3
VERTICAL_CONTENT_MAX_ITEMS: Final = 4
CARD_IMAGE_ASPECT_RATIO_MIN: Final = 1.3
CARD_IMAGE_ASPECT_RATIO_MAX: Final = 2.25
CARD_IMAGE_ASPECT_RATIO_DEFAULT: Final = 1.3
SOURCE_DESC_COLORS: Final = (0, 1, 2, 3)  # grey (default), black, red, green

# Advised display lengths in characters (warn, never reject).
ADVISED_SOURCE_DESC_CHARS: Final = 13
ADVISED_MAIN_TITLE_CHARS: Final = 26
ADVISED_MAIN_TITLE_DESC_CHARS: Final = 30
ADVISED_EMPHASIS_TITLE_CHARS: Final = 10
ADVISED_EMPHASIS_DESC_CHARS: Final = 15
ADVISED_SUB_TITLE_TEXT_CHARS: Final = 112
ADVISED_HORIZONTAL_KEYNAME_CHARS: Final = 5
ADVISED_HORIZONTAL_VALUE_CHARS: Final = 26
ADVISED_JUMP_TITLE_CHARS: Final = 13
ADVISED_VERTICAL_TITLE_CHARS: Final = 26
ADVISED_VERTICAL_DESC_CHARS: Final = 112

# -- rate limit ----------------------------------------------------------------
RATE_LIMIT_MESSAGES: Final = 20
RATE_LIMIT_WINDOW_SECONDS: Final = 60.0

# -- error codes of the webhook API (see spec/reference.md) ---------------------
ERRCODE_OK: Final = 0
ERRCODE_SYSTEM_BUSY: Final = -1
ERRCODE_INVALID_MEDIA_TYPE: Final = 40004
ERRCODE_INVALID_MEDIA_ID: Final = 40007
ERRCODE_INVALID_MESSAGE_TYPE: Final = 40008
ERRCODE_INVALID_PARAMETER: Final = 40058
ERRCODE_EMPTY_MEDIA: Final = 44001
ERRCODE_EMPTY_CONTENT: Final = 44004
ERRCODE_RATE_LIMITED: Final = 45009
ERRCODE_INVALID_WEBHOOK_URL: Final = 93000
ERRCODE_MEDIA_MD5_MISMATCH: Final = 301019

CONTENT_LIMITS: Final = {
    "text": TEXT_CONTENT_MAX_BYTES,
    "markdown": MARKDOWN_CONTENT_MAX_BYTES,
    "markdown_v2": MARKDOWN_V2_CONTENT_MAX_BYTES,
}
"""Content byte limit per msgtype that carries a ``content`` field."""


def utf8_len(text: str) -> int:
    """Return the length of ``text`` in UTF-8 bytes (the unit of every WeCom limit)."""
    return len(text.encode("utf-8"))


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")
