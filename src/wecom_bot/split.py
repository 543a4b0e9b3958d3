"""Byte-exact, markdown-aware splitting of content that exceeds a message's byte limit.

Every WeCom content limit counts UTF-8 bytes (2048 for text, 4096 for markdown and
markdown_v2). :func:`split_content` cuts content into parts that each fit, without cutting a
character, preferring the most natural boundary that still fills at least half the budget:
after a blank line (a paragraph), then after a newline, then after a space or a CJK
punctuation mark (a word), then between grapheme clusters, and only as a last resort between
any two code points. (Half, because each part is one message of 20 per minute: a paragraph
boundary that leaves a part nearly empty is not worth a message.)

How a part is made (see :class:`SplitPart`)::

    part = prefix + body + suffix + marker

* ``body`` is a slice of the original content; the bodies of all parts, concatenated, give
  back the content exactly: nothing is dropped, reordered or repeated. Whitespace at a cut
  stays at the end of the part before it, so no part starts with stray blank lines.
* ``prefix`` and ``suffix`` keep markdown valid across a cut: a code fence open at the cut is
  closed at the end of the part (``suffix``: the fence characters, on their own line) and
  reopened at the start of the next one (``prefix``: the original opening line, info string
  included). In markdown_v2, a part that starts inside a table's rows begins with the table's
  header and alignment rows again (``prefix``).
* ``marker`` is the optional ``(i/n)`` line, counted inside the budget like everything else.

In markdown, a cut never falls inside a link or image ``[..](..)``, inline code, a
``<font ...>...</font>`` span or a ``<@userid>`` mention, nor inside a fence line or a
table's header block. Only when one such span alone is larger than the whole budget is it
cut like plain text, because the alternative would be dropping it.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Literal

from . import limits

if TYPE_CHECKING:
    from .messages import Message

__all__ = [
    "SplitPart",
    "Syntax",
    "plan_split",
    "split_content",
    "split_message",
    "split_to_messages",
]

Syntax = Literal["text", "markdown", "markdown_v2"]
_SYNTAXES = ("text", "markdown", "markdown_v2")


@dataclass(frozen=True)
class SplitPart:
    """One part of split content: ``prefix + body + suffix + marker``.

    Attributes:
        body: the slice of the original content this part carries.
        prefix: lines repeated from earlier content to keep markdown valid (a code fence's
            opening line, or a markdown_v2 table's header and alignment rows), or ``""``.
        suffix: the closing fence added when a code block is open at the cut, or ``""``.
        marker: the part marker such as ``"\\n(2/3)"`` (with the newlines that put it on its
            own line), or ``""``.
    """

    body: str
    prefix: str = ""
    suffix: str = ""
    marker: str = ""

    @property
    def text(self) -> str:
        """The part as it is sent."""
        return self.prefix + self.body + self.suffix + self.marker


# Cut ranks: higher is a more natural place to cut.
_PARAGRAPH, _LINE, _WORD, _GRAPHEME, _CODEPOINT = 3, 2, 1, 0, -1
_RANKS = (_PARAGRAPH, _LINE, _WORD, _GRAPHEME, _CODEPOINT)

# Cutting after one of these leaves a natural break in CJK text, which has no spaces.
_CJK_BREAK_AFTER = frozenset("，。！？；：、）》」』】〉…—,.!?;:")

# Matched with fullmatch() on one line (without its "\n").
_FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})([^\r\n]*)\r?")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?")
_TABLE_ALIGN = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_ATOM = re.compile(
    r"<font\b[^>]*>(?s:.*?)</font>"  # a coloured span, possibly over several lines
    r"|!?\[[^\[\]\n]*\]\((?:[^()\s]|\([^()\s]*\))*\)"  # link or image, URL may hold (..)
    r"|(`+)(?!`)[^\n]*?(?<!`)\1(?!`)"  # inline code, on one line
    r"|<@[^<>\s]+>",  # mention
    re.IGNORECASE,
)


_GLUE_BEFORE = frozenset("\r\u200d")
# Where a character may glue to the one before it (see _grapheme_glued): at or after U+0300,
# or after a carriage return or a zero-width joiner.
_MAY_GLUE = re.compile(r"[\u0300-\U0010ffff]|(?<=[\r\u200d]).", re.DOTALL)
_CJK_BREAK_CLASS = "".join(re.escape(c) for c in sorted(_CJK_BREAK_AFTER))
# A word starts at a non-space after a space or a CJK break.
_WORD_START = re.compile(rf"(?<=[\s{_CJK_BREAK_CLASS}])[^\s]")


def _grapheme_glued(prev: str, ch: str, ri_run: int) -> bool:
    """Whether cutting between ``prev`` and ``ch`` would split one visible character."""
    if prev == "\r" and ch == "\n":
        return True
    if prev == "\u200d" or ch == "\u200d":  # zero-width joiner sequences (family emoji ...)
        return True
    code = ord(ch)
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:  # skin tones, emoji tags
        return True
    if unicodedata.category(ch) in ("Mn", "Mc", "Me"):  # combining marks, variation selectors
        return True
    # Regional indicators pair up into flags; an odd run length means ``ch`` completes one.
    return 0x1F1E6 <= code <= 0x1F1FF and ri_run % 2 == 1


@dataclass(frozen=True)
class _Fence:
    body_start: int  # just after the opening line
    close_start: int  # start of the closing line, or len(content) when unclosed
    opening: str  # the opening line as written (indentation and info string kept)
    closing: str  # the fence characters


@dataclass(frozen=True)
class _Table:
    rows_start: int  # a part starting at or after this (and before ``end``) repeats the header
    end: int  # end of the last row's text
    header: str  # header and alignment rows, each ending in "\n"


class _Layout:
    """What the content allows: cut ranks, spans not to cut, fences and tables."""

    def __init__(self, content: str, syntax: str) -> None:
        self.content = content
        n = self.n = len(content)
        # Per-character maps in C: these run over every character of a long content.
        self.offs: list[int] = list(accumulate(map(len, map(str.encode, content)), initial=0))
        self.nonws: list[int] = list(
            accumulate(map(operator.not_, map(str.isspace, content)), initial=0)
        )
        self.forbidden = bytearray(n + 1)
        self.fences: list[_Fence] = []
        self.tables: list[_Table] = []
        # Every position is a grapheme boundary but where a character glues to the one
        # before it; a word starts after a space or a CJK break; lines and paragraphs last.
        rank = [_GRAPHEME] * (n + 1)
        rank[0] = _CODEPOINT
        for match in _WORD_START.finditer(content, 1):
            rank[match.start()] = _WORD
        for match in _MAY_GLUE.finditer(content, 1):
            i = match.start()
            ri_run = 0
            while ri_run < i and "\U0001f1e6" <= content[i - 1 - ri_run] <= "\U0001f1ff":
                ri_run += 1
            if _grapheme_glued(content[i - 1], content[i], ri_run):
                rank[i] = _CODEPOINT

        lines: list[tuple[int, int]] = []  # (start, end of text without "\n")
        start = 0
        while start < n:
            newline = content.find("\n", start)
            end = n if newline < 0 else newline
            lines.append((start, end))
            start = end + 1

        blank_before = False
        for line_start, line_end in lines:
            if line_start > 0:
                rank[line_start] = _PARAGRAPH if blank_before else _LINE
            blank_before = content[line_start:line_end].strip() == ""
        rank[n] = _PARAGRAPH

        if syntax != "text":
            outside = self._find_fences(lines)
            for seg_start, seg_end in outside:
                for match in _ATOM.finditer(content, seg_start, seg_end):
                    self._forbid(match.start() + 1, match.end())
            if syntax == "markdown_v2":
                self._find_tables(lines, outside)

        by_rank: dict[int, list[int]] = {r: [] for r in _RANKS}
        for i in range(1, n + 1):
            by_rank[rank[i]].append(i)
        self.at_least: dict[int, Sequence[int]] = {}
        for r in _RANKS[:-1]:
            self.at_least[r] = sorted(i for q in _RANKS if q >= r for i in by_rank[q])
        self.at_least[_CODEPOINT] = range(1, n + 1)
        self._fence_starts = [f.body_start for f in self.fences]
        self._table_starts = [t.rows_start for t in self.tables]

    def _forbid(self, start: int, stop: int) -> None:
        """Forbid cuts at positions ``start .. stop - 1``."""
        for i in range(max(start, 1), min(stop, self.n)):  # the end stays a valid cut
            self.forbidden[i] = 1

    def _find_fences(self, lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Record code fences; return the (start, end) ranges of content outside them."""
        content, n = self.content, self.n
        outside: list[tuple[int, int]] = []
        seg_start = 0
        i = 0
        while i < len(lines):
            line_start, line_end = lines[i]
            opening = _FENCE_OPEN.fullmatch(content, line_start, line_end)
            if opening is None or (opening[2][0] == "`" and "`" in opening[3]):
                i += 1
                continue
            fence_chars = opening[2]
            body_start = min(line_end + 1, n)
            close_start = close_end = n
            j = i + 1
            while j < len(lines):
                closing = _FENCE_CLOSE.fullmatch(content, lines[j][0], lines[j][1])
                if (
                    closing is not None
                    and closing[1][0] == fence_chars[0]
                    and len(closing[1]) >= len(fence_chars)
                ):
                    close_start, close_end = lines[j]
                    break
                j += 1
            self.fences.append(
                _Fence(
                    body_start, close_start, content[line_start:line_end].rstrip("\r"), fence_chars
                )
            )
            outside.append((seg_start, line_start))
            # No cut inside a fence line, nor right after the opening or before the closing
            # one: each would leave a part holding an empty code block.
            self._forbid(line_start + 1, body_start + 1)
            if close_start < n:
                self._forbid(close_start, close_end)
            seg_start = close_end
            i = j + 1
        outside.append((seg_start, n))
        return [(a, b) for a, b in outside if a < b]

    def _find_tables(self, lines: list[tuple[int, int]], outside: list[tuple[int, int]]) -> None:
        content, n = self.content, self.n

        starts = [a for a, _ in outside]

        def is_outside(pos: int) -> bool:
            idx = bisect_right(starts, pos) - 1
            return idx >= 0 and pos < outside[idx][1]

        def text(k: int) -> str:
            return content[lines[k][0] : lines[k][1]].rstrip("\r")

        k = 0
        while k + 1 < len(lines):
            header, align = text(k), text(k + 1)
            if not (
                "|" in header
                and header.strip()
                and _TABLE_ALIGN.fullmatch(align)
                and "-" in align
                and is_outside(lines[k][0])
                and is_outside(lines[k + 1][0])
            ):
                k += 1
                continue
            rows: list[int] = []
            m = k + 2
            while m < len(lines) and "|" in text(m) and text(m).strip() and is_outside(lines[m][0]):
                rows.append(m)
                m += 1
            first_after = (lines[rows[0]] if rows else lines[k + 1])[1] + 1
            # The header rows and the first body row stay together.
            self._forbid(lines[k][0] + 1, min(first_after, n + 1))
            if rows:
                self.tables.append(
                    _Table(min(first_after, n), lines[rows[-1]][1], f"{header}\n{align}\n")
                )
            k = m

    def prefix_at(self, pos: int) -> str:
        """The lines to repeat at the start of a part that begins at ``pos``."""
        idx = bisect_right(self._fence_starts, pos) - 1
        if idx >= 0 and pos <= self.fences[idx].close_start and pos < self.n:
            return self.fences[idx].opening + "\n"
        idx = bisect_right(self._table_starts, pos) - 1
        if idx >= 0 and pos < self.tables[idx].end:
            return self.tables[idx].header
        return ""

    def suffix_at(self, end: int) -> str:
        """The closing fence for a part that ends at ``end``, if a code block is open there."""
        if end >= self.n:
            return ""  # the last part ends as the content does, closed or not
        idx = bisect_right(self._fence_starts, end) - 1
        if idx >= 0 and end <= self.fences[idx].close_start:
            closing = self.fences[idx].closing
            return closing if self.content[end - 1] == "\n" else "\n" + closing
        return ""

    def find_end(self, pos: int, budget: int, *, strict: bool, decorate: bool) -> int | None:
        """The best end for a part starting at ``pos`` whose body and suffix get ``budget`` bytes.

        The most natural cut that fills at least half the budget wins: a paragraph boundary
        that leaves a part nearly empty costs a whole message of a 20-per-minute allowance.
        When no cut fills half (a large span follows), the most natural one found is used.
        ``strict`` keeps cuts out of spans and whitespace-only parts; ``decorate`` counts the
        closing fence a cut inside a code block needs.
        """
        offs = self.offs
        last = min(bisect_right(offs, offs[pos] + budget) - 1, self.n)
        if last <= pos:
            return None
        fallback: int | None = None
        for r in _RANKS:
            end = self._furthest(pos, last, budget, r, strict=strict, decorate=decorate)
            if end is None:
                continue
            if end == self.n or 2 * (offs[end] - offs[pos]) >= budget:
                # Filling the part never justifies splitting a visible character.
                return fallback if r == _CODEPOINT and fallback is not None else end
            if fallback is None:
                fallback = end
        return fallback

    def _furthest(
        self, pos: int, last: int, budget: int, rank: int, *, strict: bool, decorate: bool
    ) -> int | None:
        offs, n, nonws = self.offs, self.n, self.nonws
        candidates = self.at_least[rank]
        idx = bisect_right(candidates, last) - 1
        while idx >= 0 and (end := candidates[idx]) > pos:
            idx -= 1
            if strict and (
                self.forbidden[end]
                or nonws[end] == nonws[pos]  # the part would be only whitespace
                or (end < n and nonws[n] == nonws[end])  # so would the next one
            ):
                continue
            suffix = len(self.suffix_at(end).encode("utf-8")) if decorate else 0
            if offs[end] - offs[pos] + suffix <= budget:
                return end
        return None


def _marker_gap(text: str, syntax: str) -> str:
    # markdown_v2 needs a blank line, or the marker would join the last paragraph or table.
    need = 2 if syntax == "markdown_v2" else 1
    have = len(text) - len(text.rstrip("\n"))
    return "\n" * max(need - have, 0)


def _plan(layout: _Layout, max_bytes: int, reserve: int) -> list[SplitPart]:
    parts: list[SplitPart] = []
    pos = 0
    while pos < layout.n:
        prefix = layout.prefix_at(pos) if pos > 0 else ""
        room = max_bytes - reserve - len(prefix.encode("utf-8"))
        decorate = True
        end = layout.find_end(pos, room, strict=True, decorate=True)
        if end is None:
            end = layout.find_end(pos, room, strict=False, decorate=True)
        if end is None:
            # Repeated lines too large for the budget: send this part without them.
            prefix, decorate = "", False
            end = layout.find_end(pos, max_bytes - reserve, strict=False, decorate=False)
        if end is None:
            raise ValueError(
                f"max_bytes={max_bytes} is too small to make progress"
                + (" with part markers" if reserve else "")
            )
        suffix = layout.suffix_at(end) if decorate else ""
        parts.append(SplitPart(body=layout.content[pos:end], prefix=prefix, suffix=suffix))
        pos = end
    return parts


def plan_split(
    content: str,
    max_bytes: int,
    *,
    syntax: Syntax = "text",
    markers: bool = False,
) -> list[SplitPart]:
    """Split ``content`` like :func:`split_content`, keeping the structure of every part.

    Use it to see which bytes of each part are original content (``body``) and which were
    added to keep markdown valid or to number the parts.

    Args:
        content: the content to split.
        max_bytes: the budget of each part in UTF-8 bytes, everything included.
        syntax: how the content is rendered: ``"text"`` (no markup), ``"markdown"`` or
            ``"markdown_v2"``.
        markers: append ``(i/n)`` on its own line to each part when there are several.

    Returns:
        One :class:`SplitPart` per part; a single part with the content unchanged when it fits.

    Raises:
        ValueError: an unknown syntax, or ``max_bytes`` too small to hold one character
            (plus the marker).
    """
    if syntax not in _SYNTAXES:
        raise ValueError(f"unknown syntax {syntax!r}: expected one of {', '.join(_SYNTAXES)}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if limits.utf8_len(content) <= max_bytes:
        return [SplitPart(body=content)]
    layout = _Layout(content, syntax)
    parts = _plan(layout, max_bytes, 0)
    if not markers:
        return parts
    gap = 2 if syntax == "markdown_v2" else 1
    digits = len(str(len(parts)))
    while True:
        # "(i/n)" is never wider than "(n/n)"; re-plan until the count keeps its width.
        parts = _plan(layout, max_bytes, gap + 3 + 2 * digits)
        if len(str(len(parts))) <= digits:
            break
        digits = len(str(len(parts)))
    total = len(parts)
    return [
        SplitPart(
            body=p.body,
            prefix=p.prefix,
            suffix=p.suffix,
            marker=_marker_gap(p.text, syntax) + f"({i}/{total})",
        )
        for i, p in enumerate(parts, start=1)
    ]


def split_content(
    content: str,
    max_bytes: int,
    *,
    syntax: Syntax = "text",
    markers: bool = False,
) -> list[str]:
    """Split ``content`` into parts of at most ``max_bytes`` UTF-8 bytes each.

    See the module documentation for where cuts fall and what is added to keep markdown
    valid; :func:`plan_split` returns the same parts with that structure visible.

    Args:
        content: the content to split.
        max_bytes: the budget of each part in UTF-8 bytes, markers and added lines included.
        syntax: ``"text"``, ``"markdown"`` or ``"markdown_v2"``.
        markers: append ``(i/n)`` on its own line to each part when there are several
            (a content that fits is returned unchanged, without a marker).

    Returns:
        The parts, in order; ``[content]`` when it fits.

    Raises:
        ValueError: an unknown syntax, or ``max_bytes`` too small to make progress.
    """
    return [part.text for part in plan_split(content, max_bytes, syntax=syntax, markers=markers)]


def split_to_messages(
    msgtype: Literal["text", "markdown", "markdown_v2"],
    content: str,
    *,
    mentioned_list: list[str] | tuple[str, ...] | None = None,
    mentioned_mobile_list: list[str] | tuple[str, ...] | None = None,
    markers: bool = False,
) -> list[Message]:
    """Build as many messages of ``msgtype`` as ``content`` needs to fit the API's limit.

    A message model rejects oversize content when it is built, so this is the way to send a
    long text: ``for m in split_to_messages("text", long_text): bot.send(m)``.

    Mentions (text only) go on the first part only: a mention should notify each person once,
    and the first part is where the reader should start; it arrives first and usually holds
    the headline. Later parts follow in the same chat.

    Args:
        msgtype: ``"text"``, ``"markdown"`` or ``"markdown_v2"``.
        content: the content, of any length.
        mentioned_list: text only: userids (or ``"@all"``) to mention, on the first part.
        mentioned_mobile_list: text only: mobiles (or ``"@all"``) to mention, on the first part.
        markers: number the parts ``(i/n)`` when there are several.

    Returns:
        The messages, in sending order.

    Raises:
        ValueError: another msgtype, or mentions given for a markdown type.
        MessageValidationError: the content is empty.
    """
    from .messages import MarkdownMessage, MarkdownV2Message, TextMessage
    from .messages._base import as_list

    if msgtype not in limits.CONTENT_LIMITS:
        raise ValueError(
            f"cannot split a {msgtype!r} message: only text, markdown and markdown_v2 have content"
        )
    if msgtype != "text" and (mentioned_list or mentioned_mobile_list):
        raise ValueError(f"{msgtype} has no mentioned lists; use <@userid> in markdown content")
    parts = split_content(content, limits.CONTENT_LIMITS[msgtype], syntax=msgtype, markers=markers)
    if msgtype == "markdown":
        return [MarkdownMessage(content=part) for part in parts]
    if msgtype == "markdown_v2":
        return [MarkdownV2Message(content=part) for part in parts]
    return [
        TextMessage(
            content=part,
            mentioned_list=as_list(mentioned_list) if i == 0 else None,
            mentioned_mobile_list=as_list(mentioned_mobile_list) if i == 0 else None,
        )
        for i, part in enumerate(parts)
    ]


def split_message(message: Message, *, markers: bool = False) -> list[Message]:
    """Split a text, markdown or markdown_v2 message whose content exceeds the API's limit.

    Message models reject oversize content when validated, so an oversize message reaches
    this function only when built without validation (``model_construct``, e.g. from a
    stored payload); :func:`split_to_messages` builds the parts from plain content.
    Mentions of a text message stay on the first part only (see :func:`split_to_messages`).

    Args:
        message: the message.
        markers: number the parts ``(i/n)`` when there are several.

    Returns:
        ``[message]`` itself when it fits; otherwise new, validated messages in sending order.

    Raises:
        ValueError: the message is of another type (image, news, file, voice, template_card).
    """
    from .messages import MarkdownMessage, MarkdownV2Message, TextMessage

    if isinstance(message, TextMessage):
        if limits.utf8_len(message.content) <= limits.TEXT_CONTENT_MAX_BYTES:
            return [message]
        return split_to_messages(
            "text",
            message.content,
            mentioned_list=message.mentioned_list,
            mentioned_mobile_list=message.mentioned_mobile_list,
            markers=markers,
        )
    if isinstance(message, MarkdownMessage | MarkdownV2Message):
        msgtype: Literal["markdown", "markdown_v2"] = (
            "markdown" if isinstance(message, MarkdownMessage) else "markdown_v2"
        )
        if limits.utf8_len(message.content) <= limits.CONTENT_LIMITS[msgtype]:
            return [message]
        return split_to_messages(msgtype, message.content, markers=markers)
    raise ValueError(
        f"cannot split a {message.msgtype!r} message: only text, markdown and markdown_v2 "
        "have content to split"
    )
