"""HTML primitives shared by the preview renderers: escaping, URL vetting, tolerant field access.

Everything a renderer emits goes through these helpers, so the safety argument lives here:
text is escaped with :func:`esc`, and a URL reaches an ``href``/``src`` only after
:func:`safe_url` accepted it (http or https with a host) and :func:`esc` quoted it.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

_SURROGATE = re.compile("[\ud800-\udfff]")
# Browsers drop tabs and newlines anywhere in a URL and C0/space at its ends; refusing every
# control or space character means the string we vet is exactly the string the browser uses.
_UNSAFE_URL_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
# For the special schemes browsers accept any run of slashes or backslashes after the colon
# ("https:host", "https:\\host"); we emit the canonical "scheme://" form of the same target.
_HTTP_SCHEME = re.compile(r"(https?):[/\\]*", re.IGNORECASE)
_MAX_URL_CHARS = 8192


def scrub(value: str) -> str:
    """Replace lone surrogates (JSON can carry them, UTF-8 cannot) with U+FFFD."""
    if _SURROGATE.search(value):
        return _SURROGATE.sub("\ufffd", value)
    return value


def esc(value: str) -> str:
    """Escape ``value`` for HTML text and quoted attribute values.

    Lone surrogates (which JSON can carry but UTF-8 cannot) become U+FFFD so the page
    can always be encoded.
    """
    return html.escape(scrub(value), quote=True)


def safe_url(url: object) -> str | None:
    """Return ``url`` in canonical ``http(s)://host...`` form, or ``None`` if it is not one.

    Rejects every other scheme (``javascript:``, ``data:``, ``vbscript:``...), scheme-relative
    ``//host`` URLs, relative paths, URLs without a host and any URL holding whitespace or
    control characters. The result still has to be escaped with :func:`esc` in an attribute.
    """
    if not isinstance(url, str):
        return None
    candidate = url.strip()
    if not candidate or len(candidate) > _MAX_URL_CHARS or _UNSAFE_URL_CHAR.search(candidate):
        return None
    match = _HTTP_SCHEME.match(candidate)
    if match is None:
        return None
    rest = candidate[match.end() :]
    canonical = f"{match.group(1).lower()}://{rest}"
    try:
        host = urlsplit(canonical.replace("\\", "/")).hostname
    except ValueError:
        return None
    if not host:
        return None
    return canonical


def as_text(value: object) -> str | None:
    """Return a payload scalar as display text (numbers allowed), or ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def as_int(value: object) -> int | None:
    """Return a payload value as an int if it is an integral number, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def as_dict(value: object) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping, else an empty one (payloads may be malformed)."""
    return value if isinstance(value, Mapping) else {}


def as_dicts(value: object) -> list[Mapping[str, Any]]:
    """Return the mappings of a list field, dropping anything else."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def link_open(url: object, cls: str) -> str | None:
    """Return an opening ``<a>`` tag for a vetted URL, or ``None`` when it is refused."""
    href = safe_url(url)
    if href is None:
        return None
    return (
        f'<a class="{cls}" href="{esc(href)}" target="_blank" rel="noopener noreferrer nofollow">'
    )


def image_tag(url: object, cls: str, alt: str = "") -> str:
    """Return a lazy, referrer-less ``<img>`` for a vetted URL, or a placeholder box."""
    src = safe_url(url)
    if src is None:
        return f'<span class="{cls} wb-img-missing" role="img" aria-label="{esc(alt)}"></span>'
    return (
        f'<img class="{cls}" src="{esc(src)}" alt="{esc(alt)}" loading="lazy"'
        ' referrerpolicy="no-referrer">'
    )


def human_size(size: int) -> str:
    """Format a byte count the way chat clients do (``512 B``, ``1.5 KB``, ``20.0 MB``)."""
    size = max(size, 0)
    if size < 1024:
        return f"{size} B"
    units = ("KB", "MB", "GB")
    value = size / 1024
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:.1f} {units[index]}"


class InlineScanner:
    """The scan shared by both markdown renderers: plain text is escaped, and every character
    that may start markup (``special``) is handed to :meth:`special_at`."""

    special: re.Pattern[str]
    text: str

    def render(self, start: int, end: int, depth: int, links: bool) -> str:
        """Render ``text[start:end]`` in place (never sliced and re-scanned)."""
        text = self.text
        out: list[str] = []
        i = start
        while i < end:
            found = self.special.search(text, i, end)
            if found is None:
                out.append(esc(text[i:end]))
                break
            j = found.start()
            if j > i:
                out.append(esc(text[i:j]))
            piece, i = self.special_at(j, end, depth, links)
            out.append(piece)
        return "".join(out)

    def special_at(self, j: int, end: int, depth: int, links: bool) -> tuple[str, int]:
        """Render the markup starting at ``j``; returns the HTML and where to go on."""
        raise NotImplementedError


PAGE_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # Previews show pictures from the messages' URLs (news covers, card images), as WeCom.
        "img-src 'self' data: http: https:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""The policy for pages that show previews: scripts and styles only from the server itself,
nothing inline, so even a renderer bug cannot run script (the emulator page, the console)."""
