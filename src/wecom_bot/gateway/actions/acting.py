"""What acknowledging or silencing an alert group does, whoever asks: an ``/act/`` page
(a person in the group) or the console (an operator).

Acknowledging cancels the group's escalation and reminders (the store records who), writes a
history entry ``✅ 已认领 by …`` and posts that line to ``actions.ack_bots``, once: a second
acknowledgement is recorded but not posted, and a group that resolved is left alone. The line
is escaped for each bot's msgtype and kept on one line. Silencing creates
the silence in Alertmanager, then counts as an acknowledgement until the silence ends.
Neither touches a webhook key.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...masking import mask_url, redact
from ...store import Acknowledged, NewMessage, Priority
from ...store.history import HistoryEntry, HistoryQuery
from ..templates.escaping import Syntax, escape
from .alertmanager import Silence, SilenceError, create_silence
from .groups import group_id
from .links import SILENCE_CHOICES
from .notices import one_line
from .registry import Alertmanager

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = [
    "MAX_NAME_CHARS",
    "Acknowledgement",
    "ack_line",
    "ack_title",
    "acknowledge",
    "acknowledgers",
    "alertmanager_for",
    "group_name",
    "silence",
]

logger = logging.getLogger("wecom_bot.gateway.actions")

MAX_NAME_CHARS = 40
"""The longest name an acknowledgement or a silence records."""


def group_name(labels: Sequence[tuple[str, str]]) -> str:
    """The group as one short line: its label values."""
    return " ".join(v for _, v in labels)


def alertmanager_for(
    gateway: Gateway, external_url: str = "", name: str | None = None
) -> Alertmanager | None:
    """The configured Alertmanager to silence a group at: the one a link names (``name``),
    else the one the group's ``externalURL`` selects (``""``: the default one); ``None`` when
    it is not configured. A URL not configured is never requested."""
    registry = gateway.runtime.alertmanagers
    if name is not None:
        return registry.get(name) if name else None
    return registry.select(external_url)


@dataclass(frozen=True)
class Acknowledgement:
    """What acknowledging did.

    Attributes:
        outcome: whether the group was open, and acknowledged before this.
        entry: the history entry written (``None`` when the group was not open: nothing was).
        posted: a line went to ``actions.ack_bots`` (the first acknowledgement, or a later one
            whose person chose to tell the group).
        acknowledgers: everyone who acknowledged the group, with when, the first first.
    """

    outcome: Acknowledged
    entry: HistoryEntry | None = None
    posted: bool = False
    acknowledgers: tuple[tuple[str, float], ...] = ()


async def acknowledge(
    gateway: Gateway,
    labels: Sequence[tuple[str, str]],
    name: str,
    *,
    via: str,
    post: bool = False,
) -> Acknowledgement:
    """Acknowledge the group named by ``labels`` for ``name``, once.

    The first acknowledgement of an open group cancels its timers, writes a history entry and
    posts one line to ``actions.ack_bots``. Anyone acknowledging it again is written to the
    history and added to the group's names, and nothing is posted unless they ask (``post``:
    a line ``也认领``). A group that is not open (it resolved) is left alone: nothing is
    written or posted.

    Args:
        gateway: the running gateway.
        labels: the group's labels.
        name: who acknowledges.
        via: where (``link`` or ``console``), for the history.
        post: a later acknowledgement tells the group too.

    Raises:
        StoreUnavailableError: the store did not answer; try again.
    """
    store = gateway.store
    gid = group_id(labels)
    group = await store.get_group(gid)
    if group is None:
        return Acknowledgement(Acknowledged.NOT_OPEN)
    now = gateway.clock()
    names = _with_name(group.acknowledged_by, name)
    outcome = await store.acknowledge_group(gid, by=names, now=now)
    if outcome is Acknowledged.NOT_OPEN:  # it resolved meanwhile
        return Acknowledgement(outcome)
    first = outcome is Acknowledged.FIRST
    title = ack_title(name, labels, first=first)
    detail = {"action": "acknowledge", "by": name, "at": now, "via": via, "first": first,
              "acknowledged_by": names}  # fmt: skip
    entry = HistoryEntry(
        id=f"ack-{int(now * 1000):x}-{secrets.token_hex(3)}", received_at=now, updated_at=now,
        source="action", status="firing", state="acknowledged", title=title,
        labels=tuple(labels), detail=detail,
    )  # fmt: skip
    await gateway.history.record(entry)
    posted = first or post
    if posted:
        await _post_line(gateway, entry.id, name, labels, now, again=not first)
    if first:
        gateway.escalator.wake()
    logger.info("%s via %s", title, via)
    return Acknowledgement(outcome, entry, posted, await acknowledgers(gateway, labels))


async def acknowledgers(
    gateway: Gateway, labels: Sequence[tuple[str, str]], since: float = 0.0
) -> tuple[tuple[str, float], ...]:
    """Who acknowledged the group named by ``labels``, and when, the first first, once each
    (from the history: the store keeps the names and the latest time only)."""
    # Not by state: the first one's follows its posted line (delivered once sent).
    query = HistoryQuery(since=since or None, source="action", labels=tuple(labels), limit=500)
    found = await gateway.history.history.search(query)
    ordered = sorted(
        # The search answers newest first: reversed, equal times keep their order too.
        (e for e in reversed(found) if tuple(e.labels) == tuple(labels)
         and e.detail.get("action") == "acknowledge"),
        key=lambda e: e.received_at,
    )  # fmt: skip
    seen: dict[str, float] = {}
    for e in ordered:
        seen.setdefault(str(e.detail.get("by", "")), float(e.detail.get("at", e.received_at)))
    return tuple(seen.items())


MAX_ACK_NAMES = 8
"""The most names an acknowledged group keeps (history keeps every acknowledgement)."""
_NAME_BYTES = 160
_GROUP_BYTES = 600
"""The bytes of the name and of the group's labels an acknowledgement line keeps (cut with a
marker, before escaping): the line stays well within every msgtype's limit."""


