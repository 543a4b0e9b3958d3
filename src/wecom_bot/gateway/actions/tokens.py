"""Signed, expiring action tokens.

A token is ``base64url(body) "." base64url(HMAC-SHA256(body)[:10])``. The body is packed
bytes, the most compact form a link can carry: the action (one ASCII letter: ``a``
acknowledge, ``s`` silence, ``d`` details), the expiry (Unix seconds, 4 bytes), a 3-byte id of
the Alertmanager the group came from, then the alert group's labels as equality matchers, each
name and value prefixed by its length in bytes. No webhook key and no stored
id travel in it: a token is only good for what it says, until it expires.
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
_MAC_BYTES = 10
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenError(ValueError):
    """A token that cannot be used; ``reason`` says why, in words for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ActionToken:
    """What a link lets a person do.

    Attributes:
        kind: ``a``, ``s`` or ``d`` (see :data:`KINDS`).
        matchers: the alert group's labels, ``(name, value)`` pairs.
        expires_at: Unix seconds after which the token is refused.
        alertmanager: the short id of the Alertmanager (see :func:`alertmanager_id`), or ``""``.
    """

    kind: Kind
    matchers: tuple[tuple[str, str], ...]
    expires_at: int
    alertmanager: str = ""


def alertmanager_id(url: str) -> str:
    """A short, stable id of an Alertmanager URL (the token names it, the gateway maps it)."""
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:6]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]


def _pack(token: ActionToken) -> bytes:
    out = bytearray(token.kind.encode("ascii"))
    out += struct.pack(">I", token.expires_at)
    out += bytes.fromhex(token.alertmanager) if token.alertmanager else b"\0\0\0"
    for name, value in token.matchers:
        for text in (name, value):
            data = text.encode()
            if len(data) > 255:
                raise ValueError("a matcher name or value over 255 bytes cannot be in a link")
            out += bytes([len(data)]) + data
    return bytes(out)


def _unpack(data: bytes) -> ActionToken:
    kind = data[:1].decode("ascii")
    (expires_at,) = struct.unpack(">I", data[1:5])
    am = data[5:8].hex()
    texts: list[str] = []
    at = 8
    while at < len(data):
        size = data[at]
        if at + 1 + size > len(data):
            raise ValueError("truncated")
        texts.append(data[at + 1 : at + 1 + size].decode())
        at += 1 + size
    if kind not in KINDS or len(am) != 6 or len(texts) % 2:
        raise ValueError("not a token")
    pairs = tuple(zip(texts[::2], texts[1::2], strict=True))
    return ActionToken(kind, pairs, expires_at, "" if am == "000000" else am)  # type: ignore[arg-type]


def sign(token: ActionToken, secret: bytes) -> str:
    """The token as URL-safe text, signed with ``secret``.

    Raises:
        ValueError: a matcher name or value is longer than 255 bytes.
    """
    body = _b64(_pack(token))
    return f"{body}.{_b64(_mac(secret, body))}"


def verify(text: str, secret: bytes, *, now: float) -> ActionToken:
    """Check a token's signature and expiry and read it.

    Raises:
        TokenError: malformed, signed with another secret or altered, or expired.
    """
    malformed = "this link is malformed (it was cut or changed)"
    body, dot, mac = text.partition(".")
    if not dot or not _B64URL.fullmatch(body) or not _B64URL.fullmatch(mac) or len(text) > 4096:
        raise TokenError(malformed)
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise TokenError(malformed) from None
    if not hmac.compare_digest(given, _mac(secret, body)):
        raise TokenError("this link's signature does not match: it was altered or forged")
    try:
        token = _unpack(_unb64(body))
    except (binascii.Error, ValueError, struct.error):
        raise TokenError(malformed) from None
    if now > token.expires_at:
        raise TokenError("this link has expired; use the link of a newer message")
    return token


def csrf_token(action_token: str, secret: bytes) -> str:
    """The form token that binds a confirming POST to the page of ``action_token``."""
    digest = hmac.new(secret, b"csrf\0" + action_token.encode(), hashlib.sha256).digest()
    return _b64(digest[:16])
