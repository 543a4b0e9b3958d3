"""Field validators shared by the sources, and :class:`PayloadError`.

Lenient with fields nobody reads, strict with the types of the fields that are used, and every
error names the field by its JSON path (``alerts[2].labels.team``).

Size is never a reason to refuse: a sender such as Alertmanager does not retry a 4xx, so a
refused notification is lost. What is too large to keep whole is cut instead, visibly: a
value past its limit keeps its head and the marker ``…(N bytes more)``, alerts past
:data:`MAX_ALERTS` and pairs past :data:`MAX_PAIRS` are left out, and every cut is counted in
:class:`Cuts` (the notification's ``cut_alerts`` and ``cut_values``), for templates and history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from ...model import Alert, Status

MAX_ALERTS = 10_000
"""Alerts kept from one payload; those after them are cut and counted (Alertmanager's own
``max_alerts`` defaults to unlimited)."""
MAX_VALUE_BYTES = 16 * 1024
"""Largest label or annotation value, or URL, kept whole, in UTF-8 bytes."""
MAX_TEXT_BYTES = 64 * 1024
"""Largest free-text field kept whole (Grafana's ``message`` and ``title``)."""
MAX_PAIRS = 256
"""Most labels (or annotations, or values) kept per alert."""
MAX_KEY_BYTES = 1024
"""Longest label or annotation name kept whole."""


class PayloadError(ValueError):
    """The payload is not what the endpoint accepts; the message names the field and why.

    Attributes:
        field: the JSON path of the offending field (``alerts[2].labels``), or ``""`` for the
            payload as a whole.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field} {problem}" if field else f"the payload {problem}")


@dataclass
class Cuts:
    """What parsing one payload cut to keep it within the limits above.

    Attributes:
        alerts: alerts left out after the first :data:`MAX_ALERTS`.
        values: values and names cut short, and label/annotation/value pairs left out.
    """

    alerts: int = 0
    values: int = 0


def cut_text(value: str, max_bytes: int) -> str:
    """``value`` cut to its first ``max_bytes`` UTF-8 bytes (whole characters) plus the marker
    ``…(N bytes more)``; unchanged when it fits."""
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return value
    head = data[:max_bytes].decode("utf-8", "ignore")
    return f"{head}…({len(data) - len(head.encode('utf-8', 'surrogatepass'))} bytes more)"


def _cut(value: str, max_bytes: int, cuts: Cuts) -> str:
    """A valid-UTF-8 ``value`` within ``max_bytes`` (cut and counted when longer)."""
    value = clean(value)
    if not _too_long(value, max_bytes):
        return value
    cuts.values += 1
    return cut_text(value, max_bytes)


def _first_pairs(value: dict[str, Any], cuts: Cuts) -> dict[str, Any]:
    """The first :data:`MAX_PAIRS` members of ``value``; the others are counted as cut."""
    if len(value) <= MAX_PAIRS:
        return value
    cuts.values += len(value) - MAX_PAIRS
    return dict(islice(value.items(), MAX_PAIRS))


_SURROGATE = re.compile("[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def child(path: str, key: str | int) -> str:
    """The JSON path of ``key`` under ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)[:80]}]"


def clean(value: str) -> str:
    """Replace unpaired surrogates (valid in JSON, impossible in UTF-8) with U+FFFD."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def _too_long(value: str, max_bytes: int) -> bool:
    if len(value) * 4 <= max_bytes:
        return False
    return len(value) > max_bytes or len(value.encode("utf-8", "surrogatepass")) > max_bytes


def require_object(value: Any, path: str) -> Mapping[str, Any]:
    """``value`` itself, checked to be a JSON object."""
    if not isinstance(value, dict):
        raise PayloadError(path, f"must be a JSON object, not {json_type(value)}")
    return value


def get_string(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    *,
    cuts: Cuts,
    required: bool = False,
    max_bytes: int = MAX_VALUE_BYTES,
) -> str:
    """The string at ``obj[key]`` (``""`` when absent or null and not required), cut to
    ``max_bytes`` (counted in ``cuts``) when longer."""
    value = obj.get(key)
    if value is None:
        if required:
            raise PayloadError(child(path, key), "is required")
        return ""
    if type(value) is str and value.isascii() and len(value) <= max_bytes:
        return value
    if not isinstance(value, str):
        raise PayloadError(child(path, key), f"must be a string, not {json_type(value)}")
    return _cut(value, max_bytes, cuts)


def get_string_map(obj: Mapping[str, Any], key: str, path: str, *, cuts: Cuts) -> dict[str, str]:
    """The object of strings at ``obj[key]`` (labels, annotations); ``{}`` when absent or null.

    Past :data:`MAX_PAIRS` pairs, names past :data:`MAX_KEY_BYTES` and values past
    :data:`MAX_VALUE_BYTES` are cut, counted in ``cuts``."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(
            child(path, key), f"must be an object of strings, not {json_type(value)}"
        )
    value = _first_pairs(value, cuts)
    try:
        names, texts = "".join(value), "".join(value.values())
    except TypeError:
        pass  # a value is not a string: the loop below names it
    else:
        # Most label sets are short ASCII strings: within the limits, nothing to clean.
        if (
            names.isascii()
            and texts.isascii()
            and len(texts) <= MAX_VALUE_BYTES
            and len(names) <= MAX_KEY_BYTES
        ):
            return dict(value)
    out: dict[str, str] = {}
    for name, text in value.items():
        if (
            type(text) is str
            and text.isascii()
            and name.isascii()
            and len(text) <= MAX_VALUE_BYTES
            and len(name) <= MAX_KEY_BYTES
        ):
            out[name] = text
            continue
        if not isinstance(text, str):
            raise PayloadError(
                child(path, key),
                f"must be an object of strings "
                f"({child(child(path, key), name)} is {json_type(text)})",
            )
        out[_cut(name, MAX_KEY_BYTES, cuts)] = _cut(text, MAX_VALUE_BYTES, cuts)
    return out


