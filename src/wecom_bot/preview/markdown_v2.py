"""The WeCom ``markdown_v2`` subset: headings, emphasis, lists, quotes, links, images, rules,
code and tables.

Font colours and ``<@userid>`` mentions are *not* part of ``markdown_v2``: they are shown literally.
Raw HTML is never passed through. The parser is a small line-oriented block parser plus an inline
scanner; emphasis delimiters are paired through tables computed once per line, so no input makes it
quadratic, and nesting (quotes, lists, inline) is capped so hostile depth only costs linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._html import InlineScanner, esc, image_tag, link_open

__all__ = ["render_markdown_v2"]

MAX_BLOCK_DEPTH = 8
"""Quote and list nesting beyond this is flattened (the text is kept, the nesting is not)."""
MAX_INLINE_DEPTH = 8
"""Emphasis/link nesting beyond this is shown as literal text."""

_SPECIAL = re.compile(r"[`*\[!\\]")
# One level of balanced parentheses is allowed in a URL; the alternatives start with disjoint
# characters, so a failed match backtracks linearly.
_LINK = re.compile(r"\[([^\[\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))*)\)")
_STAR_RUN = re.compile(r"\*+")
_ESCAPABLE = re.compile(r"\\([!-/:-@\[-`{-~])")
_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.*)")
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_QUOTE = re.compile(r" {0,3}>[ \t]?")
_LIST = re.compile(r"([ \t]*)(?:([-*+])|(\d{1,9})[.)])[ \t]+(.*)")
_DELIM_CELL = re.compile(r":?-+:?")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


class _Inline(InlineScanner):
    """Inline renderer for one line of text."""

    special = _SPECIAL

    def __init__(self, text: str) -> None:
        self.text = text
        self.runs: dict[int, int] = {}
        # next_close[L][k]: index of the first run >= k of exactly L stars that can close.
        self.starts: list[int] = []
        self.next_close: dict[int, list[int]] = {}
        if "*" in text:
            self._index_stars()

    def _index_stars(self) -> None:
        text = self.text
        lengths: list[int] = []
        closers: list[bool] = []
        for run in _STAR_RUN.finditer(text):
            self.runs[run.start()] = len(self.starts)
            self.starts.append(run.start())
            lengths.append(run.end() - run.start())
            closers.append(run.start() > 0 and not text[run.start() - 1].isspace())
        count = len(self.starts)
        for size in (1, 2, 3):
            table = [-1] * (count + 1)
            for k in range(count - 1, -1, -1):
                table[k] = k if lengths[k] == size and closers[k] else table[k + 1]
            self.next_close[size] = table

    def special_at(self, j: int, end: int, depth: int, links: bool) -> tuple[str, int]:
        text = self.text
        ch = text[j]
        deeper = depth < MAX_INLINE_DEPTH
        if ch == "\\":
            if j + 1 < end and text[j + 1] in _PUNCT:
                return esc(text[j + 1]), j + 2
            return "\\", j + 1
        if ch == "`":
            run = j
            while run < end and text[run] == "`":
                run += 1
            ticks = text[j:run]
            close = text.find(ticks, run, end)
            if close > run:
                code = text[run:close]
                return f'<code class="wb-md-code">{esc(code)}</code>', close + len(ticks)
            return esc(ticks), run
        if ch == "*":
            return self._emphasis(j, end, depth, links)
        if ch == "!":
            image = _LINK.match(text, j + 1, end)
            if image is not None:
                tag = image_tag(_unescape(image.group(2)), "wb-md-img", image.group(1))
                return tag, image.end()
            return "!", j + 1
        # ch == "["
        link = _LINK.match(text, j, end)
        if link is not None and links and deeper:
            label = self.render(link.start(1), link.end(1), depth + 1, links=False)
            opening = link_open(_unescape(link.group(2)), "wb-link")
            if opening is None:
                return f'<span class="wb-link wb-link--blocked">{label}</span>', link.end()
            return f"{opening}{label}</a>", link.end()
        return "[", j + 1

    def _emphasis(self, j: int, end: int, depth: int, links: bool) -> tuple[str, int]:
        text = self.text
        index = self.runs.get(j)
        if index is None:  # the rest of a run whose first star was escaped
            return "*", j + 1
        run_end = j
        while run_end < len(text) and text[run_end] == "*":
            run_end += 1
        size = run_end - j
        can_open = run_end < len(text) and not text[run_end].isspace()
        if size <= 3 and can_open and depth < MAX_INLINE_DEPTH:
            closer = self.next_close[size][index + 1]
            if closer != -1 and self.starts[closer] + size <= end:
                close = self.starts[closer]
                inner = self.render(run_end, close, depth + 1, links)
                if size == 1:
                    return f"<em>{inner}</em>", close + size
                if size == 2:
                    return f"<strong>{inner}</strong>", close + size
                return f"<strong><em>{inner}</em></strong>", close + size
        stop = min(run_end, end)
        return esc(text[j:stop]), stop


def _unescape(url: str) -> str:
    return _ESCAPABLE.sub(r"\1", url)


def _inline(line: str) -> str:
    return _Inline(line).render(0, len(line), 0, links=True)


@dataclass
class _ListItem:
    html: str
    children: list[_List] = field(default_factory=list)


@dataclass
class _List:
    indent: int
    ordered: bool
    start: int
    items: list[_ListItem] = field(default_factory=list)

    def to_html(self) -> str:
        items = "".join(
            f"<li>{item.html}{''.join(child.to_html() for child in item.children)}</li>"
            for item in self.items
        )
        if self.ordered:
            start = f' start="{self.start}"' if self.start != 1 else ""
            return f'<ol class="wb-md-ol"{start}>{items}</ol>'
        return f'<ul class="wb-md-ul">{items}</ul>'


def _indent_width(prefix: str) -> int:
    return sum(4 if ch == "\t" else 1 for ch in prefix)


class _Blocks:
    """Block parser over a list of lines (quotes recurse on their stripped lines)."""

    def __init__(self, lines: list[str], depth: int) -> None:
        self.lines = lines
        self.depth = depth
        self.pos = 0
        self.out: list[str] = []
        self.paragraph: list[str] = []

    def parse(self) -> str:
        lines = self.lines
        while self.pos < len(lines):
            line = lines[self.pos]
            if not line.strip():
                self._flush()
                self.pos += 1
            elif (fence := _FENCE.fullmatch(line)) is not None and not (
                fence.group(1)[0] == "`" and "`" in fence.group(2)
            ):
                self._flush()
                self._code_block(fence.group(1))
            elif (heading := _HEADING.fullmatch(line)) is not None:
                self._flush()
                level = len(heading.group(1))
                inner = _inline(heading.group(2).rstrip())
                self.out.append(f'<h{level} class="wb-md-h wb-md-h{level}">{inner}</h{level}>')
                self.pos += 1
            elif _RULE.fullmatch(line) is not None:
                self._flush()
                self.out.append('<hr class="wb-md-hr">')
                self.pos += 1
            elif _QUOTE.match(line) is not None:
                self._flush()
                self._quote()
            elif _LIST.fullmatch(line) is not None:
                self._flush()
                self._list()
            elif "|" in line and self._table_header() is not None:
                self._flush()
                self._table()
            else:
                self.paragraph.append(line)
                self.pos += 1
        self._flush()
        return "".join(self.out)

    def _flush(self) -> None:
        if self.paragraph:
            body = "<br>".join(_inline(line.strip()) for line in self.paragraph)
            self.out.append(f'<p class="wb-md-p">{body}</p>')
            self.paragraph = []

    def _code_block(self, fence: str) -> None:
        self.pos += 1
        body: list[str] = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            self.pos += 1
            closing = line.strip()
            if closing.startswith(fence) and closing == fence[0] * len(closing):
                break
            body.append(line)
        code = esc("\n".join(body))
        self.out.append(f'<pre class="wb-md-pre"><code>{code}</code></pre>')

    def _quote(self) -> None:
        inner: list[str] = []
        while self.pos < len(self.lines):
            quoted = _QUOTE.match(self.lines[self.pos])
            if quoted is None:
                break
            inner.append(self.lines[self.pos][quoted.end() :])
            self.pos += 1
        if self.depth + 1 >= MAX_BLOCK_DEPTH:
            body = "<br>".join(_inline(line) for line in inner)
            content = f'<p class="wb-md-p">{body}</p>'
        else:
            content = _Blocks(inner, self.depth + 1).parse()
        self.out.append(f'<blockquote class="wb-md-quote">{content}</blockquote>')

    def _list(self) -> None:
        roots: list[_List] = []
        stack: list[_List] = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            item = _LIST.fullmatch(line)
            if item is None:
                if stack and line.strip() and line[:1] in (" ", "\t") and not _QUOTE.match(line):
                    last = stack[-1].items[-1]
                    last.html += "<br>" + _inline(line.strip())
                    self.pos += 1
                    continue
                break
            self.pos += 1
            indent = _indent_width(item.group(1))
            ordered = item.group(3) is not None
            number = int(item.group(3)) if ordered else 1
            html = _inline(item.group(4).rstrip())
            while stack and indent < stack[-1].indent:
                stack.pop()
            top = stack[-1] if stack else None
            if top is not None and indent >= top.indent + 2 and len(stack) < MAX_BLOCK_DEPTH:
                child = _List(indent, ordered, number)
                top.items[-1].children.append(child)
                stack.append(child)
            elif top is not None and top.ordered != ordered:
                sibling = _List(top.indent, ordered, number)
                stack.pop()
                (stack[-1].items[-1].children if stack else roots).append(sibling)
                stack.append(sibling)
            elif top is None:
                root = _List(indent, ordered, number)
                roots.append(root)
                stack.append(root)
            stack[-1].items.append(_ListItem(html))
        self.out.extend(root.to_html() for root in roots)

    def _table_header(self) -> list[str] | None:
        if self.pos + 1 >= len(self.lines):
            return None
        header = _cells(self.lines[self.pos])
        delimiter = _cells(self.lines[self.pos + 1])
        if len(header) != len(delimiter) or not all(_DELIM_CELL.fullmatch(c) for c in delimiter):
            return None
        return header

    def _table(self) -> None:
        header = _cells(self.lines[self.pos])
        aligns = [_alignment(cell) for cell in _cells(self.lines[self.pos + 1])]
        self.pos += 2
        head = "".join(
            f'<th class="wb-align-{align}">{_inline(cell)}</th>'
            for cell, align in zip(header, aligns, strict=True)
        )
        rows: list[str] = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.strip() or _starts_block(line):
                break
            self.pos += 1
            cells = _cells(line)[: len(aligns)]
            cells += [""] * (len(aligns) - len(cells))
            row = "".join(
                f'<td class="wb-align-{align}">{_inline(cell)}</td>'
                for cell, align in zip(cells, aligns, strict=True)
            )
            rows.append(f"<tr>{row}</tr>")
        self.out.append(
            '<div class="wb-md-table-wrap"><table class="wb-md-table">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )


def _starts_block(line: str) -> bool:
    return any(
        pattern.fullmatch(line) is not None for pattern in (_FENCE, _HEADING, _RULE, _LIST)
    ) or (_QUOTE.match(line) is not None)


def _cells(line: str) -> list[str]:
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip() for cell in _CELL_SPLIT.split(row)]


def _alignment(cell: str) -> str:
    left, right = cell.startswith(":"), cell.endswith(":")
    if left and right:
        return "center"
    if right:
        return "right"
    return "left"


def render_markdown_v2(content: str) -> str:
    """Render ``markdown_v2`` content as an HTML fragment.

    Args:
        content: The ``markdown_v2.content`` string of a payload (any text; nothing is trusted).

    Returns:
        A ``<div class="wb-md wb-md2">`` fragment. Every character of ``content`` is escaped;
        only http(s) URLs become ``href``/``src`` (images load lazily, without a referrer).
    """
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f'<div class="wb-md wb-md2">{_Blocks(lines, 0).parse()}</div>'