def _with_name(before: str | None, name: str) -> str:
    names = [n for n in (before or "").split(", ") if n]
    if name not in names and len(names) < MAX_ACK_NAMES:
        names.append(name)
    return ", ".join(names) or name


def ack_title(name: str, labels: Sequence[tuple[str, str]], *, first: bool = True) -> str:
    """The acknowledgement as one plain line (history, pages; escaped where it is shown)."""
    who = one_line(name, _NAME_BYTES)
    group = one_line(group_name(labels), _GROUP_BYTES)
    if first:
        return f"✅ 已认领 by {who} · {group}"
    return f"✅ 也认领 by {who} (acknowledged already) · {group}"


def ack_line(
    name: str, labels: Sequence[tuple[str, str]], syntax: Syntax, *, again: bool = False
) -> str:
    """The line posted to ``ack_bots``: one line, every untrusted value escaped for ``syntax``
    (no mention, tag, link or line break can come out of a name or a label value); ``again``:
    a later acknowledgement whose person chose to tell the group."""
    who = escape(one_line(name, _NAME_BYTES), syntax)
    group = escape(one_line(group_name(labels), _GROUP_BYTES), syntax)
    if again:
        return f"✅ 也认领 by {who} (also acknowledged) · {group}"
    return f"✅ 已认领 by {who} · {group}"


async def silence(
    gateway: Gateway,
    labels: Sequence[tuple[str, str]],
    alertmanager: Alertmanager,
    name: str,
    choice: str,
    *,
    via: str,
) -> Silence:
    """Silence the group named by ``labels`` in the configured ``alertmanager`` for ``choice``
    (1h, 4h, 24h); its escalation and reminders stop.

    Raises:
        ValueError: ``choice`` is not one of :data:`~.links.SILENCE_CHOICES`.
        SilenceError: Alertmanager could not be reached or refused it (logged here, with the
            start of its answer; the error's message quotes none of it).
        StoreUnavailableError: the silence was made, but the store did not record it.
    """
    seconds = SILENCE_CHOICES.get(choice)
    if seconds is None:
        raise ValueError(f"a silence lasts {', '.join(SILENCE_CHOICES)}, not {choice!r}")
    try:
        made = await create_silence(
            alertmanager, labels, seconds=seconds, created_by=name,
            comment=f"wecom-bot {via}: silenced {choice} by {name}",
        )  # fmt: skip
    except SilenceError as exc:
        logger.warning(
            "silence for %s at alertmanager %s (%s) failed: %s; answer: %r",
            group_name(labels), alertmanager.name, mask_url(alertmanager.url), exc,
            redact(exc.detail, *alertmanager.secrets),
        )  # fmt: skip
        raise
    logger.info("silence %s created at alertmanager %s by %s via %s for %s (%s)", made.id,
                alertmanager.name, name, via, group_name(labels), choice)  # fmt: skip
    await gateway.store.acknowledge_group(
        group_id(labels), by=name, silenced_until=made.ends_at.timestamp(), now=gateway.clock()
    )
    gateway.escalator.wake()
    return made


async def _post_line(
    gateway: Gateway,
    notification_id: str,
    name: str,
    labels: Sequence[tuple[str, str]],
    now: float,
    *,
    again: bool = False,
) -> None:
    """Queue the acknowledgement line for every ``ack_bots`` bot, in the bot's msgtype."""
    bots = list(gateway.config.actions.ack_bots)
    if not bots:
        return
    runtime = gateway.runtime
    messages: list[NewMessage] = []
    by_syntax: dict[str, list[dict[str, Any]]] = {}
    for bot in bots:
        syntax = gateway.config.bots[bot].msgtype
        payloads = by_syntax.get(syntax)
        if payloads is None:
            line = ack_line(name, labels, syntax, again=again)
            payloads = runtime.renderer.compose("acknowledge", line, msgtype=syntax).payloads
            by_syntax[syntax] = payloads
        messages += [
            NewMessage(bot=bot, payload=p, notification_id=notification_id,
                       priority=Priority.ACTION)
            for p in payloads
        ]  # fmt: skip
    await gateway.store.enqueue(messages, now=now)
    runtime.notify(bots)
