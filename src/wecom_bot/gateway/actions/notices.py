"""The messages escalation and reminders post: one group at a time, or many folded into one.

One message names the alert group (its alert name and the labels that tell it apart), says
how long it has fired unacknowledged, and carries the group's action links when the gateway
has them. The queued message carries a :class:`NoticeBrief` of its group (under
:data:`NOTICE_KEY`, dropped before sending), so that the dispatcher, finding several notices
queued for one bot, folds them into one message (:func:`fold`): ``12 组告警仍未认领 …``, a line
per group, as many as fit, then how many more. A folded message carries the briefs of all the
groups it counts, so that it can be folded again with later notices.

Label values are untrusted. Each is put on one line (line breaks become spaces), cut past
:data:`VALUE_BYTES` with the gateway's one cut (``…(N bytes more)``), and escaped for the
message's syntax (:mod:`~wecom_bot.gateway.templates.escaping`);
at most :data:`MAX_LABELS` labels are
shown, and the escaped name and labels are cut again to a share of the message (escaping can
triple a value). So no value can add a line, a mention or a link, no group's labels can make a
notice longer than one message, and no group's line can push the others out of a fold.
Mentions are added by the renderer, like every message's
(:meth:`wecom_bot.gateway.templates.renderer.Renderer.compose`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...limits import CONTENT_LIMITS, utf8_len
from ...storm import CARRIED_PREFIX, cut_value
from ..routing import Mentions
from ..templates.escaping import Syntax, escape, safe_url
from .groups import GroupInfo
from .links import ActionLinks

__all__ = [
    "MAX_LABELS",
    "NOTICE_KEY",
    "VALUE_BYTES",
    "NoticeBrief",
    "NoticeKind",
    "attach_notices",
    "fired_for",
    "fold",
    "notice",
    "notices_of",
    "notice_title",
    "one_line",
]

NoticeKind = Literal["escalate", "remind"]

NOTICE_KEY = CARRIED_PREFIX + "notices"
"""The payload key a queued notice carries the :class:`NoticeBrief` s of its groups under
(one for a group's own notice, every group's for a fold; never sent)."""

MAX_LABELS = 6
"""Labels of a group a notice shows; the others are counted (``+N labels``)."""

VALUE_BYTES = 96
"""A label name or value, or an alert name, is cut past this many bytes."""

_HEADS: dict[str, tuple[str, str]] = {
    "escalate": ("⏫", "升级 Escalation"),
    "remind": ("🔔", "提醒 Reminder"),
}

# What a fold keeps free of its message for the mention line the renderer adds (a quarter of
# the limit, see templates._mention_line) and for its last line.
_FOLD_RESERVE = 0.25
_FOOTER_BYTES = 400
# The escaped name, and the escaped labels line of a notice, are cut past these shares of the
# message's limit: with the state line and the links (LINK_BUDGET) a notice stays one message.
_NAME_SHARE = 20
_LABELS_SHARE = 4
# In a fold, a group's labels are cut past this share of the fold's budget.
_FOLD_LABELS_SHARE = 6


def fired_for(seconds: float) -> str:
    """A short duration: ``45s``, ``15m``, ``1h 5m``, ``2d 3h``."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def one_line(value: str, max_bytes: int = VALUE_BYTES) -> str:
    """``value`` on one line (every run of white space, line breaks included, one space) and
    cut past ``max_bytes`` (``…(N bytes more)``); not escaped."""
    return cut_value(" ".join(value.split()), max_bytes)


