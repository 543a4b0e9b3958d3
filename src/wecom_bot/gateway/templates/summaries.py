"""Storm summaries: what the built-in (or a configured) ``summary`` template is given, one
message at a time.

A notification whose per-alert rendering does not fit one message, and a backlog the
dispatcher folds, are written as a summary built from the alerts themselves
(:mod:`wecom_bot.storm`): grouped by alertname and status, shared labels once, a section per
severity (most urgent first), the context labels on every line, the identities compressed
(``host-[0-999]``, ``checkout-* (40): …``). :func:`summary_pages` lays it out message by
message, so that each message carries its heading and names the group and severity it
continues: every message read alone says which alerts it is about.

Label names and values are written as :func:`wecom_bot.storm.literal` writes them, in the
entries, the shared labels, the legends and the severities alike: a missing label as ``-``,
the empty value as ``""``, a value a reader could misread (whitespace, a comma, a double quote) as a
JSON string, ``"disk C"``; everything else as it is. The alertname is written the same way.

Variables of the ``summary`` template (docs/gateway.md#storms has the table)
    ``groups``: the groups in this message (:class:`GroupView`, each with its
    :class:`SectionView` s and their :class:`~wecom_bot.storm.EntryLine` s); ``total``,
    ``firing_count``, ``resolved_count``, ``firing``, ``status``; ``notifications`` (how
    many notifications a digest folds); ``running_total`` (while a storm leaves in paced
    parts: the distinct alerts delivered since it began, this part's included, per status,
    ``running_total.firing`` and ``running_total.resolved``; a status is there only when its
    total is more than this summary's own count, so it is empty for a storm's first part);
    ``cut_alerts`` (alerts the sender or the gateway left out); ``part`` and ``parts``;
    ``value_bytes``; ``history_url`` (the console's history of these alerts; ``None`` without
    ``external_url``); ``msgtype``, ``now``, ``timezone``. Every text in them is escaped for
    the msgtype already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import groupby
from typing import Any
from urllib.parse import urlencode

from ... import limits
from ...storm import (
    DEFAULT_CONTEXT_LABELS,
    SUMMARY_BYTES,
    AlertBrief,
    AlertGroup,
    EntryLine,
    Section,
    cut_literals,
    cut_value,
    group_alerts,
    literal,
)
from ..model import Alert, Notification
from .filters import format_duration

__all__ = [
    "GroupView",
    "SectionView",
    "SummaryPages",
    "brief_of",
    "briefs_of_notification",
    "history_link",
    "summary_pages",
]

_MIN_VALUE_BYTES = 32
_MAX_VALUE_BYTES = 256
_NAME_BYTES = 64


def brief_of(alert: Alert) -> AlertBrief:
    """What a summary needs of ``alert``."""
    summary = alert.annotations.get("summary", "")
    return AlertBrief(
        labels=dict(alert.labels),
        status=alert.status,
        starts_at=alert.starts_at.timestamp(),
        summary=cut_value(" ".join(summary.split()), SUMMARY_BYTES) if summary else "",
    )


def briefs_of_notification(notification: Notification) -> list[AlertBrief]:
    """The briefs of every alert of ``notification`` (none for a generic webhook)."""
    return [brief_of(a) for a in notification.alerts]


@dataclass(frozen=True)
class SectionView:
    """The alerts of one severity in one group, as one message shows them (texts escaped).

    Attributes:
        severity: the severity as written (``-`` when the alerts have none).
        urgent: whether it is critical-like (written in the alert colour).
        count: how many alerts of the group have it (all of them, in every message).
        legend: the labels each line gives, ``namespace / pod``.
        lines: the entry lines in this message.
        continued: whether an earlier message began this severity's lines.
    """

    severity: str
    urgent: bool
    count: int
    legend: str
    lines: list[EntryLine]
    continued: bool = False

    @property
    def entries(self) -> list[str]:
        """The lines' texts."""
        return [line.text for line in self.lines]


