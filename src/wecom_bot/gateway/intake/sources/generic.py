"""Any JSON document, posted to ``/webhook/{name}`` and rendered by that webhook's template."""

from __future__ import annotations

from typing import Any

from ...model import Notification, Status
from ._common import MAX_TEXT_BYTES, PayloadError, child, clean, cut_text, json_type

__all__ = ["MAX_GENERIC_DEPTH", "MAX_GENERIC_NODES", "parse_generic"]

MAX_GENERIC_DEPTH = 32
"""Deepest nesting of arrays and objects accepted."""
MAX_GENERIC_NODES = 100_000
"""Most values (strings, numbers, members ...) in one document."""
MAX_GENERIC_STRING_BYTES = 1024 * 1024
"""Longest string kept whole anywhere in the document; a longer one is cut, marked
``…(N bytes more)``, and counted in ``cut_values``."""


class _Walker:
    def __init__(self) -> None:
        self.nodes = 0
        self.cut = 0

    def copy(self, value: Any, path: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_GENERIC_NODES:
            raise PayloadError("", f"has more than {MAX_GENERIC_NODES} values")
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            if len(value) > MAX_GENERIC_STRING_BYTES // 4 and (
                len(value.encode("utf-8", "surrogatepass")) > MAX_GENERIC_STRING_BYTES
            ):
                self.cut += 1
                return cut_text(clean(value), MAX_GENERIC_STRING_BYTES)
            return clean(value)
        if depth >= MAX_GENERIC_DEPTH:
            raise PayloadError(path, f"is nested deeper than {MAX_GENERIC_DEPTH} levels")
        if isinstance(value, list):
            return [self.copy(item, child(path, i), depth + 1) for i, item in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise PayloadError(path, f"has a member name that is {json_type(key)}")
                out[clean(key)] = self.copy(item, child(path, key), depth + 1)
            return out
        raise PayloadError(path, f"is not a JSON value ({json_type(value)})")


def parse_generic(name: str, payload: Any) -> Notification:
    """Accept any JSON document for the generic webhook ``name``.

    The document is kept whole in ``raw`` (strings made valid UTF-8). When it is an object,
    ``status`` (``"firing"``/``"resolved"``), ``title`` and ``message`` (or ``text``) are
    picked up if they are strings; otherwise the status is ``"firing"``.

    Args:
        name: the webhook's configured name (from ``/webhook/{name}``).
        payload: the decoded JSON body.

    Returns:
        The notification, ``source="generic"``, ``receiver=name``.

    Raises:
        PayloadError: nesting deeper than :data:`MAX_GENERIC_DEPTH`, more than
            :data:`MAX_GENERIC_NODES` values, or a value JSON cannot hold.
        ValueError: ``name`` is empty.
    """
    if not name:
        raise ValueError("a generic webhook needs a name")
    walker = _Walker()
    raw = walker.copy(payload, "", 0)
    status: Status = "firing"
    title = message = ""
    if isinstance(raw, dict):
        if raw.get("status") == "resolved":
            status = "resolved"
        if isinstance(raw.get("title"), str):
            title = raw["title"][: MAX_TEXT_BYTES // 4]
        for key in ("message", "text"):
            if isinstance(raw.get(key), str):
                message = raw[key][: MAX_TEXT_BYTES // 4]
                break
    return Notification(
        source="generic",
        status=status,
        receiver=name,
        title=title,
        message=message,
        raw=raw,
        cut_values=walker.cut,
    )
