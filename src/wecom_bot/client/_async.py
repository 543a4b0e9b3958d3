"""The asyncio client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import DeliveryError
from ..messages import FileMessage, Message, VoiceMessage
from ._base import BotBase
from ._core import (
    Attempts,
    MediaType,
    MediaUpload,
    PreparedRequest,
    SendResult,
    interpret_answer,
    media_upload,
    prepare_send,
    prepare_upload,
    read_media,
    send_result,
    translate_transport_error,
)

if TYPE_CHECKING:
    # httpx (and its CLI: click, rich) costs ~60 ms: imported on first use, not with the package.
    import httpx


class AsyncBot(BotBase[Awaitable[SendResult]]):
    """An asyncio client for one group robot.

    Example::

        bot = AsyncBot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...")
        await bot.send_text("deploy finished", mentioned_list=["@all"])

    Args are those of :class:`~wecom_bot.client._base.BotBase`, plus ``http_client`` to
    supply your own ``httpx.AsyncClient`` (proxies, TLS settings).
    """

    def __init__(
        self, webhook_or_key: str, *, http_client: httpx.AsyncClient | None = None, **options: Any
    ) -> None:
        super().__init__(webhook_or_key, **options)
        self._owns_client = http_client is None
        import httpx

        self._http = http_client or httpx.AsyncClient(timeout=self.timeout)

    async def aclose(self) -> None:
        """Close the HTTP connections (only those the bot opened itself)."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBot:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _execute(self, request: PreparedRequest) -> tuple[dict[str, Any], int]:
        import httpx

        attempts = Attempts(self.retry, self.limiter, self.endpoint.key)
        while True:
            attempts.start()
            if self.limiter is not None:
                await self.limiter.acquire_async(self.endpoint.key, max_wait=self.max_rate_wait)
            try:
                try:
                    answer = await self._http.post(
                        request.url,
                        content=request.content,
                        files=request.files,
                        headers=request.headers,
                        timeout=self.timeout,
                    )
                except httpx.HTTPError as exc:
                    raise translate_transport_error(exc, request.masked_url) from None
                return interpret_answer(
                    answer.status_code, answer.content, request.masked_url
                ), attempts.count
            except DeliveryError as error:
                await asyncio.sleep(attempts.delay_after(error))

    async def send(self, message: Message) -> SendResult:
        """Send a message and return once the API answered ``errcode == 0``.

        Raises:
            DeliveryError: the API rejected it (``WeComAPIError`` with ``.errcode``), or no
                answer came after the retries; ``.retryable`` says whether to try later.
        """
        data, count = await self._execute(prepare_send(self.endpoint, message))
        return send_result(data, count)

    async def upload_media(
        self,
        data_or_path: bytes | str | Path,
        type: MediaType = "file",
        filename: str | None = None,
    ) -> MediaUpload:
        """Upload a file (<= 20 MiB) or an AMR voice (<= 2 MiB); both must exceed 5 bytes.

        Raises:
            MediaValidationError: a size or format rule is broken (no request is made).
            DeliveryError: the API refused the upload.
        """
        data, name = read_media(data_or_path, filename)
        answer, _ = await self._execute(prepare_upload(self.endpoint, data, type, name))
        return media_upload(answer)

    async def send_file(
        self, data_or_path: bytes | str | Path, filename: str | None = None
    ) -> SendResult:
        """Upload a file, then send it as a file message."""
        media = await self.upload_media(data_or_path, "file", filename)
        return await self.send(FileMessage(media_id=media.media_id))

    async def send_voice(
        self, data_or_path: bytes | str | Path, filename: str | None = None
    ) -> SendResult:
        """Upload an AMR voice recording, then send it as a voice message."""
        media = await self.upload_media(data_or_path, "voice", filename)
        return await self.send(VoiceMessage(media_id=media.media_id))