@dataclass(frozen=True)
class GroupView:
    """One group (an alertname and status) as one message shows it (texts escaped).

    Attributes:
        name: the alertname as written.
        status: ``"firing"`` or ``"resolved"``.
        firing: ``status == "firing"``.
        count: how many alerts the group has (all of them, in every message).
        shared: the labels every alert of the group has alike, ``"k=v"`` texts.
        shared_context: those of them that are context labels (where the alerts are: cluster,
            namespace …), which a message continuing the group repeats.
        severities: (severity, count) pairs, most urgent first.
        keys: the labels each entry line gives (the legend's names).
        since: the earliest start (``None``: unknown).
        duration: how long since then (until ``now``), ``"2h 5m"``; empty when unknown.
        summary: the most common ``summary`` annotation (empty when none has one).
        summary_count: how many alerts have it.
        summary_kinds: how many different summaries the alerts have.
        sections: its severities in this message, most urgent first.
        continued: whether an earlier message began this group.
    """

    name: str
    status: str
    firing: bool
    count: int
    shared: list[str]
    severities: list[tuple[str, int]]
    keys: list[str]
    since: datetime | None
    duration: str
    summary: str
    summary_count: int
    summary_kinds: int
    sections: list[SectionView] = field(default_factory=list)
    continued: bool = False
    shared_context: list[str] = field(default_factory=list)

    @property
    def entries(self) -> list[str]:
        """Every entry line's text in this message, severity after severity."""
        return [line.text for section in self.sections for line in section.lines]


