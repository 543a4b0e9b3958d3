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
value, a value with whitespace, a comma (entries are listed ``a, b``), a double quote or a ``[``
(it could read as a range), and a value that reads like ``-`` are written as a JSON string of
their escaped text: ``""``, ``"disk C"``, ``"-"``, ``"line 1\\nline 2"``. Such values are
listed one by one, never merged into a range. Label names are written the same way.

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
from dataclasses import dataclass, field, replace
from typing import Any

from .limits import truncate_utf8, utf8_len

__all__ = [
    "ALERTS_KEY",
    "CARRIED_PREFIX",
    "DEFAULT_CONTEXT_LABELS",
    "MISSING",
    "AlertBrief",
    "AlertGroup",
    "EntryLine",
    "STORM_GRAPH_KEY",
    "Section",
    "attach",
    "briefs_of",
    "compress",
    "compressed",
    "cut_literals",
    "cut_value",
    "detach",
    "expand",
    "group_alerts",
    "literal",
    "read_entries",
    "read_message",
    "severity_rank",
    "unique_briefs",
]

CARRIED_PREFIX = "wecom_bot_"
"""Payload members whose name starts with this travel with a queued message for the gateway
(its alerts, a notice's group) and are stripped before sending."""

ALERTS_KEY = CARRIED_PREFIX + "alerts"
"""The payload member that carries a queued message's alerts; stripped before sending."""

STORM_GRAPH_KEY = CARRIED_PREFIX + "storm_graph"
"""Marks a queued graph let through a storm (the gateway's ``graphs.in_storms``); the
dispatcher drops any other graph it claims while the bot is in a storm."""

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
# What a reader (or expand) could misread in written text: a word break, a list's comma
# ("host-1,host-2" would read as two hosts), a quote, a range.
_AMBIGUOUS = re.compile(r'[\s,"\[]')
_QUOTED = r'"(?:[^"\\\n]|\\.)*"'
# Characters that show nothing (zero-width, soft hyphen) or that the escapers drop or turn
# into a newline (controls, bidi marks, U+2028): two values differing only by them would read
# alike, so a value with one is quoted and they are written as JSON escapes, "a\u200bb".
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2028\u2029\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
_QUOTED_PART = re.compile(f"({_QUOTED})")
_WORD = re.compile(rf"(?:{_QUOTED}|\S)+")
_MAX_DIGITS = 9  # longer numbers are ids, not counters: they stay as written
_MAX_RANGE_BYTES = 480  # a range past this is written as several entries


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


def cut_literals(
    values: Iterable[str | None], max_bytes: int | None, esc: Callable[[str], str] = str
) -> dict[str | None, str]:
    """Each of ``values`` as :func:`literal` writes it, cut to about ``max_bytes`` (``None``:
    never), unless the cut would read like another value's text: then it stays whole, so that
    a cut never makes two values (two namespaces, two alertnames) read alike."""
    whole = {v: literal(v, esc) for v in dict.fromkeys(values)}
    if max_bytes is None:
        return whole
    cut = {
        v: shown if v is None else literal(cut_value(v, max_bytes), esc)
        for v, shown in whole.items()
    }
    counts: dict[str, int] = {}
    for text in cut.values():
        counts[text] = counts.get(text, 0) + 1
    return {v: cut[v] if counts[cut[v]] == 1 else whole[v] for v in whole}


# --------------------------------------------------------------------------- compression


def _runs(numbers: Sequence[int], width: int) -> list[tuple[str, int, int]]:
    """The runs of sorted unique ``numbers``: (written, first, last), ``0-9`` or ``12``;
    ``width`` zero-pads."""
    out: list[tuple[str, int, int]] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        first, last = f"{start:0{width}d}", f"{prev:0{width}d}"
        out.append((first if start == prev else f"{first}-{last}", start, prev))
        if n is not None:
            start = prev = n
    return out


def _range_chunks(runs: list[tuple[str, int, int]]) -> list[list[tuple[str, int, int]]]:
    """``runs`` in chunks of at most :data:`_MAX_RANGE_BYTES` written bytes each: a range of
    scattered numbers is written as several entries, so that each fits a message."""
    chunks: list[list[tuple[str, int, int]]] = [[]]
    size = 0
    for run in runs:
        if chunks[-1] and size + len(run[0]) + 1 > _MAX_RANGE_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(run)
        size += len(run[0]) + 1
    return chunks


def _number_width(token: str) -> int:
    """0 for a plain number; its length when it is zero-padded (``007``)."""
    return len(token) if len(token) > 1 and token.startswith("0") else 0


def _compress_shape(
    values: list[list[str]], varying: list[int]
) -> list[tuple[str, list[list[str]]]]:
    """Compress values of one shape (same text between their numbers) on their last varying
    number, grouping by the other varying numbers; each entry with the values it stands for."""
    position = varying[-1]
    buckets: dict[tuple[str, ...], list[list[str]]] = {}
    for tokens in values:
        token = tokens[position]
        key = (*[tokens[i] for i in varying[:-1]], str(_number_width(token)))
        buckets.setdefault(key, []).append(tokens)
    out: list[tuple[str, list[list[str]]]] = []
    for key, members in buckets.items():
        width = int(key[-1])
        heads = dict(zip(varying[:-1], key[:-1], strict=True))
        template = members[0]
        unique = sorted({int(m[position]) for m in members})
        for chunk in _range_chunks(_runs(unique, width)):
            low, high = chunk[0][1], chunk[-1][2]
            within = [m for m in members if low <= int(m[position]) <= high]
            numbers = {int(m[position]) for m in within}
            pieces: list[str] = []
            for i, token in enumerate(template):
                if i == position:
                    written = ",".join(run for run, _, _ in chunk)
                    single = len(numbers) == 1
                    pieces.append(written if single else _OPEN + written + _CLOSE)
                else:
                    pieces.append(heads.get(i, token))
            out.append(("".join(pieces), within))
    return out


def literal(value: str | None, esc: Callable[[str], str] = str) -> str:
    """How a summary writes one label value or name, so that a reader tells it from any other.

    ``None`` (a label the alert does not have) is written :data:`MISSING`, escaped. Any other
    value is written escaped, as it is, unless a reader could misread it: the empty value, one
    with whitespace, a comma, a double quote or a ``[``, and one that reads like
    :data:`MISSING` are written as a JSON string of their escaped text (``""``, ``"disk C"``,
    ``"-"``, ``"a\\nb"``), and so is one with a character that shows nothing or that escaping
    drops (zero-width, bidi marks, controls), written as its escape (``"a\\u200bb"``);
    :func:`expand` reads it back.

    Args:
        value: the value (untrusted text), or ``None``.
        esc: escapes text for the message syntax.
    """
    missing = esc(MISSING)
    return missing if value is None else _shown_written(value, esc, missing)[1]


def _shown_written(value: str, esc: Callable[[str], str], missing: str) -> tuple[str, str]:
    """``value`` escaped, and as a reader reads it unambiguously (see :func:`literal`)."""
    shown = esc(value)
    if not _HIDDEN.search(value):
        return shown, _written(shown, missing)
    pieces = _HIDDEN.split(value)
    body = [json.dumps(esc(pieces[0]), ensure_ascii=False)[1:-1]]
    for mark, piece in zip(_HIDDEN.findall(value), pieces[1:], strict=True):
        body.append(f"\\u{ord(mark):04x}" + json.dumps(esc(piece), ensure_ascii=False)[1:-1])
    return shown, '"' + "".join(body) + '"'


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
    return [written for written, _ in compressed(values, esc)]


def compressed(
    values: Iterable[str | None], esc: Callable[[str], str] = str
) -> list[tuple[str, list[str | None]]]:
    """:func:`compress`, each entry with the values it stands for (one for a value written on
    its own, several for a range)."""
    missing = esc(MISSING)
    # (tokens, value) by shape, the text pieces; a value written on its own is a shape of one,
    # keyed (None, value)
    slots: dict[tuple[str | None, ...], list[tuple[list[str], str | None]]] = {}
    alone: dict[tuple[str | None, ...], str] = {}
    for value in dict.fromkeys(values):
        if value is None:
            slots[(None,)] = [([], None)]
            alone[(None,)] = missing
            continue
        shown, written = _shown_written(value, esc, missing)
        tokens = _DIGITS.split(value)  # text, number, text, number, ..., text
        if (
            written != shown
            or len(tokens) == 1
            or _OPEN in value
            or _CLOSE in value
            or any(len(t) > _MAX_DIGITS for t in tokens[1::2])
        ):
            slots[(None, value)] = [([], value)]
            alone[(None, value)] = written
            continue
        slots.setdefault(tuple(tokens[0::2]), []).append((tokens, value))
    out: list[tuple[str, list[str | None]]] = []
    for shape_key, slot in slots.items():
        if shape_key in alone:
            out.append((alone[shape_key], [slot[0][1]]))
        elif len(slot) == 1:
            out.append((esc(slot[0][1] or ""), [slot[0][1]]))
        else:
            shape = [tokens for tokens, _ in slot]
            varying = [i for i in range(1, len(shape[0]), 2) if len({m[i] for m in shape}) > 1]
            for entry, members in _compress_shape(shape, varying):
                written = esc(entry).replace(_OPEN, "[").replace(_CLOSE, "]")
                out.append((written, ["".join(m) for m in members]))
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


DEFAULT_CONTEXT_LABELS: tuple[str, ...] = (
    "cluster", "namespace", "job", "service", "container", "mountpoint", "pod",
)  # fmt: skip
"""Labels a reader needs to place an alert (where it is, and which pod), shown whenever they
vary, even when other labels already tell the alerts apart: the ones kube-prometheus and
node-exporter set. A pod is named even when its namespace alone tells it from the others."""

_SEVERITY_RANKS = {
    "critical": 0, "emergency": 0, "page": 0, "fatal": 0, "disaster": 0,
    "error": 1, "high": 1, "major": 1,
    "warning": 2, "warn": 2, "average": 2, "medium": 2,
    "minor": 3, "low": 3,
    "info": 4, "information": 4, "notice": 4,
    "none": 5, "debug": 5,
}  # fmt: skip
_UNKNOWN_RANK = 3
_MISSING_RANK = 6
URGENT_RANK = 1
"""Severities ranked this or more urgent (critical, error …) are written in the alert colour."""


def severity_rank(level: str | None) -> int:
    """How urgent a severity reads: 0 for critical-like, 2 for warning, 4 for info, 6 for none
    (unknown words rank between warning and info)."""
    if level is None:
        return _MISSING_RANK
    return _SEVERITY_RANKS.get(level.strip().lower(), _UNKNOWN_RANK)


# A Kubernetes pod name: its workload's name, then the generated suffix (a ReplicaSet's hash
# with a digit in it, then the pod's five characters; or the five characters alone). A suffix
# of digits alone is a counter (host-12345): ranges write those better.
_POD_NAME = re.compile(
    r"\A([a-z0-9][a-z0-9.-]*?-)"
    r"(?![0-9]+\Z)((?=[a-z]*[0-9])[a-z0-9]{6,10}-[a-z0-9]{5}|[a-z0-9]{5})\Z"
)
_POD_SUFFIX = 5  # the characters Kubernetes adds to a ReplicaSet's name for each pod
_MIN_SET_LINE = 3  # fewer pods of one ReplicaSet are listed with their workload's others
PLACE_MARK = "📍 "
"""What starts a place's heading in a summary: the lines under it are in that place."""
STEM_MARK = "*"
"""What follows a stem on an entry line: ``checkout-* (40): 67e7893f5-ktr4c, …``."""


@dataclass(frozen=True)
class EntryLine:
    """One line of a :class:`Section`: the values of the line's labels for some alerts.

    Attributes:
        heads: the written values of every label of the line but the last (its context).
        items: the written entries of the last label (values, ranges; after a stem, suffixes).
        stem: the written text every item continues (a pod's workload), or ``None``.
        count: how many alerts the whole line stands for (all its parts, when it is split).
        continued: whether this is a later part of a line split across messages.
        weights: how many alerts each item stands for (a range: several; empty: one each).
        place: how many of ``heads`` say where the alerts are (a cluster and a namespace):
            lines of one place are written under one heading, :attr:`place_text`, and then
            :attr:`short` (0: every line is written whole, :attr:`text`).
        opens: whether this line is the first of its place in its message (a template
            writes the place's heading before it).
    """

    heads: tuple[str, ...]
    items: tuple[str, ...]
    stem: str | None = None
    count: int = 0
    continued: bool = False
    weights: tuple[int, ...] = ()
    place: int = 0
    opens: bool = False

    @property
    def text(self) -> str:
        """The whole line: ``shop-prod / checkout-* (40): 67e7893f5-ktr4c, …``."""
        return self._written(self.heads)

    @property
    def short(self) -> str:
        """The line under its place's heading: its heads past the place, then the items."""
        return self._written(self.heads[self.place :])

    @property
    def place_text(self) -> str:
        """The place's heading: ``eu-west-1-prod / shop-prod``."""
        return " / ".join(self.heads[: self.place])

    def _written(self, heads: tuple[str, ...]) -> str:
        listed = ", ".join(self.items)
        if self.stem is not None:
            more = "，续" if self.continued else ""
            listed = f"{self.stem}{STEM_MARK} ({self.count}{more}): {listed}"
        return " / ".join([*heads, listed]) if listed else " / ".join(heads)

    def part(self, start: int, end: int) -> EntryLine:
        """The same line with only its items ``start:end`` (its part in one message)."""
        return replace(
            self, items=self.items[start:end], continued=start > 0,
            weights=self.weights[start:end],
        )  # fmt: skip


@dataclass(frozen=True)
class Section:
    """The alerts of one group with one severity, as entry lines.

    Attributes:
        severity: the severity (``None``: the alerts have none).
        count: how many alerts.
        names: the labels each line gives, in order (its heads, then the listed label).
        lines: the lines (every alert is on exactly one, each value written whole unless the
            summary had to cut values to fit).
    """

    severity: str | None
    count: int
    names: tuple[str, ...]
    lines: list[EntryLine]

    @property
    def urgent(self) -> bool:
        """Whether the severity is critical-like (written in the alert colour)."""
        return severity_rank(self.severity) <= URGENT_RANK


@dataclass
class AlertGroup:
    """The alerts of one alertname and status, described once.

    Attributes:
        alertname: the alertname (untrusted).
        status: ``"firing"`` or ``"resolved"``.
        alerts: the alerts, in arrival order.
        shared: labels every alert of the group has with the same value (alertname left out).
        context: the context labels (:data:`DEFAULT_CONTEXT_LABELS` or configured) whose values
            differ, in their configured order: every line shows them.
        keys: the other labels that tell the alerts apart (fewest that do, given the severity
            and the context, most distinct first).
        severities: how many alerts have each severity (``None``: no severity label), most
            urgent first.
        earliest: the earliest start, seconds since the epoch.
        summary: the most common ``summary`` annotation (empty when none has one).
        summary_count: how many alerts have it.
        summary_kinds: how many different summaries the alerts have.
    """

    alertname: str
    status: str
    alerts: list[AlertBrief]
    shared: dict[str, str] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    severities: dict[str | None, int] = field(default_factory=dict)
    earliest: float | None = None
    summary: str = ""
    summary_count: int = 0
    summary_kinds: int = 0

    @property
    def count(self) -> int:
        """How many alerts the group has."""
        return len(self.alerts)

    @property
    def rank(self) -> int:
        """The rank of its most urgent severity (see :func:`severity_rank`)."""
        return min((severity_rank(s) for s in self.severities), default=_MISSING_RANK)

    @property
    def line_names(self) -> tuple[str, ...]:
        """The labels each entry line gives: the context, the other keys, the listed key."""
        names = [*self.context, *self.keys[1:]]
        if self.keys:
            names.append(self.keys[0])
        return tuple(names)

    def sections(
        self, esc: Callable[[str], str] = str, value_bytes: int | None = None
    ) -> list[Section]:
        """The alerts by severity (most urgent first), each severity's alerts as lines.

        A line gives the values of :attr:`line_names`: the heads once, then the listed label's
        values compressed (ranges, and pods of one workload after their stem:
        ``checkout-* (40): 67e7893f5-ktr4c, …``). Values are cut only with ``value_bytes``
        and only after compression; a cut that would make two entries read alike is undone.

        Args:
            esc: escapes text pieces for the message syntax.
            value_bytes: cut longer entries to about this many bytes (``None``: never).
        """
        names = self.line_names
        # a head cut alike with another would make their lines' alerts read alike
        written = cut_literals(
            (a.labels.get(n) for a in self.alerts for n in names[:-1]), value_bytes, esc
        )
        head = written.__getitem__

        by_level: dict[str | None, list[AlertBrief]] = {}
        for alert in self.alerts:
            by_level.setdefault(alert.labels.get("severity"), []).append(alert)
        out: list[Section] = []
        for level in sorted(by_level, key=lambda s: (severity_rank(s), s or "")):
            members = by_level[level]
            lines: list[EntryLine] = []
            if names:
                buckets: dict[tuple[str | None, ...], list[str | None]] = {}
                for alert in members:
                    key = tuple(alert.labels.get(n) for n in names[:-1])
                    buckets.setdefault(key, []).append(alert.labels.get(names[-1]))
                for key in sorted(buckets, key=lambda k: [(v is not None, v or "") for v in k]):
                    heads = tuple(head(v) for v in key)
                    lines.extend(_value_lines(heads, buckets[key], esc, value_bytes))
            out.append(Section(level, len(members), names, lines))
        return out

    def entries(self, esc: Callable[[str], str] = str, value_bytes: int | None = None) -> list[str]:
        """Every entry line's text, section after section (see :meth:`sections`)."""
        return [line.text for s in self.sections(esc, value_bytes) for line in s.lines]


def _value_lines(
    heads: tuple[str, ...],
    values: list[str | None],
    esc: Callable[[str], str],
    value_bytes: int | None,
) -> list[EntryLine]:
    """The lines of one bucket: pods of one ReplicaSet after its name, then pods of one
    workload after the workload's name, the rest compressed."""
    distinct = list(dict.fromkeys(values))
    pods = {v: m for v in distinct if v is not None and (m := _POD_NAME.match(v)) is not None}
    # the pods of one ReplicaSet (or DaemonSet): everything but the pod's own five characters
    by_set: dict[str, list[str]] = {}
    for value in pods:
        by_set.setdefault(value[:-_POD_SUFFIX], []).append(value[-_POD_SUFFIX:])
    stems = {stem: tails for stem, tails in by_set.items() if len(tails) >= _MIN_SET_LINE}
    # the others by workload, the ReplicaSet's hash written with each pod
    by_workload: dict[str, list[str]] = {}
    for value, match in pods.items():
        if value[:-_POD_SUFFIX] not in stems:
            by_workload.setdefault(match.group(1), []).append(match.group(2))
    stems.update((stem, tails) for stem, tails in by_workload.items() if len(tails) > 1)
    listed = {stem + tail for stem, tails in stems.items() for tail in tails}
    rest = [v for v in distinct if v not in listed]
    # with two heads or more, all but the last say where: lines of one place share a heading
    place = len(heads) - 1 if len(heads) > 1 else 0
    lines: list[EntryLine] = []
    for stem in sorted(stems):
        tails = sorted(stems[stem])
        items = tuple(esc(s) for s in tails)
        lines.append(EntryLine(heads, items, esc(stem), len(tails), place=place))
    if rest:
        entries = compressed(rest, esc)
        items_list = [written for written, _ in entries]
        if value_bytes is not None:
            items_list = _cut_entries(entries, esc, value_bytes)
        weights = tuple(len(members) for _, members in entries)
        lines.append(
            EntryLine(heads, tuple(items_list), None, len(rest), weights=weights, place=place)
        )
    return lines


def _cut_entries(
    entries: list[tuple[str, list[str | None]]], esc: Callable[[str], str], value_bytes: int
) -> list[str]:
    """The entries with single values past ``value_bytes`` cut, unless the cut would make an
    entry read like another (then it stays whole)."""
    cut: list[str] = []
    for written, members in entries:
        value = members[0]
        if len(members) == 1 and value is not None and utf8_len(written) > value_bytes:
            cut.append(literal(cut_value(value, value_bytes), esc))
        else:
            cut.append(written)
    seen: dict[str, int] = {}
    for text in cut:
        seen[text] = seen.get(text, 0) + 1
    return [
        text if seen[text] == 1 or text == written else written
        for text, (written, _) in zip(cut, entries, strict=True)
    ]


def _identity_keys(
    alerts: Sequence[AlertBrief], varying: list[str], given: Sequence[str] = ()
) -> list[str]:
    """The fewest ``varying`` labels that tell the alerts apart as well as all of them (and
    ``given``, already shown) do; found greedily, most distinct first, in time linear in
    alerts × labels."""
    if not varying:
        return []
    # None, not "": a missing label and an empty one are different alerts
    counts = {n: len({a.labels.get(n) for a in alerts}) for n in varying}
    ranked = sorted(varying, key=lambda n: (-counts[n], n))
    columns = {n: [a.labels.get(n) for a in alerts] for n in [*given, *ranked]}
    goal = len(set(zip(*columns.values(), strict=True)))
    # refine a partition of the alerts label by label: classes[i] is alert i's class so far
    classes = [0] * len(alerts)
    found = 1
    for name in given:
        ids: dict[tuple[int, str | None], int] = {}
        classes = [ids.setdefault(p, len(ids)) for p in zip(classes, columns[name], strict=True)]
        found = len(ids)
    chosen: list[str] = []
    for name in ranked:
        if found == goal:
            break
        ids = {}
        refined = [ids.setdefault(p, len(ids)) for p in zip(classes, columns[name], strict=True)]
        if len(ids) == found:  # tells apart no alerts the chosen labels do not
            continue
        chosen.append(name)
        classes, found = refined, len(ids)
    return chosen


def group_alerts(
    alerts: Iterable[AlertBrief], context_labels: Sequence[str] = DEFAULT_CONTEXT_LABELS
) -> list[AlertGroup]:
    """Group ``alerts`` by alertname and status (firing first, the most urgent severity first,
    then in arrival order) and find what each group shares and what tells its alerts apart.

    Args:
        alerts: the alerts.
        context_labels: labels every line shows when their values differ (see
            :data:`DEFAULT_CONTEXT_LABELS`).
    """
    buckets: dict[tuple[str, str], list[AlertBrief]] = {}
    for alert in alerts:
        buckets.setdefault((alert.status, alert.alertname), []).append(alert)
    groups: list[AlertGroup] = []
    for status, name in buckets:
        members = buckets[status, name]
        names = sorted({n for a in members for n in a.labels} - {"alertname"})
        first = members[0].labels
        shared = {
            n: first[n]
            for n in names
            if n in first and all(a.labels.get(n) == first[n] for a in members)
        }
        varying = [n for n in names if n not in shared and n != "severity"]
        context = [n for n in dict.fromkeys(context_labels) if n in varying]
        others = [n for n in varying if n not in context]
        severities: dict[str | None, int] = {}
        for a in members:
            level = a.labels.get("severity")
            severities[level] = severities.get(level, 0) + 1
        starts = [a.starts_at for a in members if a.starts_at is not None]
        summaries: dict[str, int] = {}
        for a in members:
            if a.summary:
                summaries[a.summary] = summaries.get(a.summary, 0) + 1
        common = max(summaries.items(), key=lambda kv: kv[1], default=("", 0))
        groups.append(
            AlertGroup(
                alertname=name,
                status=status,
                alerts=members,
                shared={k: v for k, v in shared.items() if k != "severity"},
                context=context,
                keys=_identity_keys(members, others, ["severity", *context]),
                severities=dict(
                    sorted(severities.items(), key=lambda kv: (severity_rank(kv[0]), -kv[1]))
                ),
                earliest=min(starts) if starts else None,
                summary=common[0],
                summary_count=common[1],
                summary_kinds=len(summaries),
            )
        )
    groups.sort(key=lambda g: (g.status != "firing", g.rank))  # stable: arrival order kept
    return groups


# --------------------------------------------------------------------------- reading


# MISSING as the escapers write it: plain text keeps "-", markdown's look-alike is "－" (a
# value that reads like it is quoted, so an unquoted one is always a missing label)
_MISSING_PLAIN, _MISSING_MARKDOWN = MISSING, "－"
_MARKUP = re.compile(r"</?font[^>]*>|\*\*|`")
_QUOTE_OR_WORD = rf"(?:{_QUOTED}|[^\s\"])+"
_GROUP_LINE = re.compile(rf"^(🔥|✅) ({_QUOTED}|\S+) × (\d+)")
_SECTION_LINE = re.compile(rf"^级别 ({_QUOTED}|\S+) × (\d+)(?:（续）)?(?: · (.+))?$")
# a stem is a pod's workload, never quoted: a quoted value that looks like one is a value
_STEM_ITEMS = re.compile(rf"^([^\s\"]\S*?){re.escape(STEM_MARK)} \((\d+)(?:，续)?\): (.*)$")
_SLASH = re.compile(rf"(?:{_QUOTED}|[^\"\s]|\s(?!/ ))+|\s/\s")


def read_message(text: str) -> list[dict[str, str]]:
    """The alerts a reader can identify in one summary message written by the built-in
    ``summary`` templates (any msgtype), as label sets.

    Each set has ``alertname``, ``status``, the labels shared by the alert's whole group, its
    ``severity`` (when it has one) and the labels of its entry line: context and identity.
    A label written ``-`` (missing) is left out. Values are as written, escaped for the
    msgtype (look-alike characters): compare with the labels escaped the same way. This is how
    tests and benchmarks check that a message read on its own names its alerts.
    """
    return [
        {k: v for k, v in entry.items() if v is not None}
        for entry in read_entries(text)
    ]


def read_entries(text: str) -> list[dict[str, str | None]]:
    """:func:`read_message` with every label the message names for an alert, a missing one
    (written ``-``) as ``None``: the exact identity the message gives each alert."""
    plain = text.lstrip().startswith("【")
    missing = _MISSING_PLAIN if plain else _MISSING_MARKDOWN
    found: list[dict[str, str | None]] = []
    base: dict[str, str | None] = {}
    names: list[str] = []
    place: list[str] = []  # the heads a place's heading (📍) gives the lines under it
    in_section = False
    for raw in text.splitlines():
        line = raw if plain else _MARKUP.sub("", raw)
        line = line.strip()
        body = line[2:] if line.startswith(("> ", "- ")) else line
        group = _GROUP_LINE.match(body)
        if group is not None:
            status = "firing" if group.group(1) == "🔥" else "resolved"
            base = {"alertname": _read_value(group.group(2), missing) or "", "status": status}
            names, place, in_section = [], [], False
            continue
        if not base:
            continue
        if body.startswith("标签："):
            for pair in _split_items(body[len("标签："):]):
                name, sep, value = pair.partition("=")
                if sep:
                    base[_read_value(name, missing) or name] = _read_value(value, missing)
            continue
        section = _SECTION_LINE.match(body)
        if section is not None:
            base["severity"] = _read_value(section.group(1), missing)
            legend = section.group(3)
            names = [_read_value(n, missing) or n for n in _split_slash(legend)] if legend else []
            in_section, place = True, []
            if not names:  # the severity alone tells this alert from the others
                found.append(dict(base))
            continue
        if in_section and body.startswith(PLACE_MARK):
            place = _split_slash(body[len(PLACE_MARK) :])
            continue
        if in_section and line.startswith(("> ", "- ")) and names:
            parts = _split_slash(body)
            if place and len(parts) + len(place) == len(names):
                parts = place + parts
            found.extend({**base, **labels} for labels in _read_entry(parts, names, missing))
    return found


def _read_value(written: str, missing: str) -> str | None:
    """A value as :func:`literal` wrote it (``None`` for a missing label, ``missing``)."""
    if written == missing:
        return None
    return _unquote(written) if written.startswith('"') else written


def _split_slash(text: str) -> list[str]:
    """``a / b / c`` into its parts (a JSON string may hold `` / ``)."""
    return [part for part in _SLASH.findall(text) if part.strip() != "/"]


def _split_items(text: str) -> list[str]:
    """``a, b, "c, d"`` into its items."""
    words = _WORD.findall(text)
    return [w[:-1] if i < len(words) - 1 and w.endswith(",") else w for i, w in enumerate(words)]


def _read_entry(parts: list[str], names: list[str], missing: str) -> list[dict[str, str | None]]:
    if len(parts) != len(names):
        return []
    head: dict[str, str | None] = {
        name: _read_value(part, missing)
        for name, part in zip(names[:-1], parts[:-1], strict=True)
    }
    listed = parts[-1]
    stem = _STEM_ITEMS.match(listed)
    if stem is not None:
        values: list[str | None] = [stem.group(1) + item for item in _split_items(stem.group(3))]
    else:
        values = []
        for item in _split_items(listed):
            if item == missing:
                values.append(None)
            else:
                values.extend(expand(item))
    return [{**head, names[-1]: v} for v in values]
