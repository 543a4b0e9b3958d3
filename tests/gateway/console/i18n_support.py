"""What the language tests of the pages share: the texts a page shows, and which of them the
catalogue does not account for.

A text is accounted for when, once the data values the test itself put there (alert names,
labels, bots, people, what the API answered) and every time and number are taken out, what
is left is made of the language's catalogue texts (the fixed parts around their
``{placeholders}``) and punctuation. Anything else with a letter in it (an English word on the
Chinese page, a Chinese one on the English page, a text written into the code) is reported.
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
  const skip = "pre, code, textarea, script, style, .wb-chat, .gc-preview, .ep-render, .ep-raw";
  const out = [document.title];
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || parent.closest("head")) continue;
    const text = node.nodeValue.trim();
    if (text) out.push(text);
  }
  for (const e of document.querySelectorAll("[title], [placeholder], [aria-label]")) {
    if (e.closest(".wb-chat, .gc-preview, .ep-render")) continue;
    for (const name of ["title", "placeholder", "aria-label"]) {
      const value = e.getAttribute(name);
      if (value && value.trim()) out.push(value.trim());
    }
  }
  for (const e of document.querySelectorAll(
    "input[type=submit], input[type=button], input[type=reset]")) {
    if (e.value) out.push(e.value);
  }
  return out;
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


def texts(page: Page) -> list[str]:
    """Every text the page holds now (see :data:`COLLECT`)."""
    found: list[str] = page.evaluate(COLLECT)
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


def check(page: Page, language: str, data: Iterable[str], seen: list[str]) -> None:
    """Assert that the page is in ``language`` and every text of it is accounted for; the
    texts checked are added to ``seen``."""
    assert page.evaluate("document.documentElement.lang") == language
    found = texts(page)
    seen.extend(found)
    bad = unexplained(found, language, data)
    assert not bad, f"{page.url}: texts not from the {language} catalogue:\n" + "\n".join(bad)
