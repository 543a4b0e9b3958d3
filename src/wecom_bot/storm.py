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

:class:`AlertBrief` is what travels with a queued message for that purpose (see
:func:`attach`): the labels, the status, the start and a short summary, nothing more.
:func:`expand` reverses the compression, which is what tests and benchmarks use to count the
alerts a reader can find in a message.

Nothing here does I/O or knows about templates: the gateway lays the groups out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .limits import truncate_utf8, utf8_len

__all__ = [
    "ALERTS_KEY",
    "AlertBrief",
    "AlertGroup",
    "attach",
    "briefs_of",
    "compress",
    "cut_value",
    "detach",
    "expand",
    "group_alerts",
    "unique_briefs",
]

ALERTS_KEY = "wecom_bot_alerts"
"""The payload member that carries a queued message's alerts; stripped before sending."""

SUMMARY_BYTES = 200
"""A brief keeps at most this much of an alert's ``summary`` annotation."""

# ASCII only: int() reads other digits (Arabic-Indic "٣") and would write them back as ASCII.
_DIGITS = re.compile(r"([0-9]+)")
# A range's brackets are written as these private-use characters until the entry is escaped,
# so that escaping (which turns "[" into a look-alike) leaves them alone; values lose them.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDERS = str.maketrans("", "", _OPEN + _CLOSE)
_RANGE_ENTRY = re.compile(r"\[([0-9][0-9,\-]*)\]")
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
    """The API payload alone: ``payload`` without the alerts :func:`attach` added."""
    if ALERTS_KEY not in payload:
        return dict(payload)
    return {k: v for k, v in payload.items() if k != ALERTS_KEY}


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


def compress(values: Iterable[str], esc: Callable[[str], str] = str) -> list[str]:
    """Write ``values`` compactly: runs of numbers become ranges, ``host-[0-999]``.

    Values of the same *shape* (the same text around their numbers) are merged on the number
    that varies; when several numbers vary, on the last one, once per combination of the
    others (``rack[1-2]-node[1-5]`` is written ``rack1-node[1-5]``, ``rack2-node[1-5]``).
    Zero-padded numbers keep their width; only ASCII digits count as numbers. A value without
    numbers stays as it is.

    Args:
        values: the values (untrusted text); repeats are listed once.
        esc: escapes the text pieces for the message syntax; the brackets, digits, commas and
            dashes of a range are written by this function and are not escaped.

    Returns:
        The entries, in the order their shapes first appear; :func:`expand` gives the values
        back.
    """
    shapes: dict[tuple[str, ...], list[list[str]]] = {}
    for value in dict.fromkeys(v.translate(_PLACEHOLDERS) for v in values):
        tokens = _DIGITS.split(value)  # text, number, text, number, ..., text
        if any(len(t) > _MAX_DIGITS for t in tokens[1::2]):
            tokens = [value]
        shapes.setdefault(tuple(tokens[0::2]), []).append(tokens)
    raw: list[str] = []
    for members in shapes.values():
        varying = [i for i in range(1, len(members[0]), 2) if len({m[i] for m in members}) > 1]
        if varying:
            raw.extend(_compress_shape(members, varying))
        else:
            raw.append("".join(members[0]))
    return [esc(entry).replace(_OPEN, "[").replace(_CLOSE, "]") for entry in raw]


def expand(text: str) -> list[str]:
    """Every value a compressed entry (or a whole line of them) stands for.

    ``host-[0-2]`` gives ``host-0``, ``host-1``, ``host-2``; text without a range gives itself.
    Only the first range of each whitespace-separated word is expanded.
    """
    out: list[str] = []
    for word in text.split():
        match = _RANGE_ENTRY.search(word)
        if match is None:
            out.append(word)
            continue
        head, tail = word[: match.start()], word[match.end() :]
        for item in match.group(1).split(","):
            first, _, last = item.partition("-")
            if not first:
                continue
            width = _number_width(first)
            for n in range(int(first), int(last or first) + 1):
                out.append(f"{head}{n:0{width}d}{tail}")
    return out


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
        severities: how many alerts have each severity, when severities differ.
        earliest: the earliest start, seconds since the epoch.
        summary: the summary annotation when every alert has the same one.
    """

    alertname: str
    status: str
    alerts: list[AlertBrief]
    shared: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    severities: dict[str, int] = field(default_factory=dict)
    earliest: float | None = None
    summary: str = ""

    @property
    def count(self) -> int:
        """How many alerts the group has."""
        return len(self.alerts)

    def entries(self, esc: Callable[[str], str] = str, value_bytes: int = 64) -> list[str]:
        """The alerts' identities, compressed: with one key its values (``host-[0-999]``), with
        several one entry per combination of the others (``zone=a, instance: host-[1-5]``).

        Args:
            esc: escapes text pieces for the message syntax.
            value_bytes: a longer value is cut, marked ``…(N bytes more)``.
        """
        if not self.keys:
            return []
        last, heads = self.keys[0], self.keys[1:]
        buckets: dict[tuple[str, ...], list[str]] = {}
        for alert in self.alerts:
            head = tuple(cut_value(alert.labels.get(k, "-"), value_bytes) for k in heads)
            value = cut_value(alert.labels.get(last, "-"), value_bytes)
            buckets.setdefault(head, []).append(value)
        out: list[str] = []
        for head, values in buckets.items():
            compressed = ", ".join(compress(values, esc))
            if heads:
                pairs = ", ".join(f"{esc(k)}={esc(v)}" for k, v in zip(heads, head, strict=True))
                compressed = f"{pairs}, {esc(last)}: {compressed}"
            out.append(compressed)
        return out


def _identity_keys(alerts: Sequence[AlertBrief], varying: list[str]) -> list[str]:
    """The fewest varying labels that tell the alerts apart as well as all of them do."""
    def distinct(names: Sequence[str]) -> int:
        return len({tuple(a.labels.get(n, "") for n in names) for a in alerts})

    counts = {n: len({a.labels.get(n, "") for a in alerts}) for n in varying}
    # severity is counted on its own line: it identifies only when nothing else does
    ranked = sorted(varying, key=lambda n: (n == "severity", -counts[n], n))
    if counts[ranked[0]] == len(alerts):  # one label tells every alert apart
        return ranked[:1]
    goal = distinct(varying)
    chosen: list[str] = []
    for name in ranked:
        chosen.append(name)
        if distinct(chosen) == goal:
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
        severities: dict[str, int] = {}
        if "severity" in varying:
            for a in members:
                level = a.labels.get("severity", "")
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