def get_status(obj: Mapping[str, Any], key: str, path: str) -> Status:
    """``"firing"`` or ``"resolved"`` at ``obj[key]`` (required)."""
    value = obj.get(key)
    if value is None:
        raise PayloadError(child(path, key), "is required")
    if value == "firing":
        return "firing"
    if value == "resolved":
        return "resolved"
    shown = (
        json.dumps(value, ensure_ascii=False)[:40] if isinstance(value, str) else json_type(value)
    )
    raise PayloadError(child(path, key), f'must be "firing" or "resolved", not {shown}')


def get_int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int = 0) -> int | None:
    """The integer at ``obj[key]``, or ``None`` when absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise PayloadError(child(path, key), f"must be an integer, not {json_type(value)}")
    if value < minimum or value > 2**53:
        raise PayloadError(
            child(path, key), f"must be an integer from {minimum} to 2^53, not {value}"
        )
    return value


def get_time(obj: Mapping[str, Any], key: str, path: str) -> datetime | None:
    """The RFC 3339 time at ``obj[key]``; ``None`` for Go's zero time (year 1) or absence."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(
            child(path, key), f"must be an RFC 3339 time string, not {json_type(value)}"
        )
    if value.startswith("0001-01-01T"):
        return None
    try:
        parsed = datetime.fromisoformat(value) if len(value) <= 64 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in value.upper():
        shown = json.dumps(value, ensure_ascii=False)[:70]
        raise PayloadError(
            child(path, key),
            f"must be an RFC 3339 time with a zone (2024-05-01T12:00:00Z), not {shown}",
        )
    return parsed


def require_time(obj: Mapping[str, Any], key: str, path: str) -> datetime:
    """Like :func:`get_time`, but absence and the zero time are errors."""
    parsed = get_time(obj, key, path)
    if parsed is None:
        raise PayloadError(child(path, key), "is required (an RFC 3339 time)")
    return parsed


def get_alerts(root: Mapping[str, Any], *, grafana: bool, cuts: Cuts) -> tuple[Alert, ...]:
    """The ``alerts`` array of an Alertmanager-shaped payload: the first :data:`MAX_ALERTS`,
    the rest counted in ``cuts`` (and not read)."""
    value = root.get("alerts")
    if value is None:
        raise PayloadError("alerts", "is required")
    if not isinstance(value, list):
        raise PayloadError("alerts", f"must be an array, not {json_type(value)}")
    if not value:
        raise PayloadError("alerts", "is empty; a notification carries at least one alert")
    if len(value) > MAX_ALERTS:
        cuts.alerts += len(value) - MAX_ALERTS
        value = value[:MAX_ALERTS]
    return tuple(
        _alert(item, f"alerts[{i}]", grafana=grafana, cuts=cuts) for i, item in enumerate(value)
    )


def _alert(value: Any, path: str, *, grafana: bool, cuts: Cuts) -> Alert:
    obj = require_object(value, path)
    extra: dict[str, Any] = {}
    if grafana:
        extra = {
            "values": _numbers(obj, "values", path, cuts),
            "value_string": get_string(
                obj, "valueString", path, max_bytes=MAX_TEXT_BYTES, cuts=cuts
            ),
            "silence_url": get_string(obj, "silenceURL", path, cuts=cuts),
            "dashboard_url": get_string(obj, "dashboardURL", path, cuts=cuts),
            "panel_url": get_string(obj, "panelURL", path, cuts=cuts),
            "image_url": get_string(obj, "imageURL", path, cuts=cuts),
        }
    return Alert(
        status=get_status(obj, "status", path),
        labels=get_string_map(obj, "labels", path, cuts=cuts),
        annotations=get_string_map(obj, "annotations", path, cuts=cuts),
        starts_at=require_time(obj, "startsAt", path),
        ends_at=get_time(obj, "endsAt", path),
        generator_url=get_string(obj, "generatorURL", path, cuts=cuts),
        fingerprint=get_string(obj, "fingerprint", path, max_bytes=MAX_KEY_BYTES, cuts=cuts),
        **extra,
    )


def _numbers(obj: Mapping[str, Any], key: str, path: str, cuts: Cuts) -> dict[str, float]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(
            child(path, key), f"must be an object of numbers, not {json_type(value)}"
        )
    value = _first_pairs(value, cuts)
    out: dict[str, float] = {}
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise PayloadError(
                child(path, key),
                f"must be an object of numbers "
                f"({child(child(path, key), name)} is {json_type(number)})",
            )
        out[_cut(name, MAX_KEY_BYTES, cuts)] = number
    return out


def envelope(root: Mapping[str, Any], *, grafana: bool, cuts: Cuts) -> dict[str, Any]:
    """The fields Alertmanager's webhook envelope and Grafana's (which copies it) share;
    what had to be cut is counted in ``cuts``."""
    return {
        "status": get_status(root, "status", ""),
        "receiver": get_string(root, "receiver", "", cuts=cuts),
        "alerts": get_alerts(root, grafana=grafana, cuts=cuts),
        "group_labels": get_string_map(root, "groupLabels", "", cuts=cuts),
        "common_labels": get_string_map(root, "commonLabels", "", cuts=cuts),
        "common_annotations": get_string_map(root, "commonAnnotations", "", cuts=cuts),
        "external_url": get_string(root, "externalURL", "", cuts=cuts),
        "group_key": get_string(root, "groupKey", "", cuts=cuts),
        "truncated_alerts": get_int(root, "truncatedAlerts", "") or 0,
    }
