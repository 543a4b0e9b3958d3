"""Alerts a reader can identify in a storm: their identities, grouped and compressed.

An alert is delivered when a person reading the group can tell it apart from its siblings: its
``alertname``, its status and the labels that differ between it and the others. When a storm
does not fit the messages the rate limit allows, the gateway writes a *summary* built from the
alerts themselves (never by cutting rendered text):

* alerts are grouped by alertname and status (firing groups first);
* the labels every alert of a group shares are stated once;
* the labels that tell them apart are listed per alert, compactly: numeric runs are written as
  ranges, ``host-[0-999]`` for ``host-0`` … ``host-999``, ``10.0.3.[1-40]:9100``;
* severities are counted when they differ, and the earliest start is given.

A value is written so that a reader can tell it from every other (:func:`literal`): as it is,
escaped, unless it could be misread. A label an alert does not have is written ``-``; the empty
value, a value with whitespace, a double quote or a ``[`` (it could read as a range), and a value
that reads like ``-`` are written as a JSON string of their escaped text: ``""``, ``"disk C"``,
``"-"``, ``"line 1\\nline 2"``. Such values are listed one by one, never merged into a range.
Label names are written the same way.

:class:`AlertBrief` is what travels with a queued message for that purpose (see
:func:`attach`): the labels, the status, the start and a short summary, nothing more.
:func:`expand` reverses the compression, which is what tests and benchmarks use to count the
alerts a reader can find in a message.

Nothing here does I/O or knows about templates: the gateway lays the groups out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .limits import truncate_utf8, utf8_len

__all__ = [
    "ALERTS_KEY",
    "CARRIED_PREFIX",
    "MISSING",
    "AlertBrief",
    "AlertGroup",
    "attach",
    "briefs_of",
    "compress",
    "cut_value",
    "detach",
    "expand",
    "group_alerts",
    "literal",
    "unique_briefs",
]

CARRIED_PREFIX = "wecom_bot_"
"""Payload members whose name starts with this travel with a queued message for the gateway
(its alerts, a notice's group) and are stripped before sending."""

ALERTS_KEY = CARRIED_PREFIX + "alerts"
"""The payload member that carries a queued message's alerts; stripped before sending."""

SUMMARY_BYTES = 200
"""A brief keeps at most this much of an alert's ``summary`` annotation."""

MISSING = "-"
"""How a summary writes a label an alert does not have."""

# ASCII only: int() reads other digits (Arabic-Indic "٣") and would write them back as ASCII.
_DIGITS = re.compile(r"([0-9]+)")
# A range's brackets are written as these private-use characters until the entry is escaped,
# so that escaping (which turns "[" into a look-alike) leaves them alone. A value that has them
# itself is never merged into a range, so nothing but a range's brackets is ever replaced.
_OPEN, _CLOSE = "\ue000", "\ue001"
_RANGE_ENTRY = re.compile(r"\[([0-9][0-9,\-]*)\]")
# What a reader (or expand) could misread in written text: a word break, a quote, a range.
_AMBIGUOUS = re.compile(r'[\s"\[]')
_QUOTED = r'"(?:[^"\\\n]|\\.)*"'
_QUOTED_PART = re.compile(f"({_QUOTED})")
_WORD = re.compile(rf"(?:{_QUOTED}|\S)+")
_MAX_DIGITS = 9  # longer numbers are ids, not counters: they stay as written


@dataclass(frozen=True, slots=True)
class AlertBrief:
    """What a reader needs to identify one alert.

    Attributes:
        labels: every label, ``alertname`` included (untrusted text).
        status: ``"firing"`` or ``"resolved"``.
        starts_at: when it started, seconds since the epoch (``None``: unknown).
        summary: its ``summary`` annotation, cut to :data:`SUMMARY_BYTES`.
    """

    labels: Mapping[str, str]
    status: str
    starts_at: float | None = None
    summary: str = ""

    @property
    def alertname(self) -> str:
        """The ``alertname`` label (empty when it has none)."""
        return self.labels.get("alertname", "")

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Status and sorted labels: two briefs with the same key are the same alert."""
        return self.status, tuple(sorted(self.labels.items()))

    def to_json(self) -> dict[str, Any]:
        """The compact JSON form stored with a queued message."""
        data: dict[str, Any] = {"s": self.status, "l": dict(self.labels)}
        if self.starts_at is not None:
            data["t"] = self.starts_at
        if self.summary:
            data["m"] = self.summary
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertBrief:
        """Read the form :meth:`to_json` wrote."""
        labels = data.get("l") or {}
        start = data.get("t")
        return cls(
            labels={str(k): str(v) for k, v in labels.items()},
            status=str(data.get("s", "firing")),
            starts_at=float(start) if isinstance(start, int | float) else None,
            summary=str(data.get("m", "")),
        )


def attach(payload: Mapping[str, Any], briefs: Sequence[AlertBrief]) -> dict[str, Any]:
    """``payload`` with ``briefs`` carried along under :data:`ALERTS_KEY`."""
    return {**payload, ALERTS_KEY: [b.to_json() for b in briefs]}


def detach(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The API payload alone: ``payload`` without what travels with it for the gateway (the
    alerts :func:`attach` added, any other member named :data:`CARRIED_PREFIX` ``…``)."""
    return {k: v for k, v in payload.items() if not k.startswith(CARRIED_PREFIX)}


def briefs_of(payload: Mapping[str, Any]) -> list[AlertBrief] | None:
    """The alerts a queued payload carries, or ``None`` when it carries none (a plain message)."""
    items = payload.get(ALERTS_KEY)
    if not isinstance(items, list):
        return None
    return [AlertBrief.from_json(item) for item in items if isinstance(item, Mapping)]


def unique_briefs(groups: Iterable[Sequence[AlertBrief]]) -> list[AlertBrief]:
    """Every distinct alert of several messages, in first-seen order.

    The parts of one split notification each carry all of its alerts, and a re-sent
    notification carries the same ones again: a digest lists each alert once.
    """
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], AlertBrief] = {}
    for briefs in groups:
        for brief in briefs:
            seen.setdefault(brief.key, brief)
    return list(seen.values())


