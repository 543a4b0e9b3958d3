"""What the language tests of the pages share: the texts a page shows, and which of them the
catalogue does not account for.

A text is accounted for when, once the data values the test itself put there (alert names,
labels, bots, people, what the API answered) and every time and number are taken out, what
is left is made of the language's catalogue texts (the fixed parts around their
``{placeholders}``) and punctuation. Anything else with a letter in it (an English word on the
Chinese page, a Chinese one on the English page, a text written into the code) is reported.

What the server writes in English (a reload's result, an error, an event's detail, a render's
warning: :data:`SERVER_WORDS`) is no data: the page must say it from the code beside it. The
one exception is text the page shows as quoted data (``<q data-quoted>``, or a title marked
``data-quoted-title``): it must be quotable (:data:`QUOTABLE`: a reason in its writer's words,
WeCom's errmsg, the template's own error), word for word, never a message of the server's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from playwright.sync_api import Page

from wecom_bot import i18n

# Text nodes, title / placeholder / aria-label attributes, the values of input buttons and the
# document's title. Skipped: message previews (the message's own words), code and JSON (pre,
# code, textarea), scripts and styles.
COLLECT = """
() => {
  // The emulator's chat is walked (its entries' lines are the page's words) but for the
  // messages themselves (.ep-render, .wb-bubble).
  const skip = "pre, code, textarea, script, style, .wb-bubble, .gc-preview, .ep-render, .ep-raw";
  const out = [document.title];
  const quoted = [];
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || parent.closest("head")) continue;
    const text = node.nodeValue.trim();
    if (text) (parent.closest("[data-quoted]") ? quoted : out).push(text);
  }
  for (const e of document.querySelectorAll("[title], [placeholder], [aria-label]")) {
    if (e.closest(".wb-bubble, .gc-preview, .ep-render")) continue;
    for (const name of ["title", "placeholder", "aria-label"]) {
      const value = e.getAttribute(name);
      const into = name === "title" && e.hasAttribute("data-quoted-title") ? quoted : out;
      if (value && value.trim()) into.push(value.trim());
    }
  }
  for (const e of document.querySelectorAll(
    "input[type=submit], input[type=button], input[type=reset]")) {
    if (e.value) out.push(e.value);
  }
  return {texts: out, quoted};
}
"""

# Times and numbers the pages draw: 2026-11-25 03:00:00 +08:00, 03:00 CST, 12:05, 4096.
_TIMES = re.compile(
    r"\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d)?)?(?: ?[+-]\d\d:\d\d| [A-Z]{2,5}\b)?"
    r"|\b\d\d:\d\d(?::\d\d)?\b"
)
_LETTER = re.compile(r"[^\W\d_]")
# Fields of the API whose values are words of a known set: the page must say them in its
# language, so they are no data the test allows.
_WORDS = frozenset({"state", "status", "source", "kind", "action", "endpoint"})
SERVER_WORDS = frozenset({"message", "error", "detail", "warnings", "last_error"})
"""Fields of the console's API that hold a message of the server's, in English."""
QUOTABLE = frozenset({("params", "detail"), ("template_error", "message"), ("", "last_error")})
"""(parent, field) of the strings a page may show as quoted data ("" for any parent)."""


def texts(page: Page) -> list[str]:
    """Every text the page holds now but quoted data (see :data:`COLLECT`)."""
    found: list[str] = page.evaluate(COLLECT)["texts"]
    return found


def quotable(*answers: Any) -> set[str]:
    """The strings of API answers a page may quote as they are (see :data:`QUOTABLE`)."""
    found: set[str] = set()

    def walk(value: Any, parent: str = "", key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, key, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, parent, key)
        elif isinstance(value, str) and ({(parent, key), ("", key)} & QUOTABLE):
            found.add(value.strip())

    for answer in answers:
        walk(answer)
    return found


def data_values(*answers: Any, drop: frozenset[str] = frozenset()) -> set[str]:
    """Every string (and number) in API answers, but the words of a known set (:data:`_WORDS`)
    and the fields named in ``drop`` (those the page must say in its own words)."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key not in _WORDS | drop and key != "html":
            if value.strip():
                found.add(value.strip())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.add(str(value))

    for answer in answers:
        walk(answer)
    return found


@cache
def _fragments(language: str) -> dict[str, re.Pattern[str]]:
    """The fixed parts of every catalogue text of ``language``, as patterns that match a Latin
    fragment only as whole words."""
    parts: set[str] = set()
    for value in i18n.catalogue(language).values():
        for part in re.split(r"\{[a-z_][a-z0-9_]*\}", value):
            if part.strip() and _LETTER.search(part):
                parts.add(part.strip())
    return {part: _word(part) for part in parts}


def _word(text: str) -> re.Pattern[str]:
    """``text`` where it stands as whole words (a Latin letter on neither side)."""
    before = r"(?<![A-Za-z])" if re.match(r"[A-Za-z]", text) else ""
    after = r"(?![A-Za-z])" if re.search(r"[A-Za-z]$", text) else ""
    return re.compile(before + re.escape(text) + after)


def unexplained(found: Iterable[str], language: str, data: Iterable[str]) -> list[str]:
    """The texts of ``found`` that are not made of ``language``'s catalogue and ``data``."""
    # Longest first, catalogue and data alike: a catalogue text that names a data value
    # ("在 Alertmanager 中查看") goes whole.
    known = {d: _word(d) for d in data if _LETTER.search(d)} | _fragments(language)
    patterns = [known[k] for k in sorted(known, key=len, reverse=True)]
    bad = []
    for text in dict.fromkeys(found):
        rest = text
        for pattern in patterns:
            rest = pattern.sub(" ", rest)
        rest = _TIMES.sub(" ", rest)
        if _LETTER.search(rest):
            bad.append(f"{text!r} (left: {' '.join(rest.split())!r})")
    return bad


def check(
    page: Page,
    language: str,
    data: Iterable[str],
    seen: list[str],
    quotes: Iterable[str] = (),
    quoted_seen: list[str] | None = None,
) -> None:
    """Assert that the page is in ``language``, every text of it is accounted for, and every
    text it shows as quoted data is one of ``quotes`` (see :func:`quotable`); the texts
    checked are added to ``seen`` (the quoted ones to ``quoted_seen``)."""
    assert page.evaluate("document.documentElement.lang") == language
    found = page.evaluate(COLLECT)
    seen.extend(found["texts"])
    bad = unexplained(found["texts"], language, data)
    assert not bad, f"{page.url}: texts not from the {language} catalogue:\n" + "\n".join(bad)
    allowed = set(quotes)
    passed_off = [q for q in found["quoted"] if q not in allowed]
    assert not passed_off, f"{page.url}: quoted, but no data of the API's:\n" + "\n".join(
        map(repr, passed_off)
    )
    if quoted_seen is not None:
        quoted_seen.extend(found["quoted"])
