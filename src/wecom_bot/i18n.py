"""The pages' languages: one catalogue per language, and which one a request gets.

The catalogues are ``wecom_bot/locales/<language>.json``: flat objects of ``"area.thing.key":
"text"``, where ``{name}`` marks a value filled in when the text is used (the same names in
every language). The server-drawn pages take their texts from :func:`text` and
:func:`fill`; the scripts of the console and of the emulator's page get the part of the
catalogue they use from their page (:func:`script_catalogue`) and look texts up in it.

Which language a request gets, first match wins:

1. ``?lang=`` on the address (the switch on every page), when it names a known language; the
   answer then sets the :data:`COOKIE`, so the choice is remembered;
2. the :data:`COOKIE`, when it names a known language;
3. ``Accept-Language``, by its q-values: any ``zh`` tag (``zh``, ``zh-CN``, ``zh-Hans``,
   ``zh-TW``, ``zh-HK``...) means ``zh-CN`` (the one Chinese catalogue, in simplified
   characters), any ``en`` tag means ``en``, ``*`` means :data:`DEFAULT`;
4. :data:`DEFAULT`, English: a browser that asks for neither language (or a tool that asks
   for none) is more likely to read English than Chinese; WeCom's own browser and a Chinese
   system ask for ``zh-CN`` and get it.

A value that is not a known language is never reflected anywhere: it is ignored.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "COOKIE",
    "DEFAULT",
    "LANGUAGES",
    "QUERY",
    "catalogue",
    "choose",
    "fill",
    "from_accept_language",
    "known",
    "language_of",
    "placeholders",
    "remember",
    "script_catalogue",
    "text",
]

LANGUAGES: Final[tuple[str, ...]] = ("en", "zh-CN")
"""The languages there is a catalogue for, as ``<html lang>`` spells them."""

DEFAULT: Final[str] = "en"
"""The language of a request that asks for no known one (see the module's notes)."""

COOKIE: Final[str] = "wecom_bot_lang"
"""The cookie that remembers the switch's choice (one for every page of the host)."""

QUERY: Final[str] = "lang"
"""The query parameter of the switch."""

COOKIE_MAX_AGE: Final[int] = 365 * 86400

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_MARKER = re.compile(r"\{\{([a-zA-Z0-9_.-]+)\}\}")
_TAG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$|^\*$")


@cache
def catalogue(language: str) -> Mapping[str, str]:
    """The texts of ``language`` (one of :data:`LANGUAGES`), read once from the package."""
    if language not in LANGUAGES:
        raise KeyError(f"no catalogue for language {language!r}")
    raw = files("wecom_bot").joinpath("locales", f"{language}.json").read_text("utf-8")
    data = json.loads(raw)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"locales/{language}.json: not an object of strings")
    return data


def text(language: str, key: str, /, **params: object) -> str:
    """The text ``key`` of ``language`` with its ``{name}`` placeholders filled from ``params``.

    Raises:
        KeyError: no such key, or a placeholder without a value (a bug: the tests look for it).
    """
    template = catalogue(language)[key]
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), template)


def placeholders(template: str) -> frozenset[str]:
    """The placeholder names of a catalogue text."""
    return frozenset(_PLACEHOLDER.findall(template))


def fill(page: str, language: str) -> str:
    """``page`` with every ``{{key}}`` replaced by the HTML-escaped text of ``language``
    (``{{lang}}`` by the language's own tag)."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        return language if key == "lang" else html.escape(text(language, key), quote=True)

    return _MARKER.sub(one, page)


def script_catalogue(language: str, prefixes: Iterable[str]) -> str:
    """The texts of ``language`` whose keys start with one of ``prefixes``, as JSON that is
    safe inside an HTML attribute once escaped (the page escapes it)."""
    wanted = tuple(prefixes)
    chosen = {k: v for k, v in catalogue(language).items() if k.startswith(wanted)}
    return json.dumps(chosen, ensure_ascii=False, sort_keys=True)


def known(tag: str | None) -> str | None:
    """The language of :data:`LANGUAGES` a language tag stands for, or ``None``."""
    if not tag or not _TAG.match(tag):
        return None
    primary = tag.split("-", 1)[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The known language an ``Accept-Language`` header prefers most, or ``None``."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header[:1024].split(",")):
        tag, _, rest = item.strip().partition(";")
        quality = 1.0
        for param in rest.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0 < quality <= 1:
            continue
        tag = tag.strip()
        language = DEFAULT if tag == "*" else known(tag)
        if language is not None:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language of a request (see the module's notes for the order)."""
    return known(query) or known(cookie) or from_accept_language(accept_language) or DEFAULT


def language_of(request: Request) -> str:
    """The language a page request gets (see the module's notes)."""
    return choose(
        request.query_params.get(QUERY),
        request.cookies.get(COOKIE),
        request.headers.get("accept-language"),
    )


def remember(request: Request, response: Response, language: str) -> None:
    """Keep the switch's choice in the :data:`COOKIE` when the request made one with a known
    ``?lang=``; say that the answer depends on the language either way."""
    response.headers["Vary"] = "Accept-Language, Cookie"
    if known(request.query_params.get(QUERY)) is not None:
        response.set_cookie(
            COOKIE, language, max_age=COOKIE_MAX_AGE, path="/", samesite="lax", httponly=True
        )
