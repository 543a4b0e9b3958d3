"""Coalescing a backlog of messages into digest messages that keep every item.

When a robot's backlog cannot drain within the allowed delay at 20 messages per minute, the
dispatcher folds pending text/markdown messages into a few digests. Two forms:

* **full**: the items' contents, one after another, packed greedily into as few messages as
  the byte limit allows (an item too large for one message is split across messages);
* **compact**: one line per item (its first line, markup stripped, cut to a fair share of the
  budget), used when the full form would need more messages than the rate allows in time.

Never does an item disappear: the compact form still has a line for each one, and if even the
compact form does not fit in the slots available it simply uses more messages.

Each digest message starts with a heading in the language of the other built-in texts:
``合并 1/2 · 6 条通知`` (the compact form adds ``（每条一行）``).

Whether a queued message may be packed whole is for the dispatcher to decide from what the
message is (:data:`SHAPE_KEY`): only a whole message written per alert is; a storm summary, a
part of a split notification or a digest is not, so a digest never nests a summary or carries
half of an entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .limits import CONTENT_LIMITS, truncate_utf8, utf8_len
from .split import split_content
from .storm import CARRIED_PREFIX

Syntax = Literal["text", "markdown", "markdown_v2"]
Form = Literal["alerts", "summary"]

SHAPE_KEY = CARRIED_PREFIX + "shape"
"""The payload member that says what a queued message is (stripped before sending, like every
``wecom_bot_`` member): ``{"form": "alerts" | "summary", "part": i, "parts": n}``. ``alerts``:
written per alert by a route's template; ``summary``: a storm summary; ``part`` of ``parts``:
its place in a notification rendered into several messages."""

_SEPARATOR = "\n\n"
_COMPACT_NOTE = "（每条一行）"
_RUNNING = {"firing": "累计告警", "resolved": "累计恢复"}
_HEADER_RESERVE = utf8_len(
    f"**合并 9999/9999 · 99999 条通知{_COMPACT_NOTE} · 累计告警 9999999 · 累计恢复 9999999**\n\n"
)
_MIN_LINE_BYTES = 24
_MENTION = re.compile(r"<@[^<>\s]+>")
_FONT_TAG = re.compile(r"</?font[^>]*>", re.IGNORECASE)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_LEADING_MARKS = re.compile(r"^[\s#>*\-+`]+")


@dataclass(frozen=True)
class DigestPlan:
    """The digest messages for a batch of items.

    Attributes:
        contents: the content of each digest message, in order.
        compact: whether the one-line-per-item form was used.
        whole: whether every item sits whole in one message (not compact, and no item too
            large for one message was split across two).
        items: how many items the digests carry (all of them, always).
        mentioned_list: for text digests, every userid any item mentioned.
        mentioned_mobile_list: likewise for mobiles.
    """

    contents: list[str]
    compact: bool
    items: int
    whole: bool = True
    mentioned_list: list[str] = field(default_factory=list)
    mentioned_mobile_list: list[str] = field(default_factory=list)

    def payloads(self, syntax: Syntax) -> list[dict[str, Any]]:
        """The API payloads of the digests; text mentions ride on the first part only."""
        out: list[dict[str, Any]] = []
        for i, content in enumerate(self.contents):
            body: dict[str, Any] = {"content": content}
            if syntax == "text" and i == 0:
                if self.mentioned_list:
                    body["mentioned_list"] = self.mentioned_list
                if self.mentioned_mobile_list:
                    body["mentioned_mobile_list"] = self.mentioned_mobile_list
            out.append({"msgtype": syntax, syntax: body})
        return out


def with_shape(
    payload: Mapping[str, Any], form: Form, part: int = 1, parts: int = 1
) -> dict[str, Any]:
    """``payload`` marked with what it is (:data:`SHAPE_KEY`), for the digests."""
    return {**payload, SHAPE_KEY: {"form": form, "part": part, "parts": parts}}


def packable(payload: Mapping[str, Any]) -> bool:
    """Whether a queued message may be packed whole into a digest: a whole message written per
    alert, not a summary and not a part of a split notification. A message that does not say
    what it is (queued by an earlier version, or by another caller) is not."""
    shape = payload.get(SHAPE_KEY)
    return (
        isinstance(shape, Mapping)
        and shape.get("form") == "alerts"
        and shape.get("part") == 1
        and shape.get("parts") == 1
    )


def item_content(payload: dict[str, Any]) -> str:
    """The content string of a text/markdown/markdown_v2 payload."""
    body = payload.get(payload["msgtype"], {})
    return str(body.get("content", ""))


def one_line(content: str, syntax: Syntax) -> str:
    """The first non-empty line of ``content`` with markup stripped (for the compact form)."""
    for line in content.splitlines():
        if syntax != "text":
            line = _LINK.sub(r"\1", _FONT_TAG.sub("", _MENTION.sub("", line)))
            line = _LEADING_MARKS.sub("", line).replace("**", "").replace("`", "")
        line = " ".join(line.split())
        if line:
            return line
    return "(empty)"


def _pack(chunks: Sequence[str], budget: int) -> list[str]:
    """Greedily join chunks (each within budget) with separators into parts within budget."""
    parts: list[str] = []
    current = ""
    size = 0
    for chunk in chunks:
        chunk_size = utf8_len(chunk)
        if current and size + utf8_len(_SEPARATOR) + chunk_size <= budget:
            current += _SEPARATOR + chunk
            size += utf8_len(_SEPARATOR) + chunk_size
        else:
            if current:
                parts.append(current)
            current, size = chunk, chunk_size
    if current:
        parts.append(current)
    return parts


def _header(
    index: int, total: int, items: int, compact: bool, syntax: Syntax, running: str = ""
) -> str:
    form = _COMPACT_NOTE if compact else ""
    text = f"合并 {index}/{total} · {items} 条通知{form}{running}"
    return (f"**{text}**" if syntax != "text" else text) + "\n\n"


def plan_digest(
    contents: Sequence[str],
    *,
    syntax: Syntax,
    max_messages: int | None = None,
    mentioned: Sequence[Sequence[str]] = (),
    mentioned_mobiles: Sequence[Sequence[str]] = (),
    notifications: int | None = None,
    running_total: Mapping[str, int] | None = None,
) -> DigestPlan:
    """Fold item contents into digest message contents within the byte limit of ``syntax``.

    Args:
        contents: the items, oldest first.
        syntax: the msgtype of the digests (the items' own msgtype).
        max_messages: the sends available in time; above it the compact form is used.
        mentioned: per item, its text ``mentioned_list`` (merged onto the first digest).
        mentioned_mobiles: per item, its ``mentioned_mobile_list``.
        notifications: how many notifications the items carry, for the headings (the parts
            of one split notification are several items); ``None``: one per item.
        running_total: a later part of a storm: the distinct alerts delivered since the storm
            began, per status (:mod:`wecom_bot.tally`), stated in the headings
            (``累计告警 1000``, ``累计恢复 386``).

    Returns:
        The plan; ``len(plan.contents)`` messages carry all ``len(contents)`` items.
    """
    limit = CONTENT_LIMITS[syntax]
    budget = limit - _HEADER_RESERVE
    mentions = _merged(mentioned)
    mobiles = _merged(mentioned_mobiles)
    markdown_mentions = mentions_in(contents) if syntax == "markdown" else []

    sizes = [utf8_len(c) for c in contents]
    # The full form needs at least this many messages; past the slots, skip building it.
    least = -(-(sum(sizes) + utf8_len(_SEPARATOR) * (len(sizes) - 1)) // budget)
    compact = max_messages is not None and least > max(max_messages, 1)
    whole = not compact
    if not compact:
        full_chunks: list[str] = []
        for content, size in zip(contents, sizes, strict=True):
            if size <= budget:
                full_chunks.append(content)
            else:
                whole = False
                full_chunks.extend(split_content(content, budget, syntax=syntax) or [content])
        parts = _pack(full_chunks, budget)
        compact = max_messages is not None and len(parts) > max(max_messages, 1)
    if compact:
        whole = False
        parts = _compact_parts(contents, syntax, budget, max(max_messages or 1, 1))
        for line in mention_lines(markdown_mentions, budget):
            parts = _append_line(parts, line, budget)
    total = len(parts)
    count = len(contents) if notifications is None else notifications
    running = "".join(
        f" · {_RUNNING[status]} {n}"
        for status, n in sorted((running_total or {}).items())
        if status in _RUNNING
    )
    final = [
        _header(i + 1, total, count, compact, syntax, running) + p for i, p in enumerate(parts)
    ]
    return DigestPlan(
        contents=final,
        compact=compact,
        items=len(contents),
        whole=whole,
        mentioned_list=mentions,
        mentioned_mobile_list=mobiles,
    )


def _compact_parts(contents: Sequence[str], syntax: Syntax, budget: int, slots: int) -> list[str]:
    lines = [one_line(c, syntax) for c in contents]
    share = (slots * budget) // max(len(lines), 1) - 1  # one newline per line
    line_budget = max(_MIN_LINE_BYTES, min(share, budget))
    bullet = "- " if syntax != "text" else "• "
    cut = []
    for line in lines:
        entry = bullet + line
        if utf8_len(entry) > line_budget:
            entry = truncate_utf8(entry, line_budget - utf8_len("…")) + "…"
        cut.append(entry)
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for entry in cut:
        entry_size = utf8_len(entry) + 1
        if current and size + entry_size > budget:
            parts.append("\n".join(current))
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        parts.append("\n".join(current))
    return parts


def _append_line(parts: list[str], line: str, budget: int) -> list[str]:
    if utf8_len(parts[-1]) + 1 + utf8_len(line) <= budget:
        return [*parts[:-1], parts[-1] + "\n" + line]
    return [*parts, line]


def mention_lines(tags: Sequence[str], budget: int) -> list[str]:
    """``<@userid>`` ``tags`` joined into as few lines as fit ``budget`` bytes each (hundreds
    of people mentioned overflow one message)."""
    lines: list[str] = []
    current = ""
    for tag in tags:
        if current and utf8_len(current) + utf8_len(tag) > budget:
            lines.append(current)
            current = ""
        current += tag
    if current:
        lines.append(current)
    return lines


def mentions_in(contents: Sequence[str]) -> list[str]:
    """Every ``<@userid>`` tag the markdown ``contents`` hold, once each, in order."""
    return _merged([_MENTION.findall(c) for c in contents])


def _merged(lists: Sequence[Sequence[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen.setdefault(name, None)
    return list(seen)
