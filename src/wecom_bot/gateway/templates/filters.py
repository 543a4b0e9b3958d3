"""The filters templates use, on top of Jinja's own (see :mod:`.renderer`).

Jinja's text filters (``upper``, ``wordwrap``, ``indent`` ...) work on the raw text of an
:class:`~.untrusted.Untrusted` value and give an untrusted value back, so that escaping sees
the result whole. The gateway adds ``localtime``, ``duration``, ``url``, ``oneline``,
``quoted``, ``labels_inline``, ``tojson``, ``urlencode``, ``unescaped`` and an ``escape`` that
escapes for the message's syntax. Filters that can write markup or HTML are removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from .escaping import escape_markdown_v2, safe_url
from .untrusted import Untrusted, UntrustedMap, raw, unwrap, wrap_result

__all__ = ["ESCAPER_KEY", "format_duration", "install_filters"]

# Not a valid Jinja identifier, so no template can shadow it with {% set %}.
ESCAPER_KEY = "wecom-bot:escaper"
"""The context entry holding the current message's escaper (read by ``tojson`` and ``escape``)."""

_UNSAFE_FILTERS = ("safe", "urlize", "xmlattr", "forceescape")


def format_duration(delta: timedelta) -> str:
    """``45s``, ``3m 20s``, ``42m``, ``2h 5m``, ``3d 4h``: seconds only while they matter."""
    seconds = max(int(delta.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes >= 10 or (minutes and not seconds):
        return f"{minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


TEXT_FILTERS = (
    "capitalize",
    "center",
    "indent",
    "lower",
    "replace",
    "reverse",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "wordcount",
    "wordwrap",
)
"""Jinja's filters that work on a value's raw text (the result is escaped again)."""


def _on_raw(func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = getattr(func, "jinja_pass_arg", None)
    index = 0 if pass_arg is None else 1

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = args[index] if len(args) > index else None
        if isinstance(value, Untrusted):
            args = (*args[:index], value._raw, *args[index + 1 :])
            return wrap_result(func(*args, **kwargs), value._esc)
        return func(*args, **kwargs)

    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapper


def _urlencode(value: Any) -> str:
    """Percent-encode for a URL component; the result holds only ``A-Z a-z 0-9 _ . - %``."""
    pairs: Iterable[Any]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, list | tuple):
        pairs = value
    else:
        return quote(str(raw(value)), safe="").replace("~", "%7E")
    return "&".join(f"{_urlencode(k)}={_urlencode(v)}" for k, v in pairs)


def _url_filter(value: Any) -> str:
    return safe_url(str(raw(value))) if value is not None else ""


def _oneline(value: Any) -> Any:
    if isinstance(value, Untrusted):
        return Untrusted(" ".join(value._raw.split()), value._esc)
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def _quoted(value: Any) -> str:
    """Continue a ``> `` quote over every line of a multi-line value."""
    if isinstance(value, Untrusted):
        return "\n> ".join(str(Untrusted(line, value._esc)) for line in value._raw.split("\n"))
    return "\n> ".join(str(value).split("\n"))


def _labels_inline(value: Any, exclude: Sequence[str] = ()) -> Any:
    if not isinstance(value, UntrustedMap):
        return ""
    skip = {str(raw(x)) for x in exclude}
    # One line whatever a value holds: the pairs sit inside a "> " quote line.
    text = ", ".join(
        f"{' '.join(str(k).split())}={' '.join(str(v).split())}"
        for k, v in value._data.items()
        if k not in skip
    )
    return Untrusted(text, value._esc)


def _context_escaper(context: Context) -> Callable[[str], str]:
    escaper = context.get(ESCAPER_KEY)
    return escaper if callable(escaper) else escape_markdown_v2


@pass_context
def _tojson(context: Context, value: Any, indent: int | None = 2) -> str:
    """Pretty JSON: the indentation is json's own (trusted), every line's text is escaped."""
    text = json.dumps(unwrap(value), ensure_ascii=False, indent=indent, default=str)
    esc = _context_escaper(context)
    lines = []
    for line in text.split("\n"):  # json escapes newlines in strings: these are its own
        body = line.lstrip(" ")
        lines.append(line[: len(line) - len(body)] + esc(body))
    return "\n".join(lines)


def _unescaped(value: Any) -> Any:
    """The raw text of a payload value: only for payloads you trust."""
    return raw(value)


@pass_context
def _escape_filter(context: Context, value: Any) -> str:
    if isinstance(value, Untrusted):
        return str(value)
    return _context_escaper(context)(str(value))


def _localtime_filter(tz: tzinfo) -> Callable[..., str]:
    def localtime(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if not isinstance(value, datetime):
            return ""
        return value.astimezone(tz).strftime(str(fmt))

    return localtime


def _duration(value: Any) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_duration(timedelta(seconds=value))
    duration = getattr(value, "duration", None)  # an alert (AlertView) knows its own
    return duration if isinstance(duration, str) else ""


def install_filters(env: Environment, *, tz: tzinfo) -> None:
    """Give ``env`` the gateway's filters (times shown in ``tz``) and take away unsafe ones."""
    for unsafe in _UNSAFE_FILTERS:
        env.filters.pop(unsafe, None)
    for name in TEXT_FILTERS:
        env.filters[name] = _on_raw(env.filters[name])
    env.filters.update(
        localtime=_localtime_filter(tz),
        duration=_duration,
        url=_url_filter,
        oneline=_oneline,
        quoted=_quoted,
        labels_inline=_labels_inline,
        tojson=_tojson,
        urlencode=_urlencode,
        unescaped=_unescaped,
        escape=_escape_filter,
        e=_escape_filter,
    )
