"""The I/O-free core shared by the sync and async clients.

It builds requests, validates uploads, interprets answers and decides on retries. The
shells in ``_sync`` and ``_async`` only send and sleep.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

from .. import limits
from ..errors import (
    ConfigError,
    DeliveryError,
    HTTPStatusError,
    MediaValidationError,
    RequestTimeout,
    Rule,
    TransportError,
    UnexpectedAnswerError,
    ValidationIssue,
    api_error,
)
from ..masking import mask_key, mask_url
from ..messages import Message

if TYPE_CHECKING:
    import httpx

    from ..ratelimit import SlidingWindowLimiter
    from ..retry import RetryPolicy

logger = logging.getLogger("wecom_bot.client")

MediaType = Literal["file", "voice"]
DEFAULT_TIMEOUT = 10.0
_AMR_MAGIC = b"#!AMR"
_KEY_SHAPE = re.compile(r"^[A-Za-z0-9_\-]+$")
_HINT = re.compile(r",\s*hint:.*$", re.DOTALL)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class SendResult:
    """A message accepted by the API (``errcode == 0``).

    Attributes:
        errcode: always 0.
        errmsg: the API's message (``ok``, or ``ok. Warning: ...``).
        attempts: how many requests it took.
    """

    errcode: int
    errmsg: str
    attempts: int = 1


@dataclass(frozen=True)
class MediaUpload:
    """A successful media upload.

    Attributes:
        media_id: use it in a file or voice message within 3 days, with this robot only.
        type: ``file`` or ``voice``.
        created_at: Unix time of the upload.
    """

    media_id: str
    type: str
    created_at: int


@dataclass(frozen=True)
class Endpoint:
    """Where to send: the API base URL and the webhook key (masked in ``repr``)."""

    base_url: str
    key: str = field(repr=False)

    @property
    def send_url(self) -> str:
        """The full send URL, key included: never log it, use :attr:`masked_send_url`."""
        return f"{self.base_url}{limits.SEND_PATH}?key={self.key}"

    def upload_url(self, media_type: str) -> str:
        """The full upload URL for ``media_type``, key included."""
        return f"{self.base_url}{limits.UPLOAD_PATH}?key={self.key}&type={media_type}"

    @property
    def masked_send_url(self) -> str:
        """The send URL with the key masked, safe for logs and errors."""
        return mask_url(self.send_url)

    @property
    def masked_key(self) -> str:
        """The key masked (``693a…5aaa``)."""
        return mask_key(self.key)

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, key={self.masked_key!r})"


def parse_endpoint(webhook_or_key: str, base_url: str | None = None) -> Endpoint:
    """Build an :class:`Endpoint` from a full webhook URL or a bare key.

    Args:
        webhook_or_key: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` or ``KEY``.
        base_url: override the API host (a proxy, the emulator); defaults to the webhook's
            own scheme and host, or WeCom's.

    Raises:
        ConfigError: no key could be found, or it has characters a key never has.
    """
    text = webhook_or_key.strip()
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        keys = parse_qs(parts.query).get("key", [])
        if not keys or not keys[0]:
            raise ConfigError(
                "the webhook URL has no key= parameter; copy the whole URL from the robot's "
                "settings, or pass the key alone"
            )
        key = keys[0]
        default_base = f"{parts.scheme}://{parts.netloc}"
    else:
        key = text
        default_base = limits.DEFAULT_BASE_URL
    if not key:
        raise ConfigError("the webhook key is empty; set it with --key or WECOM_BOT_KEY")
    if not _KEY_SHAPE.match(key):
        raise ConfigError(
            f"the webhook key {mask_key(key)} has characters a key never has "
            "(letters, digits, '-' and '_' only); check for spaces or quotes"
        )
    base = (base_url or default_base).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must start with http:// or https://, got {base!r}")
    return Endpoint(base_url=base, key=key)


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to send; ``url`` holds the key, ``masked_url`` does not."""

    url: str
    masked_url: str
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def prepare_send(endpoint: Endpoint, message: Message) -> PreparedRequest:
    """Build the send request for an already validated message."""
    return PreparedRequest(
        url=endpoint.send_url,
        masked_url=endpoint.masked_send_url,
        content=message.to_json(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )


def read_media(data_or_path: bytes | str | Path, filename: str | None) -> tuple[bytes, str]:
    """Return the bytes and the display file name of an upload given as bytes or a path."""
    if isinstance(data_or_path, bytes | bytearray):
        return bytes(data_or_path), filename or "file"
    path = Path(data_or_path)
    try:
        return path.read_bytes(), filename or path.name
    except OSError as exc:
        raise MediaValidationError(
            ValidationIssue(field="media", rule=Rule.REQUIRED, message=f"cannot read {path}: {exc}")
        ) from None


def check_upload(data: bytes, media_type: str) -> None:
    """Apply the spec's upload rules before any request is made.

    Raises:
        MediaValidationError: the type is unknown, or the size or format breaks a rule.
    """
    if media_type not in limits.UPLOAD_TYPES:
        raise MediaValidationError(
            ValidationIssue(
                field="type",
                rule=Rule.CHOICE,
                message=f"must be 'file' or 'voice', got {media_type!r}",
                limit=list(limits.UPLOAD_TYPES),
                actual=media_type,
            )
        )
    size = len(data)
    if size <= limits.UPLOAD_MIN_BYTES_EXCLUSIVE:
        raise MediaValidationError(
            ValidationIssue(
                field="media",
                rule=Rule.MIN_BYTES,
                message=f"is {size} bytes; uploads must be larger than 5 bytes",
                limit=limits.UPLOAD_MIN_BYTES_EXCLUSIVE + 1,
                actual=size,
            )
        )
    cap = limits.FILE_MAX_BYTES if media_type == "file" else limits.VOICE_MAX_BYTES
    if size > cap:
        raise MediaValidationError(
            ValidationIssue(
                field="media",
                rule=Rule.MAX_BYTES,
                message=f"is {size} bytes; a {media_type} upload may have at most {cap} bytes",
                limit=cap,
                actual=size,
            )
        )
    if media_type == "voice" and not data.startswith(_AMR_MAGIC):
        raise MediaValidationError(
            ValidationIssue(
                field="media",
                rule=Rule.FORMAT,
                message="voice must be AMR (the file does not start with '#!AMR')",
            )
        )


def prepare_upload(
    endpoint: Endpoint, data: bytes, media_type: str, filename: str
) -> PreparedRequest:
    """Validate an upload and build its multipart request (field ``media``)."""
    check_upload(data, media_type)
    url = endpoint.upload_url(media_type)
    return PreparedRequest(
        url=url,
        masked_url=mask_url(url),
        files={"media": (filename, data, "application/octet-stream")},
    )


def interpret_answer(status_code: int, body: bytes, masked_url: str) -> dict[str, Any]:
    """Decide what an HTTP answer means: the JSON of an ``errcode == 0`` answer, or an error.

    Raises:
        HTTPStatusError: a non-2xx status.
        WeComAPIError: a non-zero errcode (the most specific subclass).
        UnexpectedAnswerError: a 2xx answer that is not the API's JSON (a captive portal's
            HTML page, an empty body); retryable.
    """
    if not 200 <= status_code < 300:
        excerpt = body[:200].decode("utf-8", "replace")
        raise HTTPStatusError(status_code, url=masked_url, body_excerpt=excerpt)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise UnexpectedAnswerError(status_code, _describe_body(body), url=masked_url) from None
    if not isinstance(data, dict) or not isinstance(data.get("errcode"), int):
        raise UnexpectedAnswerError(status_code, "JSON without an integer errcode", url=masked_url)
    errcode: int = data["errcode"]
    if errcode != 0:
        errmsg = _HINT.sub("", str(data.get("errmsg", "")))
        raise api_error(errcode, errmsg, url=masked_url)
    return data


def _describe_body(body: bytes) -> str:
    """Name a body that is not JSON, briefly: its size, and the page title of an HTML page."""
    if not body.strip():
        return "an empty body"
    title = _TITLE.search(body[:4096])
    if title is not None:
        # Text from whoever answered, into errors and logs: one line, URLs' keys masked
        # (a portal may echo the URL it intercepted), then cut.
        text = mask_url(" ".join(title.group(1).decode("utf-8", "replace").split()))[:80]
        return f"an HTML page ({len(body)} bytes, title {text!r})"
    if body.lstrip()[:1] == b"<":
        return f"an HTML page ({len(body)} bytes)"
    return f"a body that is not JSON ({len(body)} bytes)"


def translate_transport_error(exc: httpx.HTTPError, masked_url: str) -> DeliveryError:
    """Map an httpx exception to the library's hierarchy, without the key in the text."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"no answer in time ({type(exc).__name__})", url=masked_url)
    return TransportError(
        f"request failed: {type(exc).__name__}: {mask_url(str(exc))}", url=masked_url
    )


def send_result(data: dict[str, Any], attempts: int) -> SendResult:
    """Turn the JSON of a successful send into a :class:`SendResult`."""
    return SendResult(errcode=0, errmsg=str(data.get("errmsg", "ok")), attempts=attempts)


def media_upload(data: dict[str, Any]) -> MediaUpload:
    """Turn the JSON of a successful upload into a :class:`MediaUpload`."""
    media_id = data.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise DeliveryError("the upload answer has no media_id")
    try:
        created = int(data.get("created_at", 0))
    except (TypeError, ValueError):
        created = 0
    return MediaUpload(media_id=media_id, type=str(data.get("type", "")), created_at=created)


class Attempts:
    """Counts the attempts of one request and asks the retry policy what to do after a failure.

    Args:
        policy: the retry policy, or None to never retry.
        limiter: the local limiter; told about a 45009 so other sends wait too.
        key: the webhook key the request uses (only for the limiter, never shown).
    """

    def __init__(
        self,
        policy: RetryPolicy | None,
        limiter: SlidingWindowLimiter | None,
        key: str,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.key = key
        self.count = 0

    def start(self) -> None:
        """Call before each attempt."""
        self.count += 1

    def delay_after(self, error: DeliveryError) -> float:
        """Return how long to wait before the next attempt, or re-raise ``error`` to give up."""
        retry_after: float | None = None
        if error.retryable and getattr(error, "errcode", None) == limits.ERRCODE_RATE_LIMITED:
            if self.limiter is not None:
                retry_after = self.limiter.record_rejection(self.key)
        if self.policy is None:
            raise error
        delay = self.policy.decide(self.count, error, retry_after=retry_after)
        if delay is None:
            raise error
        logger.info(
            "attempt %d failed (%s); retrying in %.2fs", self.count, type(error).__name__, delay
        )
        return delay
