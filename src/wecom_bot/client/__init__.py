"""HTTP clients for the webhook API: :class:`Bot` (blocking) and :class:`AsyncBot` (asyncio)."""

from typing import TYPE_CHECKING

from ..masking import install_log_redaction
from ._core import Endpoint, MediaUpload, SendResult, parse_endpoint
from ._sync import Bot

if TYPE_CHECKING:
    from ._async import AsyncBot

install_log_redaction()

__all__ = ["AsyncBot", "Bot", "Endpoint", "MediaUpload", "SendResult", "parse_endpoint"]


def __getattr__(name: str) -> object:
    # AsyncBot brings asyncio (~10 ms): loaded when asked for, so the blocking CLI skips it.
    if name == "AsyncBot":
        from ._async import AsyncBot

        globals()["AsyncBot"] = AsyncBot
        return AsyncBot
    raise AttributeError(f"module 'wecom_bot.client' has no attribute {name!r}")
