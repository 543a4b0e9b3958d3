"""Making untrusted text (alert labels, annotations, any payload string) harmless in a message.

Alert content is written by whoever can create an alert: a label value can be anything. Once it
is inside a WeCom message it must not be able to mention anyone (``@all``, ``<@userid>``), colour
text (``<font ...>``), make a link or an image (``[..](..)``), or change the structure of the
message (headings, quotes, lists, code fences, table rows). Escaping here is **substitution with
look-alike characters**, not backslashes: WeCom's legacy ``markdown`` has no escape syntax, and
whether its ``markdown_v2`` honours backslash escapes on every client is not documented. A
look-alike keeps the text readable (``＠all``, ``＜font＞``, ``［x］(y)``) and can never be turned
back into markup by a renderer, a filter or a cut, because the ASCII character is simply gone.

What each syntax gets (full-width forms from the Unicode Halfwidth and Fullwidth Forms block):

=============================  ======  ========  ===========
character                      text    markdown  markdown_v2
=============================  ======  ========  ===========
``@`` (mentions)               ＠       ＠         ＠
``<`` ``>`` (tags, quotes)      ＜ ＞    ＜ ＞      ＜ ＞
``[`` ``]`` (links, images)     ［ ］    ［ ］      ［ ］
`````` ` `````` (code)          kept    ｀         ｀
``*`` (bold, lists)            kept    ＊         ＊
``#`` (headings)               kept    ＃         ＃
``|`` (table cells)            kept    kept      ｜
``~`` (fences, strike)         kept    kept      ～
``_`` not inside a word        kept    kept      ＿
``\\`` before punctuation       kept    kept      ＼
``&`` starting an entity       kept    ＆         ＆
line start ``- `` ``+ `` ``===``  kept    － ＋ ＝   － ＋ ＝
line start ``1. `` ``1) ``      kept    1． 1）   1． 1）
line start spaces, tabs        kept    kept      no-break
=============================  ======  ========  ===========

Plain ``text`` messages render no markup; they still lose ``@`` (mentions in a text message come
from ``mentioned_list`` alone, and the look-alike keeps a reader from mistaking ``@all`` in an
alert for a real one) and the tag and link brackets, so that text content copied into markdown
(a digest of queued messages, say) cannot turn into tags or links there. ``_`` between two
letters or digits (``node_exporter``) stays: it cannot start emphasis. Indentation in
markdown_v2 becomes no-break spaces (U+00A0), which keep the look but cannot open an indented
code block. Raw URLs in text may still become clickable; that is fine.

Every syntax also gets: ``\\r\\n``, ``\\r``, U+2028/U+2029 and NEL turned into ``\\n`` (so the
line-start rules see every line); other control characters, bidirectional overrides and
isolates (which can make text display in a different order than it is stored) and the byte
order mark removed; unpaired surrogates (valid in JSON, not in UTF-8) replaced by U+FFFD.
Zero-width joiners stay: emoji sequences need them.

URLs that a template places inside a link target go through :func:`safe_url` instead.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

__all__ = [
    "Syntax",
    "escape",
    "escape_markdown",
    "escape_markdown_v2",
    "escape_text",
    "safe_url",
    "sanitize",
]

Syntax = Literal["text", "markdown", "markdown_v2"]

_NEWLINES = re.compile("\r\n|[\r\u0085\u2028\u2029]")
# C0 (minus tab and newline), DEL, C1, bidi embeddings/overrides/isolates, LRM/RLM/ALM, BOM,
# interlinear annotation marks.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")

_TEXT_TABLE = str.maketrans({"@": "＠", "<": "＜", ">": "＞", "[": "［", "]": "］"})
_MD_TABLE = str.maketrans(
    {
        "@": "＠",
        "<": "＜",
        ">": "＞",
        "[": "［",
        "]": "］",
        "`": "｀",
        "*": "＊",
        "#": "＃",
    }
)
_MD_V2_TABLE = str.maketrans(
    {
        "@": "＠",
        "<": "＜",
        ">": "＞",
        "[": "［",
        "]": "］",
        "`": "｀",
        "*": "＊",
        "#": "＃",
        "|": "｜",
        "~": "～",
    }
)
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# An underscore that is not between two letters/digits could open or close emphasis.
_LOOSE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_BACKSLASH_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
# At a line start (after optional indentation): a list bullet or setext underline, or an
# ordered-list number.
_LINE_MARK = re.compile(r"^([ \t]*)([-+=])(?=[ \t]|$|[-=][-= \t]*$)", re.MULTILINE)
_LINE_NUMBER = re.compile(r"^([ \t]*[0-9]{1,9})([.)])(?=[ \t]|$)", re.MULTILINE)
_FULLWIDTH_MARK = {"-": "－", "+": "＋", "=": "＝", ".": "．", ")": "）"}
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)


# Letters, digits and . : / - inside them: no escaper changes such a value (host names,
# addresses, counters), so a storm's thousands of them skip the work.
_PLAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.:/-]*[A-Za-z0-9])?")


def sanitize(value: str) -> str:
    """Normalise line breaks and drop invisible control characters (every syntax does this).

    Args:
        value: untrusted text.

    Returns:
        The text with ``\\n`` as the only line break, without control characters,
        bidirectional overrides or a byte order mark, and with unpaired surrogates replaced by
        U+FFFD so that it always encodes to UTF-8.
    """
    value = _NEWLINES.sub("\n", value)
    value = _INVISIBLE.sub("", value)
    if _SURROGATE.search(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value


def _line_starts(value: str) -> str:
    value = _LINE_MARK.sub(lambda m: m[1] + _FULLWIDTH_MARK[m[2]], value)
    return _LINE_NUMBER.sub(lambda m: m[1] + _FULLWIDTH_MARK[m[2]], value)


def escape_text(value: str) -> str:
    """Escape untrusted text for a ``text`` message: no ``@``, ``<``, ``>``, ``[``, ``]`` survive.

    Args:
        value: untrusted text.

    Returns:
        The text, sanitized, with those characters replaced by their full-width forms.
    """
    if _PLAIN.fullmatch(value):
        return value
    return sanitize(value).translate(_TEXT_TABLE)


def escape_markdown(value: str) -> str:
    """Escape untrusted text for WeCom's legacy ``markdown`` subset.

    Args:
        value: untrusted text.

    Returns:
        Text that renders as itself: no mention, tag, link, image, code, bold, heading or quote
        can come out of it, wherever the template puts it.
    """
    if _PLAIN.fullmatch(value):
        return value
    value = _ENTITY.sub("＆", sanitize(value)).translate(_MD_TABLE)
    return _line_starts(value)


def escape_markdown_v2(value: str) -> str:
    """Escape untrusted text for ``markdown_v2`` (CommonMark-like, with tables).

    Args:
        value: untrusted text.

    Returns:
        Text that renders as itself, also inside a table cell: no link, image, tag, emphasis,
        code, heading, quote, list, rule, fence or cell separator can come out of it.
    """
    if _PLAIN.fullmatch(value):
        return value
    value = _ENTITY.sub("＆", sanitize(value))
    value = _BACKSLASH_ESCAPE.sub("＼", value)
    value = _LOOSE_UNDERSCORE.sub("＿", value.translate(_MD_V2_TABLE))
    value = _INDENT.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), _line_starts(value))
    return value


_ESCAPERS = {
    "text": escape_text,
    "markdown": escape_markdown,
    "markdown_v2": escape_markdown_v2,
}


def escape(value: str, syntax: Syntax) -> str:
    """Escape untrusted text for ``syntax`` (``"text"``, ``"markdown"`` or ``"markdown_v2"``).

    Raises:
        ValueError: an unknown syntax.
    """
    try:
        escaper = _ESCAPERS[syntax]
    except KeyError:
        raise ValueError(
            f"unknown syntax {syntax!r}: expected text, markdown or markdown_v2"
        ) from None
    return escaper(value)


_URL_START = re.compile(r"https?://[^/?#\s@]+(?:[/?#]|$)", re.IGNORECASE)
# RFC 3986 unreserved and most reserved characters, minus those that end or nest a markdown
# link target, start markup, or look like a mention: ( ) [ ] < > * @ ` | \ " ' { } ^ and space.
_URL_SAFE = "-._~:/?#&=+$,;%!"
_PERCENT_OK = re.compile(r"%(?![0-9A-Fa-f]{2})")


def safe_url(value: str) -> str:
    """Return ``value`` as a URL that is safe inside a markdown link target, or ``""``.

    Only absolute ``http``/``https`` URLs without user information pass. Characters that could
    close the link (``)``), start markup or read as a mention are percent-encoded, as is
    anything outside ASCII; existing ``%XX`` escapes are kept, a stray ``%`` is encoded.

    Args:
        value: an untrusted URL (``generatorURL``, ``silenceURL``, ``externalURL`` ...).

    Returns:
        The URL, percent-encoded where needed, or ``""`` when it is not an http(s) URL.
    """
    if not value:
        return ""
    url = sanitize(value).strip()
    if not _URL_START.match(url):
        return ""
    url = _PERCENT_OK.sub("%25", url)
    return quote(url, safe=_URL_SAFE)
