"""The exception hierarchy of wecom-bot.

::

    WeComBotError
    ├── MessageValidationError (also ValueError)    a message breaks a documented rule
    │   └── MediaValidationError                    an upload breaks a size/type rule
    ├── ConfigError (also ValueError)               bad configuration, names the field
    │   └── SecretNotSetError                       a key's variable or file is not there
    ├── RateLimitWaitExceeded                       the local limiter would wait too long
    ├── StoreError (wecom_bot.store)                the outbox failed
    │   ├── StoreUnavailableError                   backend down: nothing was stored (503)
    │   ├── StoreOpenError (also ConfigError)       cannot open the store at start
    │   └── LeaseLostError                          a digest's originals were not ours any more
    └── DeliveryError                               a send did not end in errcode 0
        ├── WeComAPIError                           the API answered errcode != 0
        │   ├── SystemBusyError          (-1)       retryable
        │   ├── InvalidMediaTypeError    (40004)
        │   ├── InvalidMediaIdError      (40007)
        │   ├── InvalidMessageTypeError  (40008)
        │   ├── InvalidParameterError    (40058)
        │   ├── EmptyMediaError          (44001)
        │   ├── EmptyContentError        (44004)
        │   ├── RateLimitedError         (45009)    retryable when the window frees
        │   ├── InvalidKeyError          (93000)
        │   └── MediaMD5MismatchError    (301019)
        ├── HTTPStatusError                         non-2xx HTTP answer; 5xx/429 retryable
        ├── UnexpectedAnswerError                   2xx that is not the API's JSON; retryable
        └── TransportError                          connection failed or reset; retryable
            └── RequestTimeout                      no answer in time; retryable

Every error that concerns a request carries the URL with the key masked. Callers that
decide whether to try again branch on the single attribute :attr:`DeliveryError.retryable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from . import limits


class WeComBotError(Exception):
    """Base class of every error raised by wecom-bot."""


class Rule(StrEnum):
    """Names of the rules a :class:`ValidationIssue` can report (stable, for code to branch on)."""

    REQUIRED = "required"
    EMPTY = "empty"
    MAX_BYTES = "max_bytes"
    MIN_BYTES = "min_bytes"
    MAX_ITEMS = "max_items"
    MIN_ITEMS = "min_items"
    RANGE = "range"
    CHOICE = "choice"
    TYPE = "type"
    FORMAT = "format"
    BASE64 = "base64"
    MD5_MISMATCH = "md5_mismatch"
    UNKNOWN_MSGTYPE = "unknown_msgtype"
    UNKNOWN_FIELD = "unknown_field"
    NOT_SUPPORTED = "not_supported"


@dataclass(frozen=True)
class ValidationIssue:
    """One broken rule: where (``field``), which rule, the limit and the actual value."""

    field: str
    rule: str
    message: str
    limit: Any = None
    actual: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class MessageValidationError(WeComBotError, ValueError):
    """A message (or payload) breaks a documented rule of the API.

    Attributes:
        issues: every broken rule, each with field path, rule, limit and actual value.
    """

    def __init__(self, issues: list[ValidationIssue] | ValidationIssue | str) -> None:
        if isinstance(issues, str):
            issues = [ValidationIssue(field="", rule="invalid", message=issues)]
        elif isinstance(issues, ValidationIssue):
            issues = [issues]
        self.issues: list[ValidationIssue] = list(issues)
        super().__init__("; ".join(str(i) for i in self.issues))

    @property
    def field(self) -> str:
        """The field path of the first issue (``text.content``)."""
        return self.issues[0].field if self.issues else ""

    @property
    def rule(self) -> str:
        """The rule name of the first issue (``max_bytes``, ``required`` ...)."""
        return self.issues[0].rule if self.issues else ""

    @property
    def limit(self) -> Any:
        """The limit the first issue broke (bytes, items, range), if it has one."""
        return self.issues[0].limit if self.issues else None

    @property
    def actual(self) -> Any:
        """The actual size or value of the first issue, if known."""
        return self.issues[0].actual if self.issues else None


class MediaValidationError(MessageValidationError):
    """A media upload breaks the size or type rules (checked before any request)."""


class ConfigError(WeComBotError, ValueError):
    """Configuration is invalid; the message names the field and what would fix it."""


class SecretNotSetError(ConfigError):
    """A secret is configured from a variable or a file that is not set here.

    The configuration itself may be fine: ``gateway check`` reports it and goes on, so a
    config can be checked where its secrets are not (CI).
    """


class RateLimitWaitExceeded(WeComBotError):
    """The local rate limiter would have to wait longer than the caller allows.

    Attributes:
        retry_after: seconds until a send slot frees.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryError(WeComBotError):
    """A send or upload did not end in ``errcode == 0``.

    Attributes:
        retryable: whether trying the same request again may succeed.
        url: the request URL with the key masked.
    """

    retryable: bool = False

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class WeComAPIError(DeliveryError):
    """The API answered with a non-zero ``errcode``.

    Attributes:
        errcode: the API's error code.
        errmsg: the API's message, only the text before ``, hint:``.
    """

    errcode_value: ClassVar[int | None] = None

    def __init__(self, errcode: int, errmsg: str, *, url: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        advice = _ADVICE.get(errcode)
        text = f"WeCom API error {errcode}: {errmsg}"
        if advice:
            text += f" ({advice})"
        super().__init__(text, url=url)


class SystemBusyError(WeComAPIError):
    """errcode -1: transient trouble on WeCom's side."""

    errcode_value = limits.ERRCODE_SYSTEM_BUSY
    retryable = True


class InvalidMediaTypeError(WeComAPIError):
    """errcode 40004: upload ``type`` is neither ``file`` nor ``voice``."""

    errcode_value = limits.ERRCODE_INVALID_MEDIA_TYPE


class InvalidMediaIdError(WeComAPIError):
    """errcode 40007: media_id unknown, expired (3 days) or uploaded by another robot."""

    errcode_value = limits.ERRCODE_INVALID_MEDIA_ID


class InvalidMessageTypeError(WeComAPIError):
    """errcode 40008: ``msgtype`` missing or unknown, or the body is not JSON."""

    errcode_value = limits.ERRCODE_INVALID_MESSAGE_TYPE


class InvalidParameterError(WeComAPIError):
    """errcode 40058: a field breaks a rule (too long, missing, wrong type)."""

    errcode_value = limits.ERRCODE_INVALID_PARAMETER


class EmptyMediaError(WeComAPIError):
    """errcode 44001: an upload without data."""

    errcode_value = limits.ERRCODE_EMPTY_MEDIA


class EmptyContentError(WeComAPIError):
    """errcode 44004: text/markdown content missing or empty."""

    errcode_value = limits.ERRCODE_EMPTY_CONTENT


class RateLimitedError(WeComAPIError):
    """errcode 45009: more than 20 messages in a minute for this key."""

    errcode_value = limits.ERRCODE_RATE_LIMITED
    retryable = True


class InvalidKeyError(WeComAPIError):
    """errcode 93000: the webhook key is missing, unknown or removed."""

    errcode_value = limits.ERRCODE_INVALID_WEBHOOK_URL


class MediaMD5MismatchError(WeComAPIError):
    """errcode 301019: image md5 does not match the decoded bytes."""

    errcode_value = limits.ERRCODE_MEDIA_MD5_MISMATCH


class HTTPStatusError(DeliveryError):
    """The server answered a non-2xx HTTP status (a proxy, or WeCom in trouble).

    Attributes:
        status_code: the HTTP status.
    """

    def __init__(self, status_code: int, *, url: str = "", body_excerpt: str = "") -> None:
        self.status_code = status_code
        self.retryable = status_code >= 500 or status_code in (408, 429)
        text = f"HTTP {status_code} from the webhook API"
        if body_excerpt:
            text += f": {body_excerpt}"
        super().__init__(text, url=url)


class UnexpectedAnswerError(DeliveryError):
    """A 2xx answer that is not the API's JSON: an HTML page, an empty body, JSON without errcode.

    Something between the client and WeCom answered in its place (a captive portal, a proxy's
    login or error page, misrouted egress), or base_url points elsewhere. Retryable like a 502:
    the request most likely never reached the API, and the detour is often temporary.

    Attributes:
        status_code: the HTTP status (2xx).
    """

    retryable = True

    def __init__(self, status_code: int, what: str, *, url: str = "") -> None:
        self.status_code = status_code
        super().__init__(
            f"HTTP {status_code} with {what}, not the API's JSON: a proxy or captive portal "
            "answered, or base_url is not the webhook API",
            url=url,
        )


class TransportError(DeliveryError):
    """The request never got an answer: connection refused, reset, DNS, TLS."""

    retryable = True


class RequestTimeout(TransportError):
    """No answer within the timeout."""


_API_ERRORS: dict[int, type[WeComAPIError]] = {
    cls.errcode_value: cls
    for cls in (
        SystemBusyError,
        InvalidMediaTypeError,
        InvalidMediaIdError,
        InvalidMessageTypeError,
        InvalidParameterError,
        EmptyMediaError,
        EmptyContentError,
        RateLimitedError,
        InvalidKeyError,
        MediaMD5MismatchError,
    )
    if cls.errcode_value is not None
}

_ADVICE: dict[int, str] = {
    limits.ERRCODE_SYSTEM_BUSY: "transient, try again later",
    limits.ERRCODE_INVALID_WEBHOOK_URL: "check the webhook key: the robot may have been removed",
    limits.ERRCODE_RATE_LIMITED: "at most 20 messages per minute per robot; wait for the window",
    limits.ERRCODE_INVALID_MEDIA_ID: "a media_id lives 3 days, for the uploading robot only",
    limits.ERRCODE_MEDIA_MD5_MISMATCH: "md5 must be of the raw image bytes before base64",
}


def api_error(errcode: int, errmsg: str, *, url: str = "") -> WeComAPIError:
    """Build the most specific :class:`WeComAPIError` subclass for ``errcode``."""
    cls = _API_ERRORS.get(errcode, WeComAPIError)
    return cls(errcode, errmsg, url=url)
