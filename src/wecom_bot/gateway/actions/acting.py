"""What acknowledging or silencing an alert group does, whoever asks: an ``/act/`` page
(a person in the group) or the console (an operator).

Acknowledging cancels the group's escalation and reminders (the store records who), writes a
history entry ``✅ 已认领 by …`` and posts that line to ``actions.ack_bots``. Silencing creates
the silence in Alertmanager, then counts as an acknowledgement until the silence ends.
Neither touches a webhook key.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...masking import mask_url, redact
from ...store import NewMessage
from ...store.history import HistoryEntry
from .alertmanager import Silence, SilenceError, create_silence
from .groups import group_id
from .links import SILENCE_CHOICES
from .registry import Alertmanager

if TYPE_CHECKING:
    from ..app import Gateway

__all__ = ["MAX_NAME_CHARS", "acknowledge", "alertmanager_for", "group_name", "silence"]

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


async def acknowledge(
    gateway: Gateway, labels: Sequence[tuple[str, str]], name: str, *, via: str
) -> HistoryEntry:
    """Acknowledge the group named by ``labels`` for ``name``.

    Args:
        gateway: the running gateway.
        labels: the group's labels.
        name: who acknowledges.
        via: where (``link`` or ``console``), for the history.

    Returns:
        The history entry written.

    Raises:
        StoreUnavailableError: the store did not answer; try again.
    """
    now = gateway.clock()
    line = f"✅ 已认领 by {name} · {group_name(labels)}"
    await gateway.store.acknowledge_group(group_id(labels), by=name, now=now)
    entry = HistoryEntry(
        id=f"ack-{int(now * 1000):x}-{secrets.token_hex(3)}", received_at=now, updated_at=now,
        source="action", status="firing", state="acknowledged", title=line,
        labels=tuple(labels), detail={"action": "acknowledge", "by": name, "at": now, "via": via},
    )  # fmt: skip
    await gateway.history.record(entry)
    await _post_line(gateway, entry.id, line, now)
    gateway.escalator.wake()
    logger.info("acknowledged by %s via %s: %s", name, via, group_name(labels))
    return entry


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


async def _post_line(gateway: Gateway, notification_id: str, line: str, now: float) -> None:
    bots = list(gateway.config.actions.ack_bots)
    if not bots:
        return
    payload: dict[str, Any] = {"msgtype": "text", "text": {"content": line}}
    await gateway.store.enqueue(
        [NewMessage(bot=bot, payload=payload, notification_id=notification_id) for bot in bots],
        now=now,
    )
    gateway.runtime.notify(bots)
