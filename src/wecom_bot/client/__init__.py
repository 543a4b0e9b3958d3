"""HTTP clients for the webhook API: :class:`Bot` (blocking) and :class:`AsyncBot` (asyncio)."""

from ..masking import install_log_redaction
from ._async import AsyncBot
from ._core import Endpoint, MediaUpload, SendResult, parse_endpoint
from ._sync import Bot

install_log_redaction()

__all__ = ["AsyncBot", "Bot", "Endpoint", "MediaUpload", "SendResult", "parse_endpoint"]
