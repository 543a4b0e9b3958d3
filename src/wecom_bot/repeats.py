"""Messages that may reach the group twice say so in their first line.

A send whose answer never came (a read timeout, a connection cut after the request went out)
may have been processed: WeCom counts and shows a message when it processes it, not when it
answers. The dispatcher retries such a send (at-least-once), and the retry carries
:data:`MAY_REPEAT` as its first line, so a reader can tell a repeat from a new alert. A request
that never reached the server (it could not connect, or was cut while being written) is not a
possible repeat; neither is one the server answered.

What is marked, per msgtype: ``text``, ``markdown`` and ``markdown_v2`` get the marker as a
line of its own before the content (a blank line after it in the markdown kinds, so a heading,
a table or a fence that opens the message still starts a block); ``news`` gets it before its
first article's title. The marker holds no markup character in any syntax (nothing to escape),
and the content is cut at its end (with ``…``) when marker and content together would pass the
byte limit. Other msgtypes (images, files, cards) cannot show it and are resent as they are.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import DeliveryError, TransportError
from .limits import CONTENT_LIMITS, NEWS_TITLE_MAX_BYTES, truncate_utf8, utf8_len

__all__ = ["MAY_REPEAT", "may_have_been_processed", "marked_repeat"]

MAY_REPEAT = "(重发 · may repeat)"
"""The first line of a message sent again after an answer that never came."""

# httpx exception names (in the error text) of a request the server never got whole.
_NEVER_ARRIVED = ("ConnectError", "ConnectTimeout", "PoolTimeout", "WriteError", "WriteTimeout")


def may_have_been_processed(error: DeliveryError) -> bool:
    """Whether the failed send may still have been processed by the server (no answer came
    after the request went out)."""
    if not isinstance(error, TransportError):
        return False  # an answer came: WeCom did not process a request it refused
    text = str(error)
    return not any(name in text for name in _NEVER_ARRIVED)


def marked_repeat(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with :data:`MAY_REPEAT` in its first line (a copy; ``payload`` as it is when
    its msgtype cannot show it, or when it is marked already)."""
    kind = payload.get("msgtype")
    body = payload.get(kind) if isinstance(kind, str) else None
    if not isinstance(body, dict):
        return payload
    if kind in CONTENT_LIMITS and isinstance(body.get("content"), str):
        content: str = body["content"]
        if content.startswith(MAY_REPEAT):
            return payload
        head = MAY_REPEAT + ("\n" if kind == "text" else "\n\n")
        marked = copy.deepcopy(payload)
        marked[kind]["content"] = head + _fit(content, CONTENT_LIMITS[kind] - utf8_len(head))
        return marked
    articles = body.get("articles")
    if kind == "news" and isinstance(articles, list) and articles:
        first = articles[0]
        if not isinstance(first, dict) or str(first.get("title", "")).startswith(MAY_REPEAT):
            return payload
        head = MAY_REPEAT + " "
        marked = copy.deepcopy(payload)
        title = str(first.get("title", ""))
        marked["news"]["articles"][0]["title"] = head + _fit(
            title, NEWS_TITLE_MAX_BYTES - utf8_len(head)
        )
        return marked
    return payload


def _fit(text: str, room: int) -> str:
    """``text`` within ``room`` UTF-8 bytes, cut at its end with ``…`` when it does not fit."""
    if utf8_len(text) <= room:
        return text
    return truncate_utf8(text, max(room - utf8_len("…"), 0)) + "…"
