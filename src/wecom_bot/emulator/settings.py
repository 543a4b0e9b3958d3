"""Typed settings of the emulator, checked when built (a bad value names its field)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

from .. import limits as api_limits
from ..errors import ConfigError
from ..exposure import LOOPBACK_NAMES
from ..masking import mask_key
from .ratelimit import RateSpec

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""What the emulator accepts as a webhook key (real keys are UUID-like: hex and hyphens)."""

DEFAULT_SEND_BODY_CAP = 4 * 1024 * 1024
"""Largest send body read: a 2 MiB image is about 2.8 MB once base64-encoded, plus JSON."""

DEFAULT_UPLOAD_BODY_CAP = api_limits.FILE_MAX_BYTES + 1024 * 1024
"""Largest upload body read: the 20 MiB file limit plus room for the multipart framing."""

LimitsMode = Literal["documented", "live"]
"""Which size limits the emulator enforces: the documented ones, or those live WeCom applies."""


@dataclass(frozen=True, kw_only=True)
class EmulatorSettings:
    """How one emulator behaves.

    Attributes:
        db: SQLite database path, or ``":memory:"`` for a throwaway store.
        keys: the only keys accepted (each one group); None accepts any well-formed key.
        rate: per-key rate limit on accepted messages; None turns it off.
        media_ttl_seconds: how long a media_id stays valid (WeCom: 3 days).
        send_body_cap: send bodies larger than this are refused unread (bytes).
        upload_body_cap: upload bodies larger than this are refused unread (bytes).
        clock: wall-clock seconds since the epoch: receive times, media expiry, ``created_at``.
        monotonic: monotonic seconds for the rate limit window.
        sse_heartbeat_seconds: idle time after which an event stream sends a comment line.
        sse_max_seconds: an event stream ends after this long (EventSource reconnects with
            ``Last-Event-ID`` and misses nothing); bounds how long a server that cannot tell
            the emulator it is stopping waits for open streams.
        max_page_size: most entries one ``/api/.../messages`` call returns.
        strict: refuse what live WeCom is known or believed to let through (a body sent without
            ``Content-Type: application/json``, unknown fields, JSON it repairs); off by
            default, where such a request is accepted and its entry carries ``warnings``.
        limits: ``"documented"`` (default) enforces the documented 2048-byte text limit;
            ``"live"`` accepts text up to the 5120 bytes the live server allows, with a
            warning. Cannot be combined with ``strict``.
        allowed_hosts: names the page and the inspection and fault API answer to (the
            ``Host`` of a request; IP addresses always pass, ``*`` accepts any). The WeCom API
            paths answer whatever the ``Host``, like WeCom.
    """

    db: str = ":memory:"
    keys: frozenset[str] | None = None
    rate: RateSpec | None = field(default_factory=RateSpec)
    media_ttl_seconds: float = float(api_limits.MEDIA_TTL_SECONDS)
    send_body_cap: int = DEFAULT_SEND_BODY_CAP
    upload_body_cap: int = DEFAULT_UPLOAD_BODY_CAP
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sse_heartbeat_seconds: float = 15.0
    sse_max_seconds: float = 600.0
    max_page_size: int = 1000
    strict: bool = False
    limits: LimitsMode = "documented"
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES

    def __post_init__(self) -> None:
        if self.keys is not None:
            keys = frozenset(self.keys) if not isinstance(self.keys, frozenset) else self.keys
            for key in keys:
                if not isinstance(key, str) or not KEY_PATTERN.match(key):
                    shown = mask_key(key) if isinstance(key, str) else type(key).__name__
                    raise ConfigError(
                        f"keys: {shown} is not a valid key (1-128 of A-Z a-z 0-9 _ -)"
                    )
            if not keys:
                raise ConfigError("keys: give at least one key, or None to accept any key")
            object.__setattr__(self, "keys", keys)
        if self.limits not in get_args(LimitsMode):
            raise ConfigError(f"limits must be documented or live, got {self.limits!r}")
        if self.strict and self.limits == "live":
            raise ConfigError("limits: 'live' goes beyond the documented limits; not with strict")
        if not self.db:
            raise ConfigError("db: give a file path or ':memory:'")
        for name in ("media_ttl_seconds", "sse_heartbeat_seconds", "sse_max_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("send_body_cap", "upload_body_cap", "max_page_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    @classmethod
    def from_options(
        cls,
        *,
        db: str = ":memory:",
        keys: str | Iterable[str] | None = None,
        rate: str | None = "20/60s",
        **extra: object,
    ) -> EmulatorSettings:
        """Build settings from command-line style values.

        Args:
            db: database path or ``":memory:"``.
            keys: comma-separated keys (or an iterable); empty or None accepts any key.
            rate: ``"20/60s"`` style, or None / ``"off"`` for no rate limit.
            **extra: any other field of :class:`EmulatorSettings`.

        Raises:
            ConfigError: a value is invalid; the message names the option.
        """
        key_set: frozenset[str] | None = None
        if keys:
            items = keys.split(",") if isinstance(keys, str) else list(keys)
            key_set = frozenset(k.strip() for k in items if k.strip()) or None
        spec = RateSpec.parse(rate) if rate else None
        return cls(db=db, keys=key_set, rate=spec, **extra)  # type: ignore[arg-type]