def cut_value(value: str, max_bytes: int) -> str:
    """``value`` within about ``max_bytes`` UTF-8 bytes, marked ``…(N bytes more)`` when cut."""
    if len(value) * 4 <= max_bytes:  # a character is at most 4 bytes
        return value
    size = utf8_len(value)
    if size <= max_bytes:
        return value
    kept = truncate_utf8(value, max(max_bytes - 18, 8))
    return f"{kept}…({size - utf8_len(kept)} bytes more)"


# --------------------------------------------------------------------------- compression


def _runs(numbers: Sequence[int], width: int) -> str:
    """``[0-9,12,20-29]`` for sorted unique ``numbers``; ``width`` zero-pads."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        first, last = f"{start:0{width}d}", f"{prev:0{width}d}"
        out.append(first if start == prev else f"{first}-{last}")
        if n is not None:
            start = prev = n
    return _OPEN + ",".join(out) + _CLOSE


def _number_width(token: str) -> int:
    """0 for a plain number; its length when it is zero-padded (``007``)."""
    return len(token) if len(token) > 1 and token.startswith("0") else 0


def _compress_shape(values: list[list[str]], varying: list[int]) -> list[str]:
    """Compress values of one shape (same text between their numbers) on their last varying
    number, grouping by the other varying numbers."""
    position = varying[-1]
    buckets: dict[tuple[str, ...], list[int]] = {}
    for tokens in values:
        token = tokens[position]
        key = (*[tokens[i] for i in varying[:-1]], str(_number_width(token)))
        buckets.setdefault(key, []).append(int(token))
    out: list[str] = []
    for key, numbers in buckets.items():
        width = int(key[-1])
        heads = dict(zip(varying[:-1], key[:-1], strict=True))
        template = values[0]
        unique = sorted(set(numbers))
        pieces: list[str] = []
        for i, token in enumerate(template):
            if i == position:
                pieces.append(_runs(unique, width) if len(unique) > 1 else f"{unique[0]:0{width}d}")
            else:
                pieces.append(heads.get(i, token))
        out.append("".join(pieces))
    return out


def literal(value: str | None, esc: Callable[[str], str] = str) -> str:
    """How a summary writes one label value or name, so that a reader tells it from any other.

    ``None`` (a label the alert does not have) is written :data:`MISSING`, escaped. Any other
    value is written escaped, as it is, unless a reader could misread it: the empty value, one
    with whitespace, a double quote or a ``[``, and one that reads like :data:`MISSING` are
    written as a JSON string of their escaped text (``""``, ``"disk C"``, ``"-"``,
    ``"a\\nb"``); :func:`expand` reads it back.

    Args:
        value: the value (untrusted text), or ``None``.
        esc: escapes text for the message syntax.
    """
    missing = esc(MISSING)
    return missing if value is None else _written(esc(value), missing)


def _written(shown: str, missing: str) -> str:
    """``shown`` (escaped text) as a reader reads it unambiguously: quoted when it must be."""
    if not shown or shown in (missing, MISSING) or _AMBIGUOUS.search(shown):
        return json.dumps(shown, ensure_ascii=False)
    return shown


def compress(values: Iterable[str | None], esc: Callable[[str], str] = str) -> list[str]:
    """Write ``values`` compactly: runs of numbers become ranges, ``host-[0-999]``.

    Values of the same *shape* (the same text around their numbers) are merged on the number
    that varies; when several numbers vary, on the last one, once per combination of the
    others (``rack[1-2]-node[1-5]`` is written ``rack1-node[1-5]``, ``rack2-node[1-5]``).
    Zero-padded numbers keep their width; only ASCII digits count as numbers. A value without
    numbers stays as it is. A value a reader could misread is written as :func:`literal`
    writes it (``""``, ``"disk C"``) and never merged; so is one holding U+E000 or U+E001.

    Args:
        values: the values (untrusted text); ``None`` stands for a missing label, written
            :data:`MISSING`. Repeats are listed once.
        esc: escapes the text pieces for the message syntax; the brackets, digits, commas and
            dashes of a range are written by this function and are not escaped.

    Returns:
        The entries, in the order their shapes first appear; :func:`expand` gives the values
        back (a missing label as :data:`MISSING`).
    """
    missing = esc(MISSING)
    # (tokens, written text) by shape, the text pieces; a value written on its own is a shape
    # of one, keyed (None, value)
    slots: dict[tuple[str | None, ...], list[tuple[list[str], str]]] = {}
    for value in dict.fromkeys(values):
        if value is None:
            slots[(None,)] = [([], missing)]
            continue
        shown = esc(value)
        written = _written(shown, missing)
        tokens = _DIGITS.split(value)  # text, number, text, number, ..., text
        if (
            written != shown
            or len(tokens) == 1
            or _OPEN in value
            or _CLOSE in value
            or any(len(t) > _MAX_DIGITS for t in tokens[1::2])
        ):
            slots[(None, value)] = [([], written)]
            continue
        slots.setdefault(tuple(tokens[0::2]), []).append((tokens, shown))
    out: list[str] = []
    for slot in slots.values():
        if len(slot) == 1:
            out.append(slot[0][1])
        else:
            shape = [tokens for tokens, _ in slot]
            varying = [i for i in range(1, len(shape[0]), 2) if len({m[i] for m in shape}) > 1]
            out.extend(
                esc(entry).replace(_OPEN, "[").replace(_CLOSE, "]")
                for entry in _compress_shape(shape, varying)
            )
    return out


def expand(text: str) -> list[str]:
    """Every value a compressed entry (or a whole line of them) stands for: a reader's view.

    ``host-[0-2]`` gives ``host-0``, ``host-1``, ``host-2``; text without a range gives itself.
    Words are separated by whitespace outside JSON strings; a JSON string (``""``,
    ``"disk C"``) is read as the text it spells, never as a range. Only the first range of each
    word (outside JSON strings) is expanded.
    """
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = _QUOTED_PART.split(word)  # text, JSON string, text, ..., text
        read = [part if i % 2 == 0 else _unquote(part) for i, part in enumerate(parts)]
        for at in range(0, len(parts), 2):
            match = _RANGE_ENTRY.search(parts[at])
            if match is not None:
                break
        else:
            out.append("".join(read))
            continue
        head = "".join(read[:at]) + parts[at][: match.start()]
        tail = parts[at][match.end() :] + "".join(read[at + 1 :])
        for item in match.group(1).split(","):
            first, _, last = item.partition("-")
            if not first:
                continue
            width = _number_width(first)
            for n in range(int(first), int(last or first) + 1):
                out.append(f"{head}{n:0{width}d}{tail}")
    return out


def _unquote(text: str) -> str:
    """The text a JSON string spells (``text`` itself when it is not a valid one)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


# --------------------------------------------------------------------------- grouping


@dataclass
class AlertGroup:
    """The alerts of one alertname and status, described once.

    Attributes:
        alertname: the alertname (untrusted).
        status: ``"firing"`` or ``"resolved"``.
        alerts: the alerts, in arrival order.
        shared: labels every alert of the group has with the same value (alertname left out).
        keys: the labels that tell the alerts apart (fewest that do, most distinct first).
        severities: how many alerts have each severity (``None``: no severity label), when
            severities differ.
        earliest: the earliest start, seconds since the epoch.
        summary: the summary annotation when every alert has the same one.
    """

    alertname: str
    status: str
    alerts: list[AlertBrief]
    shared: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    severities: dict[str | None, int] = field(default_factory=dict)
    earliest: float | None = None
    summary: str = ""

    @property
    def count(self) -> int:
        """How many alerts the group has."""
        return len(self.alerts)

    def entries(self, esc: Callable[[str], str] = str, value_bytes: int = 64) -> list[str]:
        """The alerts' identities, compressed: with one key its values (``host-[0-999]``), with
        several one entry per combination of the others (``zone=a, instance: host-[1-5]``).

        Names and values are written as :func:`literal` writes them (a missing label ``-``, the
        empty value ``""``), each cut to ``value_bytes``.

        Args:
            esc: escapes text pieces for the message syntax.
            value_bytes: a longer value (or name) is cut, marked ``…(N bytes more)``.
        """
        if not self.keys:
            return []
        last, heads = self.keys[0], self.keys[1:]
        missing = esc(MISSING)
        memo: dict[str | None, str] = {}  # the few values of the other keys repeat

        def written(value: str | None) -> str:
            if value not in memo:
                shown = None if value is None else esc(cut_value(value, value_bytes))
                memo[value] = missing if shown is None else _written(shown, missing)
            return memo[value]

        buckets: dict[tuple[str | None, ...], list[str | None]] = {}
        for alert in self.alerts:
            value = alert.labels.get(last)
            head = tuple(alert.labels.get(k) for k in heads)
            buckets.setdefault(head, []).append(
                None if value is None else cut_value(value, value_bytes)
            )
        names = [written(k) for k in self.keys]
        out: list[str] = []
        for head, values in buckets.items():
            compressed = ", ".join(compress(values, esc))
            if heads:
                pairs = ", ".join(
                    f"{name}={written(v)}" for name, v in zip(names[1:], head, strict=True)
                )
                compressed = f"{pairs}, {names[0]}: {compressed}"
            out.append(compressed)
        return out


def _identity_keys(alerts: Sequence[AlertBrief], varying: list[str]) -> list[str]:
    """The fewest varying labels that tell the alerts apart as well as all of them do (found
    greedily, most distinct first), in time linear in alerts × labels."""
    # None, not "": a missing label and an empty one are different alerts
    counts = {n: len({a.labels.get(n) for a in alerts}) for n in varying}
    # severity is counted on its own line: it identifies only when nothing else does
    ranked = sorted(varying, key=lambda n: (n == "severity", -counts[n], n))
    if counts[ranked[0]] == len(alerts):  # one label tells every alert apart
        return ranked[:1]
    columns = {n: [a.labels.get(n) for a in alerts] for n in ranked}
    goal = len(set(zip(*columns.values(), strict=True)))
    # refine a partition of the alerts label by label: classes[i] is alert i's class so far
    classes = [0] * len(alerts)
    found = 1
    chosen: list[str] = []
    for name in ranked:
        ids: dict[tuple[int, str | None], int] = {}
        pairs = zip(classes, columns[name], strict=True)
        refined = [ids.setdefault(pair, len(ids)) for pair in pairs]
        if len(ids) == found:  # tells apart no alerts the chosen labels do not
            continue
        chosen.append(name)
        classes, found = refined, len(ids)
        if found == goal:
            break
    return chosen


def group_alerts(alerts: Iterable[AlertBrief]) -> list[AlertGroup]:
    """Group ``alerts`` by alertname and status (firing first, then in arrival order) and find
    what each group shares and what tells its alerts apart."""
    buckets: dict[tuple[str, str], list[AlertBrief]] = {}
    for alert in alerts:
        buckets.setdefault((alert.status, alert.alertname), []).append(alert)
    order = sorted(buckets, key=lambda k: k[0] != "firing")
    groups: list[AlertGroup] = []
    for status, name in order:
        members = buckets[status, name]
        names = sorted({n for a in members for n in a.labels} - {"alertname"})
        first = members[0].labels
        shared = {
            n: first[n]
            for n in names
            if n in first and all(a.labels.get(n) == first[n] for a in members)
        }
        varying = [n for n in names if n not in shared]
        severities: dict[str | None, int] = {}
        if "severity" in varying:
            for a in members:
                level = a.labels.get("severity")
                severities[level] = severities.get(level, 0) + 1
        starts = [a.starts_at for a in members if a.starts_at is not None]
        summaries = {a.summary for a in members}
        groups.append(
            AlertGroup(
                alertname=name,
                status=status,
                alerts=members,
                shared=shared,
                keys=_identity_keys(members, varying) if varying else [],
                severities=dict(sorted(severities.items(), key=lambda kv: -kv[1])),
                earliest=min(starts) if starts else None,
                summary=summaries.pop() if len(summaries) == 1 else "",
            )
        )
    return groups
