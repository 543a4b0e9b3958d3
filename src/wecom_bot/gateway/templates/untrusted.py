"""Payload text as templates see it: :class:`Untrusted` strings and :class:`UntrustedMap` mappings.

A template never sees a sender's string as a ``str``: ``str()`` of an :class:`Untrusted` value
is the text escaped for the message being rendered, and every operation on it that yields text
yields :class:`Untrusted` text again (see :mod:`wecom_bot.gateway.templates.renderer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "Untrusted",
    "UntrustedMap",
    "UntrustedMethod",
    "raw",
    "unwrap",
    "wrap",
    "wrap_result",
]


def raw(value: Any) -> Any:
    """The text of an :class:`Untrusted` value; anything else as is."""
    return value._raw if isinstance(value, Untrusted) else value


def wrap_result(value: Any, esc: Callable[[str], str]) -> Any:
    """A string method's result made untrusted again (strings, and strings in a list)."""
    if isinstance(value, str):
        return Untrusted(value, esc)
    if isinstance(value, list | tuple):
        return [Untrusted(v, esc) if isinstance(v, str) else v for v in value]
    return value


_STR_METHODS = frozenset(
    """capitalize casefold center count endswith expandtabs find index isalnum isalpha isascii
    isdecimal isdigit islower isnumeric isspace istitle isupper join ljust lower lstrip
    partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip
    split splitlines startswith strip swapcase title upper zfill""".split()
)


class Untrusted:
    """Text from a payload: ``str()`` gives it escaped for the message being rendered.

    It behaves like a string in templates (comparison, ``in``, ``len``, slicing, iteration,
    string methods, ``+``) and every such operation that yields text yields :class:`Untrusted`
    text again, so escaping cannot be lost on the way to the output.
    """

    __slots__ = ("_esc", "_raw")

    def __init__(self, raw: str, esc: Callable[[str], str]) -> None:
        self._raw = raw
        self._esc = esc

    def __str__(self) -> str:
        return self._esc(self._raw)

    def __repr__(self) -> str:
        return repr(str(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __len__(self) -> int:
        return len(self._raw)

    def __bool__(self) -> bool:
        return bool(self._raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    def __eq__(self, other: object) -> bool:
        return bool(self._raw == raw(other))

    def __ne__(self, other: object) -> bool:
        return bool(self._raw != raw(other))

    def __lt__(self, other: Any) -> bool:
        return bool(self._raw < raw(other))

    def __le__(self, other: Any) -> bool:
        return bool(self._raw <= raw(other))

    def __gt__(self, other: Any) -> bool:
        return bool(self._raw > raw(other))

    def __ge__(self, other: Any) -> bool:
        return bool(self._raw >= raw(other))

    def __contains__(self, item: Any) -> bool:
        return str(raw(item)) in self._raw

    def __getitem__(self, key: int | slice) -> Untrusted:
        return Untrusted(self._raw[key], self._esc)

    def __iter__(self) -> Iterator[Untrusted]:
        return (Untrusted(ch, self._esc) for ch in self._raw)

    def __add__(self, other: Any) -> Untrusted:
        return Untrusted(self._raw + str(raw(other)), self._esc)

    def __radd__(self, other: Any) -> Untrusted:
        return Untrusted(str(raw(other)) + self._raw, self._esc)

    def __int__(self) -> int:
        return int(self._raw)

    def __float__(self) -> float:
        return float(self._raw)

    def __getattr__(self, name: str) -> Any:
        if name not in _STR_METHODS:
            raise AttributeError(name)
        return UntrustedMethod(self, name)


class UntrustedMethod:
    """A string method of an :class:`Untrusted` value: called on the raw text, with the
    arguments' raw text, its result untrusted again.

    Attributes:
        receiver: the value the method belongs to.
        name: the method's name (the sandbox bounds the ones that can build long text).
    """

    __slots__ = ("name", "receiver")

    def __init__(self, receiver: Untrusted, name: str) -> None:
        self.receiver = receiver
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.receiver._raw, self.name)
        args = tuple(unwrap(a) for a in args)
        kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        return wrap_result(method(*args, **kwargs), self.receiver._esc)


class UntrustedMap(Mapping[Any, Any]):
    """A read-only mapping (labels, annotations, JSON objects) whose keys and values are wrapped.

    Look-ups take plain strings (``labels.team``, ``labels["team"]``).
    """

    __slots__ = ("_data", "_esc")

    def __init__(self, data: Mapping[str, Any], esc: Callable[[str], str]) -> None:
        self._data = data
        self._esc = esc

    def __getitem__(self, key: Any) -> Any:
        return wrap(self._data[raw(key)], self._esc)

    def __iter__(self) -> Iterator[Any]:
        return (Untrusted(k, self._esc) if isinstance(k, str) else k for k in self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __str__(self) -> str:
        return repr(self)


def wrap(value: Any, esc: Callable[[str], str]) -> Any:
    """Payload data (strings, mappings, lists, nested) as a template sees it."""
    if isinstance(value, str):
        return Untrusted(value, esc)
    if isinstance(value, Mapping):
        return UntrustedMap(value, esc)
    if isinstance(value, list | tuple):
        return [wrap(v, esc) for v in value]
    return value


def unwrap(value: Any) -> Any:
    """Plain data again: the raw text of every untrusted value inside ``value``."""
    if isinstance(value, Untrusted):
        return value._raw
    if isinstance(value, UntrustedMap):
        return {unwrap(k): unwrap(v) for k, v in value._data.items()}
    if isinstance(value, Mapping):
        return {unwrap(k): unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    return value
