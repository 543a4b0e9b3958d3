"""What a heartbeat says when it goes missing and when it comes back.

The built-in messages are in Chinese, like the escalation notices; a heartbeat's ``template``
and ``recovery_template`` replace them, with ``{placeholders}``
(:data:`~wecom_bot.gateway.config.HEARTBEAT_FIELDS`). Every value put into a message is on one
line, cut (the gateway's one cut, ``…(N bytes more)``) and escaped for the message's syntax
(:mod:`~wecom_bot.gateway.templates.escaping`): where a heartbeat came from is the sender's
text (a receiver name, an external URL), untrusted like every label. The configured template
text itself is the operator's, written as is; the configuration refuses a ``{...}`` that names
no placeholder. A value is put in once: a value holding ``{gap}`` is not filled again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..actions.notices import fired_for, one_line
from ..config import HeartbeatConfig
from ..model import Notification
from ..templates.escaping import Syntax, escape

__all__ = ["SOURCE_BYTES", "Moment", "miss_text", "recovery_text", "source_of"]

SOURCE_BYTES = 160
"""Where a heartbeat came from is cut past this many bytes."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# (first line, the lines after it)
_MISS = (
    "⚠️ 告警链路中断：{title} 已 {silent_for} 未发送心跳",
    (
        "最后一次心跳：{last_seen}，来自 {source}",
        "应每 {expect_every} 至少一次（宽限 {grace}）。恢复之前，群里没有告警不代表一切正常："
        "请检查 Prometheus、Alertmanager 以及它们到网关的网络。",
    ),
)
_RECOVERY = (
    "✅ 告警链路恢复：{title} 的心跳又来了，中断了 {gap}",
    (
        "中断前最后一次心跳：{last_seen}；这一次来自 {source}",
        "中断期间的告警可能没有送到群里，请到 Alertmanager 查看。",
    ),
)
_NEVER = "从未收到（自 {since} 起等待）"


def source_of(notification: Notification) -> str:
    """Where a beat came from, for the messages: the source, the receiver (or webhook) and the
    sender's URL; raw (escaped when written)."""
    parts: list[str] = [notification.source]
    if notification.receiver:
        word = "webhook" if notification.source == "generic" else "receiver"
        parts.append(f"{word} {notification.receiver}")
    if notification.external_url:
        parts.append(notification.external_url)
    return one_line(" · ".join(parts), SOURCE_BYTES)


@dataclass(frozen=True)
class Moment:
    """The state a message is written about.

    Attributes:
        now: when it is written.
        last_seen: the last beat before the gap (``None``: none since it was configured).
        armed_at: when it started waiting, if it never beat.
        source: where the last beat (a miss) or this beat (a recovery) came from; raw.
        expected_by: when the beat was due at the latest.
    """

    now: float
    last_seen: float | None
    armed_at: float
    source: str
    expected_by: float


def _when(at: float, timezone: str) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _values(beat: HeartbeatConfig, moment: Moment, timezone: str, syntax: Syntax) -> dict[str, str]:
    since = moment.last_seen if moment.last_seen is not None else moment.armed_at
    last_seen = (
        _when(moment.last_seen, timezone)
        if moment.last_seen is not None
        else _NEVER.format(since=_when(moment.armed_at, timezone))
    )
    raw = {
        "title": one_line(beat.display),
        "name": beat.name,
        "last_seen": last_seen,
        "source": moment.source or "-",
        "silent_for": fired_for(moment.now - since),
        "gap": fired_for(moment.now - since),
        "expect_every": fired_for(beat.expect_every),
        "grace": fired_for(beat.grace),
        "expected_by": _when(moment.expected_by, timezone),
    }
    return {key: escape(value, syntax) for key, value in raw.items()}


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _builtin(parts: tuple[str, tuple[str, ...]], syntax: Syntax) -> str:
    head, lines = parts
    if syntax != "text":
        head = f"**{head}**"
    return "\n".join([head, *lines])


def miss_text(beat: HeartbeatConfig, moment: Moment, *, timezone: str, syntax: Syntax) -> str:
    """The content of the message sent when ``beat`` went missing, escaped for ``syntax``."""
    template = beat.template or _builtin(_MISS, syntax)
    return _fill(template, _values(beat, moment, timezone, syntax))


def recovery_text(beat: HeartbeatConfig, moment: Moment, *, timezone: str, syntax: Syntax) -> str:
    """The content of the message sent when ``beat`` came back, escaped for ``syntax``."""
    template = beat.recovery_template or _builtin(_RECOVERY, syntax)
    return _fill(template, _values(beat, moment, timezone, syntax))