def value_budget(alerts: int, msgtype: str, max_messages: int | None) -> int:
    """The bytes one label value may take when values must be cut: an alert's share of the
    messages available."""
    room = limits.CONTENT_LIMITS[msgtype] * max(max_messages or 1, 1)
    return max(_MIN_VALUE_BYTES, min(_MAX_VALUE_BYTES, room // max(alerts, 1)))


def _group_view(
    group: AlertGroup,
    esc: Callable[[str], str],
    value_bytes: int | None,
    now: datetime,
    name: str,
    context_labels: Sequence[str],
) -> GroupView:
    def shown(value: str | None) -> str:
        cut = value if value is None or value_bytes is None else cut_value(value, value_bytes)
        return literal(cut, esc)

    since = datetime.fromtimestamp(group.earliest, UTC) if group.earliest else None
    summary = group.summary if value_bytes is None else cut_value(group.summary, value_bytes)
    return GroupView(
        name=name,
        status=group.status,
        firing=group.status == "firing",
        count=group.count,
        shared=[f"{shown(k)}={shown(v)}" for k, v in group.shared.items()],
        shared_context=[
            f"{shown(k)}={shown(group.shared[k])}"
            for k in dict.fromkeys(context_labels)
            if k in group.shared
        ],
        severities=[(shown(k), n) for k, n in group.severities.items()],
        keys=[literal(_name(k), esc) for k in group.line_names],
        since=since,
        duration=format_duration(now - since) if since else "",
        summary=esc(" ".join(summary.split())),
        summary_count=group.summary_count,
        summary_kinds=group.summary_kinds,
    )


def _section_view(
    section: Section, esc: Callable[[str], str], levels: Mapping[str | None, str]
) -> SectionView:
    return SectionView(
        severity=levels[section.severity],
        urgent=section.urgent,
        count=section.count,
        legend=" / ".join(literal(_name(n), esc) for n in section.names),
        lines=section.lines,
    )


def _name(name: str | None) -> str | None:
    """A label name (or a severity) as a heading shows it: cut, whatever the values get."""
    return None if name is None else cut_value(name, _NAME_BYTES)


def _context(
    views: list[GroupView],
    groups: list[AlertGroup],
    *,
    msgtype: str,
    notifications: int,
    cut_alerts: int,
    history_url: str | None,
    running_total: Mapping[str, int] | None,
    value_bytes: int,
    part: tuple[int, int],
) -> dict[str, Any]:
    firing = sum(g.count for g in groups if g.status == "firing")
    resolved = sum(g.count for g in groups if g.status != "firing")
    return {
        "groups": views,
        "total": firing + resolved,
        "firing_count": firing,
        "resolved_count": resolved,
        "firing": firing > 0,
        "status": "firing" if firing else "resolved",
        "notifications": notifications,
        "running_total": {
            status: total
            for status, total in (running_total or {}).items()
            if total > (firing if status == "firing" else resolved)
        },
        "cut_alerts": cut_alerts,
        "value_bytes": value_bytes,
        "history_url": history_url,
        "part": part[0],
        "parts": part[1],
        "msgtype": msgtype,
    }


# --------------------------------------------------------------------------- pagination


@dataclass(frozen=True)
class SummaryPages:
    """A summary written as messages that each stand alone.

    Attributes:
        pages: the content of each message (tidied; the caller adds mentions).
        cut_values: whether label values had to be cut to fit.
        left_out: alerts not listed because even cut they did not fit the messages allowed.
    """

    pages: list[str]
    cut_values: bool = False
    left_out: int = 0


@dataclass(frozen=True)
class _Atom:
    """The smallest piece a page holds: one item of one line (or a section without lines)."""

    group: int
    section: int
    line: int | None
    item: int
    alerts: int


def _atoms(layout: list[tuple[GroupView, list[Section]]]) -> list[_Atom]:
    atoms: list[_Atom] = []
    for gi, (_, sections) in enumerate(layout):
        for si, section in enumerate(sections):
            if not section.lines:
                atoms.append(_Atom(gi, si, None, 0, section.count))
                continue
            for li, line in enumerate(section.lines):
                weights = line.weights or (1,) * len(line.items)
                for ii, weight in enumerate(weights):
                    atoms.append(_Atom(gi, si, li, ii, weight))
    return atoms


def _page_views(
    layout: list[tuple[GroupView, list[SectionView]]], atoms: Sequence[_Atom]
) -> list[GroupView]:
    """The groups as one page shows them: the ``atoms`` it holds, with what each continues."""
    out: list[GroupView] = []
    for gi, in_group in groupby(atoms, key=lambda a: a.group):
        group_atoms = list(in_group)
        view, sections = layout[gi]
        shown: list[SectionView] = []
        for si, in_section in groupby(group_atoms, key=lambda a: a.section):
            section_atoms = list(in_section)
            section = sections[si]
            lines: list[EntryLine] = []
            place: tuple[str, ...] | None = None
            for li, in_line in groupby(section_atoms, key=lambda a: a.line):
                if li is None:  # a section without lines
                    continue
                line_atoms = list(in_line)
                line = section.lines[li]
                start, end = line_atoms[0].item, line_atoms[-1].item + 1
                if (start, end) != (0, len(line.items)):
                    line = line.part(start, end)
                # a place's heading opens its first line in this message, so each stands alone
                opens = line.place > 0 and line.heads[: line.place] != place
                place = line.heads[: line.place]
                lines.append(replace(line, opens=opens) if opens != line.opens else line)
            first = section_atoms[0]
            begun = bool(first.line) or first.item > 0
            shown.append(replace(section, lines=lines, continued=begun))
        first = group_atoms[0]
        begun = first.section > 0 or bool(first.line) or first.item > 0
        out.append(replace(view, sections=shown, continued=begun))
    return out


def summary_pages(
    briefs: Sequence[AlertBrief],
    *,
    msgtype: str,
    esc: Callable[[str], str],
    render: Callable[[dict[str, Any]], str],
    max_messages: int,
    first_reserve: int = 0,
    notifications: int = 1,
    cut_alerts: int = 0,
    console_url: str | None = None,
    running_total: Mapping[str, int] | None = None,
    now: datetime | None = None,
    context_labels: Sequence[str] = DEFAULT_CONTEXT_LABELS,
) -> SummaryPages:
    """Write ``briefs`` as at most ``max_messages`` messages that each stand alone.

    Every message carries the heading (status, count, ``part``/``parts``), and each group
    and severity it continues is named again (``continued``), so a message read alone says
    what its alerts are. Values are written whole when that fits ``max_messages`` messages;
    else they are cut (after compression) to a share of the room; if even that does not fit,
    the last message says how many alerts it could not list.

    Args:
        briefs: the alerts, in arrival order.
        msgtype: the msgtype (sets the byte limit).
        esc: its escaper.
        render: renders one message from template variables (tidied text).
        max_messages: the most messages.
        first_reserve: bytes the first message keeps free (its mention line).
        notifications: how many notifications the alerts came in.
        cut_alerts: alerts left out before they got here (the sender's ``truncatedAlerts``).
        console_url: the console's address as people reach it (``external_url`` + ``/ui/``).
        running_total: while a storm leaves in paced parts, its distinct alerts delivered so
            far per status (see the module docs); ``None``: none to state.
        now: the time durations run to (default: the current time).
        context_labels: labels every line shows when they vary.
    """
    now = now or datetime.now(UTC)
    limit = limits.CONTENT_LIMITS[msgtype]
    groups = group_alerts(briefs, context_labels)
    history = history_link(console_url, briefs) if console_url else None
    budget = value_budget(len(briefs), msgtype, max_messages)
    attempts: list[int | None] = [None, budget]
    best: tuple[tuple[bool, int], tuple[list[str], bool, int]] | None = None
    for value_bytes in attempts:
        # two alertnames (two severities of a group) cut alike would read as one
        names = cut_literals((g.alertname for g in groups), value_bytes, esc)
        layout = [
            (
                _group_view(g, esc, value_bytes, now, names[g.alertname], context_labels),
                g.sections(esc, value_bytes),
            )
            for g in groups
        ]
        views = [
            (view, [_section_view(s, esc, levels) for s in sections])
            for (view, sections), g in zip(layout, groups, strict=True)
            for levels in [cut_literals(g.severities, _NAME_BYTES, esc)]
        ]
        atoms = _atoms(layout)

        def page(
            chunk: Sequence[_Atom], part: tuple[int, int], left: int = 0,
            value_bytes: int | None = value_bytes,
            views: list[tuple[GroupView, list[SectionView]]] = views,
        ) -> str:
            context = _context(
                _page_views(views, chunk), groups, msgtype=msgtype, notifications=notifications,
                cut_alerts=cut_alerts + left, history_url=history, running_total=running_total,
                value_bytes=value_bytes or budget,
                part=part,
            )  # fmt: skip
            return render(context)

        pages, left = _paginate(atoms, page, limit, first_reserve, max_messages)
        over = any(
            limits.utf8_len(text) > limit - (first_reserve if i == 0 else 0)
            for i, text in enumerate(pages)
        )
        # whole values, unless cutting lists more alerts or one value alone overflows a page
        score = (over, left)
        if best is None or score < best[0]:
            best = (score, (pages, value_bytes is not None, left))
        if score == (False, 0):
            break
        if value_bytes is not None and left and len(pages) < max_messages:
            # pages to spare yet alerts left out: lines too long for a message even cut to
            # their share; the shortest cut may fit them
            if value_bytes > _MIN_VALUE_BYTES:
                attempts.append(_MIN_VALUE_BYTES)
    assert best is not None
    pages, cut, left = best[1]
    return SummaryPages(pages, cut_values=cut, left_out=left)


def _paginate(
    atoms: list[_Atom],
    page: Callable[..., str],
    limit: int,
    first_reserve: int,
    max_messages: int,
) -> tuple[list[str], int]:
    """Cut ``atoms`` into pages that fit ``limit`` when rendered (the first keeping
    ``first_reserve`` free), at most ``max_messages``; returns the rendered pages and the
    alerts of the atoms that did not fit (past the last page, or too long for any page: an
    atom that does not fit a page alone is left out and counted, never sent as an overlong
    page that would be split without its heading)."""
    placeholder = (max_messages, max_messages)
    bounds: list[tuple[int, int]] = []
    start = dropped = 0
    while start < len(atoms) or not bounds:
        room = limit - (first_reserve if not bounds else 0)
        # the last page allowed must also say how many alerts did not fit
        last = len(bounds) == max_messages - 1 and start < len(atoms)
        left = dropped + sum(a.alerts for a in atoms[start:]) if last else dropped

        def sized(end: int, start: int = start, left: int = left) -> str:
            return page(atoms[start:end], placeholder, left)

        end = _fill(atoms, start, sized, room)
        if end == start < len(atoms):  # too long for a page of its own
            dropped += atoms[start].alerts
            start += 1
            continue
        bounds.append((start, end))
        start = end
        if len(bounds) == max_messages:
            break
    left = dropped + sum(a.alerts for a in atoms[start:])
    total = len(bounds)
    pages = [
        page(atoms[s:e], (i + 1, total), left if i == total - 1 else 0)
        for i, (s, e) in enumerate(bounds)
    ]
    return pages, left


def _fill(atoms: list[_Atom], start: int, size_of: Callable[[int], str], room: int) -> int:
    """The largest end past ``start`` whose page fits ``room`` bytes (``start`` when not even
    one atom fits)."""
    if start >= len(atoms):
        return start
    def fits(end: int) -> bool:
        return limits.utf8_len(size_of(end)) <= room

    # every atom writes a byte at least: a page never holds more than ``room`` of them, so a
    # storm of 50,000 is never rendered whole just to learn that it does not fit
    lo, hi = start + 1, min(len(atoms), start + room)
    if hi == len(atoms) and fits(hi):
        return hi
    if not fits(lo):
        return start
    # gallop, then bisect: pages are small next to a storm
    step = 1
    while lo + step < hi and fits(lo + step):
        lo += step
        step *= 2
    hi = min(lo + step, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def history_link(console_url: str, briefs: Sequence[AlertBrief]) -> str:
    """The console's history view filtered to ``briefs``: received since a minute before the
    earliest start, and their alertname when they share one (the view lists every alert
    whole, values a summary cut included)."""
    params: dict[str, str] = {}
    names = {b.labels.get("alertname", "") for b in briefs}
    if len(names) == 1 and (name := names.pop()) and "," not in name:
        params["label"] = f"alertname={name}"
    starts = [b.starts_at for b in briefs if b.starts_at]
    if starts:
        params["since"] = str(int(min(starts)) - 60)
    return f"{console_url}#history" + (f"?{urlencode(params)}" if params else "")
