"""Masking of webhook keys: a key must never reach a log line, an error, a metric or a page."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_KEY_IN_TEXT = re.compile(r"(key=)([^&\s\"'<>]+)", re.IGNORECASE)


def mask_key(key: str) -> str:
    """Show a key as its first and last four characters, e.g. ``693a…5aaa``.

    Keys shorter than 12 characters are shown as ``…`` plus a short hash so that
    nothing of a short secret leaks.
    """
    if len(key) >= 12:
        return f"{key[:4]}…{key[-4:]}"
    return f"…{key_fingerprint(key)}"


def key_fingerprint(key: str) -> str:
    """A short stable hash of a key, usable as a metric label or an identifier."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def mask_url(url: str) -> str:
    """Return ``url`` with the value of its ``key`` query parameter masked."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, mask_key(v) if k.lower() == "key" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="…")))


def redact(text: str, *keys: str) -> str:
    """Mask every ``key=...`` query value and every given key anywhere in ``text``."""
    text = _KEY_IN_TEXT.sub(lambda m: m.group(1) + mask_key(m.group(2)), text)
    for key in keys:
        if key:
            text = text.replace(key, mask_key(key))
    return text
