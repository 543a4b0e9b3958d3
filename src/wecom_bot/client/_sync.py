"""The blocking client."""

from __future__ import annotations

import time
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


class Bot(BotBase[SendResult]):
    """A blocking client for one group robot.

    Example::

        bot = Bot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...")
        bot.send_text("deploy finished", mentioned_list=["@all"])

    Args are those of :class:`~wecom_bot.client._base.BotBase`, plus ``http_client`` to
    supply your own ``httpx.Client`` (proxies, TLS settings).
    """

    def __init__(
        self, webhook_or_key: str, *, http_client: httpx.Client | None = None, **options: Any
    ) -> None:
        super().__init__(webhook_or_key, **options)
        self._owns_client = http_client is None
        import httpx

        self._http = http_client or httpx.Client(timeout=self.timeout)

    def close(self) -> None:
        """Close the HTTP connections (only those the bot opened itself)."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> Bot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _execute(self, request: PreparedRequest) -> tuple[dict[str, Any], int]:
        import httpx

        attempts = Attempts(self.retry, self.limiter, self.endpoint.key)
        while True:
            attempts.start()
            if self.limiter is not None:
                self.limiter.acquire(self.endpoint.key, max_wait=self.max_rate_wait)
            try:
                try:
                    answer = self._http.post(
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
                time.sleep(attempts.delay_after(error))

    def send(self, message: Message) -> SendResult:
        """Send a message and return once the API answered ``errcode == 0``.

        Raises:
            DeliveryError: the API rejected it (``WeComAPIError`` with ``.errcode``), or no
                answer came after the retries; ``.retryable`` says whether to try later.
        """
        data, count = self._execute(prepare_send(self.endpoint, message))
        return send_result(data, count)

    def upload_media(
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
        answer, _ = self._execute(prepare_upload(self.endpoint, data, type, name))
        return media_upload(answer)

    def send_file(
        self, data_or_path: bytes | str | Path, filename: str | None = None
    ) -> SendResult:
        """Upload a file, then send it as a file message."""
        media = self.upload_media(data_or_path, "file", filename)
        return self.send(FileMessage(media_id=media.media_id))

    def send_voice(
        self, data_or_path: bytes | str | Path, filename: str | None = None
    ) -> SendResult:
        """Upload an AMR voice recording, then send it as a voice message."""
        media = self.upload_media(data_or_path, "voice", filename)
        return self.send(VoiceMessage(media_id=media.media_id))
