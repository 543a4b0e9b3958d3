"""Masking of webhook keys: a key must never reach a log line, an error, a metric or a page."""

from __future__ import annotations

import hashlib
import logging
import re

MASK_MARK = "…"
"""What every masked key contains; text holding it was masked already and is left alone."""

# A key is letters, digits and dashes: a bracket or parenthesis after it closes the text
# around the URL (``[https://...?key=...]``) and must survive.
_KEY_IN_TEXT = re.compile(r"(key=)([^&\s\"'<>()\[\]]+)", re.IGNORECASE)
# The password of a URL's userinfo (``scheme://user:password@host``): everything from the
# first colon after the user up to the last ``@`` before the path, as URL parsers read it.
_PASSWORD_IN_URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:?#]*:)([^\s/?#]*)(@)", re.IGNORECASE)

PASSWORD_MASK = "***"
"""What a password (or a bearer token) is shown as: nothing of it, not even its length."""


def mask_key(key: str) -> str:
    """Show a key as its first and last four characters, e.g. ``693a…5aaa``.

    This is the one form a key takes in logs, errors, pages and answers. Keys shorter than
    12 characters are shown as ``…`` plus a short hash so that nothing of a short secret
    leaks. A key that is already masked is returned as it is.
    """
    if MASK_MARK in key:
        return key
    if len(key) >= 12:
        return f"{key[:4]}{MASK_MARK}{key[-4:]}"
    return f"{MASK_MARK}{key_fingerprint(key)}"


def key_fingerprint(key: str) -> str:
    """A short stable hash of a key, usable as an identifier (the emulator's group id).

    Not for people to read: logs and errors show :func:`mask_key`.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def mask_url(url: str) -> str:
    """Return ``url`` (or any text holding URLs) with the value of its ``key`` query parameter
    masked (``key=693a…5aaa``) and the password of its userinfo too (``user:***@host``)."""
    url = _PASSWORD_IN_URL.sub(lambda m: m.group(1) + PASSWORD_MASK + m.group(3), url)
    return _KEY_IN_TEXT.sub(lambda m: m.group(1) + mask_key(m.group(2)), url)


def redact(text: str, *keys: str) -> str:
    """Mask every ``key=...`` query value and every given key anywhere in ``text``."""
    text = mask_url(text)
    for key in keys:
        if key:
            text = text.replace(key, mask_key(key))
    return text


class KeyRedactingFilter(logging.Filter):
    """A logging filter that masks ``key=...`` in a record's message and arguments.

    Third-party loggers print request URLs whole (httpx logs every request at INFO, uvicorn's
    access log every path); this filter makes them safe.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                redact(str(a)) if isinstance(a, str) or _looks_like_url(a) else a for a in args
            )
        if isinstance(record.msg, str) and ("key=" in record.msg or "@" in record.msg):
            record.msg = redact(record.msg)
        return True


def _looks_like_url(value: object) -> bool:
    return type(value).__name__ == "URL"


_FILTER = KeyRedactingFilter()
LOGGERS_THAT_PRINT_URLS = ("httpx", "uvicorn.access", "uvicorn.error")


def install_log_redaction() -> None:
    """Attach the key-masking filter to the loggers of libraries that print request URLs."""
    for name in LOGGERS_THAT_PRINT_URLS:
        target = logging.getLogger(name)
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
