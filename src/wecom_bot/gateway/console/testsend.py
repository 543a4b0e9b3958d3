"""What the playground's "Send to bot" posts: a test that cannot be taken for a page.

A test send goes to a real group, where people act on what they read. So every message it
posts opens with the marker line (:data:`MARKER`), mentions nobody (no ``mentioned_list``, no
``<@userid>`` tag: whom the route would mention is written plainly, ``@dba-lead (测试，未提醒)``)
and carries no action link (the render is made without links, and any ``/act/`` URL or
Alertmanager new-silence URL the template wrote is replaced by words). The headline is fixed
text and every userid goes through the msgtype's escaping, so nothing typed in the playground
can put markup into the marker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ... import limits
from ...messages import parse_message
from ...split import split_content
from ..templates.escaping import escape
from ..templates.renderer import MsgType

__all__ = ["MARKER", "MarkedPart", "marked_messages"]

MARKER = "[测试 TEST]"
"""The first characters of every message a test send posts."""

_HEADLINE = f"{MARKER} 控制台试发，不是真实告警，未提醒任何人 · console test, not a real alert"
_INERT = "(测试，未提醒)"
# A mention tag of legacy markdown (typed into a template): written plainly instead.
_TAG = re.compile(r"<@([^<>\s]*)>")
# An action link, whatever its host: the gateway's /act/ links, and Alertmanager's page for a
# new silence. A test must not carry one, even a dead one.
_URL = r"https?://[^\s()<>\]]*(?:/act/|#/silences/new)[^\s()<>\]]*"
_LINKED = re.compile(r"\[([^\[\]\n]*)\]\(\s*" + _URL + r"\s*\)")
_ACT = re.compile(_URL)
_ACT_WORDS = "(测试：链接已停用 link disabled)"


@dataclass(frozen=True)
class MarkedPart:
    """One message of a test send: its payload and its content size against the limit."""

    payload: dict[str, Any]
    size: int
    limit: int


def _plain(userid: str, msgtype: MsgType) -> str:
    return "@" + escape(userid.lstrip("@"), msgtype) + " " + _INERT


def _scrub(content: str, msgtype: MsgType) -> str:
    content = _TAG.sub(lambda m: _plain(m.group(1), msgtype), content)
    content = _LINKED.sub(lambda m: f"{m.group(1)} {_ACT_WORDS}", content)  # the text stays
    return _ACT.sub(_ACT_WORDS, content)


def marked_messages(content: str, msgtype: MsgType, mentions: Sequence[str]) -> list[MarkedPart]:
    """The messages a test send of ``content`` (rendered without mentions or links) posts.

    Args:
        content: the rendered content, whole (before any split).
        msgtype: ``text``, ``markdown`` or ``markdown_v2``.
        mentions: the userids the route would mention: written plainly on the second line.

    Returns:
        The parts in sending order, each opening with :data:`MARKER`.
    """
    head = _HEADLINE
    if mentions:
        head += "\n" + "提醒对象 would mention: " + ", ".join(_plain(u, msgtype) for u in mentions)
    head += "\n"
    if msgtype != "text":
        head += "\n"  # a blank line: the template's first line stays a line of its own
    limit = limits.CONTENT_LIMITS[msgtype]
    body = _scrub(content, msgtype)
    budget = limit - limits.utf8_len(head)
    pieces = (
        split_content(body, budget, syntax=msgtype) if budget < limits.utf8_len(body) else [body]
    )
    parts: list[MarkedPart] = []
    for i, piece in enumerate(pieces):
        text = (head if i == 0 else f"{MARKER} ({i + 1}/{len(pieces)})\n\n") + piece
        payload = parse_message({"msgtype": msgtype, msgtype: {"content": text}}).to_payload()
        parts.append(MarkedPart(payload, limits.utf8_len(text), limit))
    return parts
