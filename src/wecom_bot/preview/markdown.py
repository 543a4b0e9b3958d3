"""The legacy WeCom ``markdown`` subset, drawn as the client draws it.

Supported, per the API page: headings 1-6 (``#`` followed by a space), ``**bold**``,
``[links](url)``, single-line ``inline code``, ``>`` quotes, ``<font color="info|comment|warning">``
and ``<@userid>`` mentions. Everything else (lists, tables, images, italics, code fences, any other
tag or colour) is shown literally, the way the WeCom client shows it, never "fixed".

The parser works line by line and never backtracks: closers are located with ``str.find`` or
anchored regexes over negated character classes, and ``<font>`` pairs are matched once per line
with a stack, so the cost stays linear in the input (times a small nesting cap).
"""

from __future__ import annotations

import re

from ._html import InlineScanner, esc, link_open

__all__ = ["render_markdown"]

MAX_INLINE_DEPTH = 8
"""Deeper bold/font/link nesting than this is shown as literal text."""

FONT_COLORS = ("info", "comment", "warning")

_SPECIAL = re.compile(r"[`*\[!<]")
_HEADING = re.compile(r"(#{1,6})[ \t]+(.*)")
_QUOTE = re.compile(r" {0,3}>[ \t]?")
# One level of balanced parentheses is allowed in a URL; the alternatives start with disjoint
# characters, so a failed match backtracks linearly.
_LINK = re.compile(r"\[([^\[\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))*)\)")
_MENTION = re.compile(r"<@([^\s<>]{1,64})>")
_FONT_TAG = re.compile(r"<font\b[^<>]*>|</font\s*>")
_FONT_OPEN_OK = re.compile(
    r"""<font\s+color\s*=\s*(?:"(info|comment|warning)"|'(info|comment|warning)')\s*>"""
)


def mention_chip(userid: str) -> str:
    """Return the highlighted ``@userid`` chip (``@all`` gets its own class)."""
    cls = "wb-mention wb-mention--all" if userid == "@all" or userid == "all" else "wb-mention"
    name = userid if userid.startswith("@") else f"@{userid}"
    return f'<span class="{cls}">{esc(name)}</span>'


class _Line(InlineScanner):
    """Inline renderer for one line; ranges are rendered in place, never sliced and re-scanned."""

    special = _SPECIAL

    def __init__(self, text: str) -> None:
        self.text = text
        # open tag start -> (open tag end, close tag start, close tag end, colour or None)
        self.fonts: dict[int, tuple[int, int, int, str | None]] = {}
        if "<font" in text:
            self._pair_fonts()

    def _pair_fonts(self) -> None:
        stack: list[tuple[int, int, str | None]] = []
        for tag in _FONT_TAG.finditer(self.text):
            if tag.group().startswith("</"):
                if stack:
                    start, end, colour = stack.pop()
                    self.fonts[start] = (end, tag.start(), tag.end(), colour)
                continue
            ok = _FONT_OPEN_OK.fullmatch(tag.group())
            colour = (ok.group(1) or ok.group(2)) if ok else None
            stack.append((tag.start(), tag.end(), colour))

    def special_at(self, j: int, end: int, depth: int, links: bool) -> tuple[str, int]:
        text = self.text
        ch = text[j]
        deeper = depth < MAX_INLINE_DEPTH
        if ch == "`":
            run = j
            while run < end and text[run] == "`":
                run += 1
            if run - j == 1:
                close = text.find("`", j + 1, end)
                if close > j + 1:
                    return f'<code class="wb-md-code">{esc(text[j + 1 : close])}</code>', close + 1
            # Fences and unmatched backticks are not part of the subset.
            return esc(text[j:run]), run
        if ch == "*":
            if text.startswith("**", j) and deeper:
                close = text.find("**", j + 2, end)
                if close > j + 2:
                    inner = self.render(j + 2, close, depth + 1, links)
                    return f"<strong>{inner}</strong>", close + 2
            run = j
            while run < end and text[run] == "*":
                run += 1
            return esc(text[j:run]), run
        if ch == "!":
            image = _LINK.match(text, j + 1, end)
            if image is not None:
                return esc(text[j : image.end()]), image.end()
            return "!", j + 1
        if ch == "[":
            link = _LINK.match(text, j, end)
            if link is not None and links and deeper:
                label = self.render(link.start(1), link.end(1), depth + 1, links=False)
                opening = link_open(link.group(2), "wb-link")
                if opening is None:
                    return f'<span class="wb-link wb-link--blocked">{label}</span>', link.end()
                return f"{opening}{label}</a>", link.end()
            return "[", j + 1
        # ch == "<"
        mention = _MENTION.match(text, j, end)
        if mention is not None:
            return mention_chip(mention.group(1)), mention.end()
        pair = self.fonts.get(j)
        if pair is not None and deeper:
            open_end, close_start, close_end, colour = pair
            if colour is not None and close_end <= end:
                inner = self.render(open_end, close_start, depth + 1, links)
                return f'<span class="wb-font wb-font--{colour}">{inner}</span>', close_end
        return "&lt;", j + 1


def render_inline(line: str) -> str:
    """Render one line of the legacy subset's inline syntax to HTML."""
    return _Line(line).render(0, len(line), 0, links=True)


def render_markdown(content: str) -> str:
    """Render WeCom legacy ``markdown`` content as an HTML fragment.

    Args:
        content: The ``markdown.content`` string of a payload (any text; nothing is trusted).

    Returns:
        A ``<div class="wb-md">`` fragment. Every character of ``content`` is escaped; only
        http(s) links become ``<a href>``.
    """
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[str] = []
    quote: list[str] = []

    def flush_quote() -> None:
        if quote:
            blocks.append(f'<blockquote class="wb-md-quote">{"".join(quote)}</blockquote>')
            quote.clear()

    for line in lines:
        quoted = _QUOTE.match(line)
        if quoted is not None:
            quote.append(_line_div(render_inline(line[quoted.end() :])))
            continue
        flush_quote()
        heading = _HEADING.fullmatch(line)
        if heading is not None:
            level = len(heading.group(1))
            inner = render_inline(heading.group(2).rstrip())
            blocks.append(f'<h{level} class="wb-md-h wb-md-h{level}">{inner}</h{level}>')
        else:
            blocks.append(_line_div(render_inline(line)))
    flush_quote()
    return f'<div class="wb-md">{"".join(blocks)}</div>'


def _line_div(inner: str) -> str:
    return f'<div class="wb-md-line">{inner or "<br>"}</div>'
