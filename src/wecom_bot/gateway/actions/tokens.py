"""Signed, expiring action tokens.

A token is ``base64url(body) "." base64url(HMAC-SHA256(body)[:10])``, both in the one
canonical encoding (no padding, no stray bits). The body is packed bytes, the most compact
form a link can carry: the action, one ASCII letter that also says the format (format 2:
``A`` acknowledge, ``S`` silence, ``D`` details), the expiry (Unix seconds, 4 bytes), the
configured name of the Alertmanager the group came from (empty: none is configured), then the
alert group's labels as equality matchers; every text is prefixed by its length in bytes.
No webhook key, URL or stored id travels in it: a token is only good for what it says, until
it expires.

Format 1 tokens (lower-case letters, then a 3-byte hash of the Alertmanager's URL, which
could be made to collide) are refused with a reason that says to use a newer message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Literal

Kind = Literal["a", "s", "d"]
KINDS: dict[str, str] = {"a": "acknowledge", "s": "silence", "d": "details"}
CLOCK_SLACK = 60
"""Seconds an expiry may lie beyond ``now + max_ttl`` (clocks of several gateway processes)."""
MAX_TEXT_BYTES = 255
"""The longest label name or value (UTF-8 bytes) a token can carry."""

_MAC_BYTES = 10
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
# Format 2 writes the action in upper case: one byte says both (a link's bytes are counted).
_FORMAT_2 = {"a": b"A", "s": b"S", "d": b"D"}
_KIND_OF = {v[0]: k for k, v in _FORMAT_2.items()}
_FORMAT_1 = frozenset(b"asd")


class TokenError(ValueError):
    """A token that cannot be used; ``reason`` says why (in English, for logs and tests),
    ``code`` which case it is (``malformed``, ``forged``, ``older``, ``expired``, ``too_far``:
    the pages say it in their language)."""

    def __init__(self, reason: str, code: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class ActionToken:
    """What a link lets a person do.

    Attributes:
        kind: ``a``, ``s`` or ``d`` (see :data:`KINDS`).
        matchers: the alert group's labels, ``(name, value)`` pairs.
        expires_at: Unix seconds after which the token is refused.
        alertmanager: the configured name of the group's Alertmanager, or ``""`` (none is).
    """

    kind: Kind
    matchers: tuple[tuple[str, str], ...]
    expires_at: int
    alertmanager: str = ""


def packable(text: str) -> bool:
    """Whether ``text`` can be in a token: UTF-8 (no lone surrogates), at most 255 bytes."""
    try:
        return len(text.encode()) <= MAX_TEXT_BYTES
    except UnicodeEncodeError:
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]


def _pack(token: ActionToken) -> bytes:
    if token.kind not in KINDS or not 0 <= token.expires_at <= 0xFFFFFFFF:
        raise ValueError("not a token")
    out = bytearray(_FORMAT_2[token.kind])
    out += struct.pack(">I", token.expires_at)
    for text in (token.alertmanager, *(t for pair in token.matchers for t in pair)):
        if not packable(text):
            raise ValueError("a text over 255 bytes, or not UTF-8, cannot be in a link")
        data = text.encode()
        out += bytes([len(data)]) + data
    return bytes(out)


def _unpack(data: bytes) -> ActionToken:
    if len(data) < 6 or data[0] not in _KIND_OF:
        raise ValueError("not a token")
    kind = _KIND_OF[data[0]]
    (expires_at,) = struct.unpack(">I", data[1:5])
    texts: list[str] = []
    at = 5
    while at < len(data):
        size = data[at]
        if at + 1 + size > len(data):
            raise ValueError("truncated")
        texts.append(data[at + 1 : at + 1 + size].decode())
        at += 1 + size
    if len(texts) % 2 != 1:
        raise ValueError("not a token")
    pairs = tuple(zip(texts[1::2], texts[2::2], strict=True))
    return ActionToken(kind, pairs, expires_at, texts[0])  # type: ignore[arg-type]


def sign(token: ActionToken, secret: bytes) -> str:
    """The token as URL-safe text, signed with ``secret``.

    Raises:
        ValueError: a text is longer than 255 bytes or not UTF-8 (see :func:`packable`), or
            the expiry does not fit 4 bytes.
    """
    body = _b64(_pack(token))
    return f"{body}.{_b64(_mac(secret, body))}"


def verify(text: str, secret: bytes, *, now: float, max_ttl: float | None = None) -> ActionToken:
    """Check a token's signature and expiry and read it.

    Args:
        text: the token.
        secret: the signing secret.
        now: Unix time.
        max_ttl: the longest a link is good for: a token expiring later than ``now`` plus
            this (and :data:`CLOCK_SLACK`) was not signed under this configuration.

    Raises:
        TokenError: malformed, signed with another secret or altered, of the older format,
            expired, or expiring too far ahead.
    """
    malformed = "this link is malformed (it was cut or changed)"
    body, dot, mac = text.partition(".")
    if not dot or not _B64URL.fullmatch(body) or not _B64URL.fullmatch(mac) or len(text) > 4096:
        raise TokenError(malformed)
    try:
        given = _unb64(mac)
        data = _unb64(body)
    except (binascii.Error, ValueError):
        raise TokenError(malformed) from None
    if not hmac.compare_digest(given, _mac(secret, body)):
        raise TokenError("this link's signature does not match: it was altered or forged", "forged")
    # The decoder ignores the unused low bits of the last character: only the one canonical
    # spelling of a signed token is a token (16 spellings of one MAC would be 16 links).
    if _b64(given) != mac or _b64(data) != body:
        raise TokenError(malformed)
    if data[:1] and data[0] in _FORMAT_1:
        raise TokenError(
            "this link is from an older version of the gateway; use the link of a newer message",
            "older",
        )
    try:
        token = _unpack(data)
    except (ValueError, struct.error):
        raise TokenError(malformed) from None
    if now > token.expires_at:
        raise TokenError("this link has expired; use the link of a newer message", "expired")
    if max_ttl is not None and token.expires_at > now + max_ttl + CLOCK_SLACK:
        raise TokenError(
            "this link's expiry lies further ahead than any link is good for", "too_far"
        )
    return token


def preview_secret(secret: bytes) -> bytes:
    """The key preview links are signed with (the console's playground): derived from the
    signing secret, never equal to it, so a preview link verifies as nothing that acts, and
    a page can still tell it apart from a forged one."""
    return hmac.new(secret, b"wecom-bot action links: preview", hashlib.sha256).digest()


def csrf_token(action_token: str, secret: bytes) -> str:
    """The form token that binds a confirming POST to the page of ``action_token``."""
    digest = hmac.new(secret, b"csrf\0" + action_token.encode(), hashlib.sha256).digest()
    return _b64(digest[:16])
