"""Lone UTF-16 surrogates in request bodies, replaced by U+FFFD before anything keeps them.

JSON may spell a lone surrogate (``"\\ud800"``) and Python's decoder reads one from raw bytes
too (``ED A0 80``), but such a string has no UTF-8 form: SQLite, Redis and every encoder after
them refuse it. Such text is bad input, not a reason to lose an alert or answer 500: it is
repaired where a body is decoded, as the sources' :func:`~.sources._common.clean` repairs a
single value.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["may_hold_surrogates", "replace_surrogates", "without_surrogates"]

_ESCAPES = (b"\\ud", b"\\uD")
"""How JSON spells a surrogate (a pair it joins into one character starts alike)."""
_RAW = b"\xed"
"""The lead byte of a surrogate as Python's lenient UTF-8 decoding reads one (and of Hangul
syllables, which then take the slower walk for nothing)."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def may_hold_surrogates(raw: bytes | bytearray, *, valid_utf8: bool = False) -> bool:
    """Whether a JSON body may decode to a string holding a surrogate (cheap: substring
    searches, no regular expression over a large body). ``valid_utf8``: the body is known
    to be valid UTF-8, which has no surrogate bytes, so only escapes are looked for."""
    return any(mark in raw for mark in _ESCAPES) or (not valid_utf8 and _RAW in raw)


def replace_surrogates(value: Any) -> tuple[Any, bool]:
    """``value`` (decoded JSON) with each surrogate in its strings and keys replaced by
    U+FFFD, and whether any was."""
    if isinstance(value, str):
        if value.isascii():
            return value, False
        fixed = _SURROGATE.sub(_REPLACEMENT, value)
        return fixed, fixed != value
    if isinstance(value, list):
        items = [replace_surrogates(item) for item in value]
        if any(changed for _, changed in items):
            return [item for item, _ in items], True
        return value, False
    if isinstance(value, dict):
        pairs = [(replace_surrogates(k), replace_surrogates(v)) for k, v in value.items()]
        if any(kc or vc for (_, kc), (_, vc) in pairs):
            return {k: v for (k, _), (v, _) in pairs}, True
        return value, False
    return value, False


def without_surrogates(raw: bytes) -> bytes:
    """A JSON body with its surrogates replaced (re-encoded only when it held any); any
    other body as it is."""
    if not may_hold_surrogates(raw):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw  # not JSON: the endpoint refuses it as it would anyway
    fixed, changed = replace_surrogates(value)
    return json.dumps(fixed, ensure_ascii=False).encode() if changed else raw