@dataclass(frozen=True, slots=True)
class NoticeBrief:
    """What a queued notice says about its group, to write it again or fold it.

    Attributes:
        kind: ``escalate`` or ``remind``.
        group: the group's id.
        name: its alert name, on one line and cut.
        labels: up to :data:`MAX_LABELS` of its labels but ``alertname``, on one line and cut
            (raw: escaped when written).
        more_labels: how many labels were left out.
        firing_since: when it started firing (Unix seconds).
        alerts: how many alerts of it fire.
        ack: its acknowledge link, or ``""``.
        users: the userids the notice mentions (from the configuration).
        mobiles: the mobile numbers it mentions.
        fire: the firing it came from (its history entry), so that the parts of one notice
            are told from notices fired at other times.
    """

    kind: NoticeKind
    group: str
    name: str
    labels: tuple[tuple[str, str], ...]
    more_labels: int
    firing_since: float
    alerts: int
    ack: str = ""
    users: tuple[str, ...] = ()
    mobiles: tuple[str, ...] = ()
    fire: str = ""

    @classmethod
    def of(
        cls,
        kind: NoticeKind,
        info: GroupInfo,
        links: ActionLinks | None,
        mentions: Mentions | None = None,
        fire: str = "",
    ) -> NoticeBrief:
        """The brief of ``info``'s group, mentioning ``mentions``, fired as ``fire``."""
        labels = [(n, v) for n, v in info.labels if n != "alertname"]
        return cls(
            kind=kind,
            group=info.id,
            name=one_line(info.name or "alert"),
            labels=tuple((one_line(n), one_line(v)) for n, v in labels[:MAX_LABELS]),
            more_labels=max(len(labels) - MAX_LABELS, 0),
            firing_since=info.firing_since,
            alerts=info.alerts,
            ack=links.ack if links is not None else "",
            users=mentions.userids if mentions is not None else (),
            mobiles=mentions.mobiles if mentions is not None else (),
            fire=fire,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as queued."""
        return {
            "kind": self.kind,
            "group": self.group,
            "name": self.name,
            "labels": [list(p) for p in self.labels],
            "more_labels": self.more_labels,
            "firing_since": self.firing_since,
            "alerts": self.alerts,
            "ack": self.ack,
            "users": list(self.users),
            "mobiles": list(self.mobiles),
            "fire": self.fire,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoticeBrief:
        """The inverse of :meth:`to_json`; every value is bounded again (a queued payload is
        only as trustworthy as the store)."""
        kind: NoticeKind = "remind" if data.get("kind") == "remind" else "escalate"
        pairs = [p for p in data.get("labels", ()) if isinstance(p, list | tuple) and len(p) == 2]
        return cls(
            kind=kind,
            group=str(data.get("group", "")),
            name=one_line(str(data.get("name", "")) or "alert"),
            labels=tuple((one_line(str(n)), one_line(str(v))) for n, v in pairs[:MAX_LABELS]),
            more_labels=int(data.get("more_labels", 0)) + max(len(pairs) - MAX_LABELS, 0),
            firing_since=float(data.get("firing_since", 0.0)),
            alerts=int(data.get("alerts", 0)),
            ack=safe_url(str(data.get("ack", ""))),
            users=tuple(str(u) for u in data.get("users", ())),
            mobiles=tuple(str(m) for m in data.get("mobiles", ())),
            fire=str(data.get("fire", "")),
        )


def attach_notices(payload: Mapping[str, Any], briefs: Iterable[NoticeBrief]) -> dict[str, Any]:
    """``payload`` with ``briefs`` carried along under :data:`NOTICE_KEY`."""
    return {**payload, NOTICE_KEY: [b.to_json() for b in briefs]}


def notices_of(payload: Mapping[str, Any]) -> list[NoticeBrief] | None:
    """The briefs a queued payload carries, or ``None`` when it carries none."""
    data = payload.get(NOTICE_KEY)
    if not isinstance(data, list):
        return None
    return [NoticeBrief.from_json(item) for item in data if isinstance(item, Mapping)]


def notice_title(kind: NoticeKind, info: GroupInfo, *, now: float) -> str:
    """A plain one-line title (for history): ``⏫ 升级 Escalation · HighCPU · 15m``."""
    icon, word = _HEADS[kind]
    name = one_line(info.name or "alert")
    return f"{icon} {word} · {name} · {fired_for(now - info.firing_since)}"


def _labels(brief: NoticeBrief, syntax: Syntax, separator: str, max_bytes: int) -> str:
    """The labels, escaped, on one line cut past ``max_bytes`` (escaping is per character, so
    a cut never splits an escape)."""
    more = f"{separator}+{brief.more_labels} labels" if brief.more_labels else ""
    shown = separator.join(f"{escape(n, syntax)}={escape(v, syntax)}" for n, v in brief.labels)
    return cut_value(shown, max_bytes - utf8_len(more)) + more if shown else more.lstrip(separator)


def _name(brief: NoticeBrief, syntax: Syntax) -> str:
    return cut_value(escape(brief.name, syntax), CONTENT_LIMITS[syntax] // _NAME_SHARE)


def notice(
    kind: NoticeKind,
    info: GroupInfo,
    *,
    now: float,
    syntax: Syntax,
    links: ActionLinks | None = None,
) -> str:
    """The content of one group's escalation or reminder message, escaped for ``syntax``.

    Args:
        kind: ``escalate`` or ``remind``.
        info: the group.
        now: the time (how long it has fired is counted to it).
        syntax: ``text``, ``markdown`` or ``markdown_v2``.
        links: the group's action links, if the gateway has them.
    """
    brief = NoticeBrief.of(kind, info, links)
    icon, word = _HEADS[kind]
    name = _name(brief, syntax)
    labels = _labels(
        brief, syntax, " " if syntax == "text" else " · ", CONTENT_LIMITS[syntax] // _LABELS_SHARE
    )
    duration = fired_for(now - brief.firing_since)
    state = f"已触发 {duration}，无人认领 · firing for {duration}, unacknowledged"
    if brief.alerts > 1:
        state += f" · {brief.alerts} alerts"
    if syntax == "text":
        lines = [f"{icon} {word} · {name}", state]
        if labels:
            lines.append(labels)
        if links is not None:
            lines += [f"认领：{links.ack}", f"静默：{links.silence}"]
            if links.details:
                lines.append(f"详情：{links.details}")
        return "\n".join(lines)
    lines = [f"**{icon} {word} · {name}**", state]
    if labels:
        lines.append(labels)
    if links is not None:
        line = f"👉 [认领]({links.ack}) · [静默]({links.silence})"
        if links.details:
            line += f" · [详情]({links.details})"
        lines.append(line)
    if syntax == "markdown":
        return "\n".join([lines[0], *(f"> {line}" for line in lines[1:])])
    # markdown_v2 joins the lines of a paragraph: one paragraph each.
    return "\n\n".join(lines)


def _fold_line(brief: NoticeBrief, syntax: Syntax, now: float, labels_bytes: int) -> str:
    name = _name(brief, syntax)
    parts = [f"**{name}**" if syntax != "text" else name]
    labels = _labels(brief, syntax, " ", labels_bytes)
    if labels:
        parts.append(labels)
    state = f"已触发 {fired_for(now - brief.firing_since)}"
    if brief.alerts > 1:
        state += f" · {brief.alerts} alerts"
    parts.append(state)
    line = " · ".join(parts)
    if brief.ack:
        line += f" · 认领：{brief.ack}" if syntax == "text" else f" · [认领]({brief.ack})"
    return {"text": "- ", "markdown": "> ", "markdown_v2": "- "}[syntax] + line


def fold(
    briefs: Iterable[NoticeBrief],
    *,
    syntax: Syntax,
    now: float,
    console_url: str | None = None,
) -> str:
    """One message for many groups' notices of one kind: a heading with the number of groups,
    a line per group (the longest firing first, then by name and labels) while they fit one
    message, then how many more (and where to see them all, with ``console_url``).

    A group named by several briefs (a reminder queued twice) is listed once.

    Raises:
        ValueError: no brief.
    """
    latest: dict[str, NoticeBrief] = {}
    for brief in briefs:
        latest[brief.group] = brief
    if not latest:
        raise ValueError("fold needs at least one notice")
    ordered = sorted(latest.values(), key=lambda b: (b.firing_since, b.name, b.labels, b.group))
    kinds = {b.kind for b in ordered}
    icon, word = _HEADS["escalate" if "escalate" in kinds else "remind"]
    count = len(ordered)
    heading = f"{icon} {word} · {count} 组告警仍未认领 · {count} groups unacknowledged"
    heading = heading if syntax == "text" else f"**{heading}**"
    budget = int(CONTENT_LIMITS[syntax] * (1 - _FOLD_RESERVE)) - _FOOTER_BYTES
    separator = "\n"
    lines = [heading]
    used = utf8_len(heading)
    for brief in ordered:
        line = _fold_line(brief, syntax, now, budget // _FOLD_LABELS_SHARE)
        size = utf8_len(line) + len(separator)
        if used + size > budget:
            continue  # a shorter line further down may still fit
        lines.append(line)
        used += size
    left = count - (len(lines) - 1)
    if left:
        more = f"… 另有 {left} 组 · {left} more"
        if console_url:
            where = f"{console_url}#alerts"
            more += f"：{where}" if syntax == "text" else f" · [控制台 console]({where})"
        # markdown_v2: a paragraph of its own, not a continuation of the last list item.
        lines.append({"text": "", "markdown": "> ", "markdown_v2": "\n"}[syntax] + more)
    return separator.join(lines)
