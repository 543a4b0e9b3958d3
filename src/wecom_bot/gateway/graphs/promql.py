"""What an alert's ``generatorURL`` says: the PromQL expression, and its threshold.

Prometheus links an alert to ``<external URL>/graph?g0.expr=<expression>&g0.tab=1``. An
alerting expression is usually ``<something> <comparison> <number>``: the comparison only
filters, so the chart queries the side that is not a number (its values, not only those past
the threshold) and draws the number as the threshold line. Nothing here evaluates PromQL: it
finds the top-level comparison (outside parentheses, brackets, braces and strings) and reads a
number on one of its sides; anything it does not recognise is queried as it is, with no
threshold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

__all__ = ["Expression", "expression_of", "split_threshold"]

_MAX_EXPR_CHARS = 20_000
"""A longer expression is not queried (no rule is that long; a sender's URL may be)."""

_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
_SET_OPERATORS = re.compile(r"\b(and|or|unless)\b", re.IGNORECASE)
_MODIFIER = re.compile(
    r"^\s*(?:bool\b)?\s*(?:(?:on|ignoring)\s*\([^)]*\))?\s*"
    r"(?:(?:group_left|group_right)\s*(?:\([^)]*\))?)?\s*",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"^[+-]?(?:0x[0-9a-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|inf|nan)$", re.IGNORECASE
)


@dataclass(frozen=True)
class Expression:
    """An alert's expression, ready to query.

    Attributes:
        full: the expression as the rule has it.
        query: what the chart queries: the side of the top-level comparison that is not a
            number, or ``full``.
        op: the comparison, written with the queried side on the left (``0.9 < x`` is
            ``x > 0.9``); ``None`` without a threshold.
        threshold: the number it is compared with; ``None`` without one.
    """

    full: str
    query: str
    op: str | None = None
    threshold: float | None = None


def expression_of(generator_url: str) -> str | None:
    """The ``g0.expr`` of a Prometheus graph link, or ``None`` when it has none (or a
    second, different one: which one fired is then unknown)."""
    try:
        parts = urlsplit(generator_url)
    except ValueError:
        return None
    query = parse_qs(parts.query, keep_blank_values=False)
    found = query.get("g0.expr") or []
    if len(found) != 1:
        return None
    expr = found[0].strip()
    if not expr or len(expr) > _MAX_EXPR_CHARS:
        return None
    return expr


def split_threshold(expr: str) -> Expression:
    """``expr`` with its top-level comparison against a number taken apart (see the module
    docs); ``expr`` queried whole when it has none."""
    whole = expr
    expr = _unwrapped(_without_comments(expr))
    if _has_top_level(expr, _SET_OPERATORS):
        return Expression(whole, expr)
    found = _top_level_comparison(expr)
    if found is None:
        return Expression(whole, expr)
    start, op = found
    left = expr[:start].strip()
    right = expr[start + len(op) :]
    right = right[_MODIFIER.match(right).end() :].strip()  # type: ignore[union-attr]
    number = _number(right)
    if number is not None and left:
        return Expression(whole, _unwrapped(left), op, number)
    number = _number(left)
    if number is not None and right:
        return Expression(whole, _unwrapped(right), _FLIP[op], number)
    if left and right:
        # x > y: the left side is what is filtered; its values are the series.
        return Expression(whole, _unwrapped(left))
    return Expression(whole, expr)


def _without_comments(text: str) -> str:
    return "".join(c for c, kind in zip(text, _kinds(text), strict=True) if kind != "#").strip()


def _number(text: str) -> float | None:
    text = _unwrapped(text)
    if not _NUMBER.match(text):
        return None
    try:
        value = float(int(text, 16)) if "x" in text.lower() else float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _unwrapped(text: str) -> str:
    """``text`` without parentheses around the whole of it."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing(text: str, open_at: int) -> int:
    depth = 0
    for index, char in _outside_strings(text):
        if index < open_at:
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _outside_strings(text: str) -> list[tuple[int, str]]:
    """The characters of ``text`` outside string literals and comments, with their index."""
    return [(i, c) for i, (c, kind) in enumerate(zip(text, _kinds(text), strict=True)) if not kind]


def _kinds(text: str) -> list[str]:
    """What each character of ``text`` is part of: ``""`` the expression, ``"'"`` a string
    literal (its quotes included), ``"#"`` a comment (to the end of its line)."""
    kinds: list[str] = []
    quote = ""
    while len(kinds) < len(text):
        char = text[len(kinds)]
        if quote:
            if char == "\\" and quote != "`":
                kinds += ["'", "'"]  # the escape and what it escapes
                continue
            if char == quote:
                quote = ""
            kinds.append("'")
        elif char in "\"'`":
            quote = char
            kinds.append("'")
        elif char == "#":
            end = text.find("\n", len(kinds))
            kinds += ["#"] * ((len(text) if end < 0 else end) - len(kinds))
        else:
            kinds.append("")
    return kinds[: len(text)]


def _top_level(text: str) -> list[tuple[int, str]]:
    """The characters of ``text`` at depth 0 (outside brackets, strings and comments)."""
    depth = 0
    out = []
    for index, char in _outside_strings(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            out.append((index, char))
    return out


def _has_top_level(text: str, pattern: re.Pattern[str]) -> bool:
    chars = dict(_top_level(text))
    masked = "".join(chars.get(i, " ") for i in range(len(text)))
    return pattern.search(masked) is not None


def _top_level_comparison(text: str) -> tuple[int, str] | None:
    """Where the first top-level comparison starts and which it is."""
    chars = dict(_top_level(text))
    for index in sorted(chars):
        pair = chars[index] + chars.get(index + 1, "")
        if pair in ("==", "!=", ">=", "<="):
            return index, pair
        if chars[index] in "<>":
            return index, chars[index]
    return None
