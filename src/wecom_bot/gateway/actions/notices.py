"""The short messages escalation and reminders post: which group, how long it fires, links.

One message names the alert group (its alert name and the labels that tell it apart), says
how long it has fired unacknowledged, and carries the group's action links when the gateway
has them. Label values are untrusted: each is escaped for the message's syntax
(:mod:`wecom_bot.gateway.escaping`). Mentions are added by the renderer, like every message's
(:meth:`wecom_bot.gateway.templates.Renderer.compose`).
"""

from __future__ import annotations

from typing import Literal

from ..escaping import Syntax, escape
from .groups import GroupInfo
from .links import ActionLinks

__all__ = ["NoticeKind", "fired_for", "notice", "notice_title"]

NoticeKind = Literal["escalate", "remind"]

_HEADS: dict[str, tuple[str, str]] = {
    "escalate": ("⏫", "升级 Escalation"),
    "remind": ("🔔", "提醒 Reminder"),
}


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


def notice_title(kind: NoticeKind, info: GroupInfo, *, now: float) -> str:
    """A plain one-line title (for history): ``⏫ 升级 Escalation · HighCPU · 15m``."""
    icon, word = _HEADS[kind]
    return f"{icon} {word} · {info.name or 'alert'} · {fired_for(now - info.firing_since)}"


def notice(
    kind: NoticeKind,
    info: GroupInfo,
    *,
    now: float,
    syntax: Syntax,
    links: ActionLinks | None = None,
) -> str:
    """The content of an escalation or reminder message, escaped for ``syntax``.

    Args:
        kind: ``escalate`` or ``remind``.
        info: the group.
        now: the time (how long it has fired is counted to it).
        syntax: ``text``, ``markdown`` or ``markdown_v2``.
        links: the group's action links, if the gateway has them.
    """
    icon, word = _HEADS[kind]
    name = escape(info.name or "alert", syntax)
    labels = [
        f"{escape(n, syntax)}={escape(v, syntax)}" for n, v in info.labels if n != "alertname"
    ]
    duration = fired_for(now - info.firing_since)
    state = f"已触发 {duration}，无人认领 · firing for {duration}, unacknowledged"
    if info.alerts > 1:
        state += f" · {info.alerts} alerts"
    if syntax == "text":
        lines = [f"{icon} {word} · {name}", state]
        if labels:
            lines.append(" ".join(labels))
        if links is not None:
            lines += [f"认领：{links.ack}", f"静默：{links.silence}"]
            if links.details:
                lines.append(f"详情：{links.details}")
        return "\n".join(lines)
    lines = [f"**{icon} {word} · {name}**", state]
    if labels:
        lines.append(" · ".join(labels))
    if links is not None:
        line = f"👉 [认领]({links.ack}) · [静默]({links.silence})"
        if links.details:
            line += f" · [详情]({links.details})"
        lines.append(line)
    if syntax == "markdown":
        return "\n".join([lines[0], *(f"> {line}" for line in lines[1:])])
    # markdown_v2 joins the lines of a paragraph: one paragraph each.
    return "\n\n".join(lines)
