"""The action links an alert message carries, within a byte budget.

A notification from Alertmanager that is firing gets links for its alert group (its
``groupLabels``, else its common labels): acknowledge, silence and details. Each is a signed
token under ``{external_url}/act/``. The built-in templates show at most
:data:`LINK_BUDGET` bytes of them; when the group's labels make the links longer, the details
link goes first and then all of them (the message itself matters more).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ... import limits
from ..model import Notification
from .tokens import ActionToken, Kind, alertmanager_id, sign

LINK_BUDGET = 300
"""Bytes the built-in templates may add to a message for its action links."""

SILENCE_CHOICES: dict[str, int] = {"1h": 3600, "4h": 4 * 3600, "24h": 24 * 3600}
"""The silence durations a person can pick (``?d=`` on a silence link)."""

# What a built-in template writes around one link at most ("[静默](", ") · ", "静默：", "\n").
_PER_LINK_OVERHEAD = 14
_LINE_OVERHEAD = 10


@dataclass(frozen=True, slots=True)
class ActionLinks:
    """The links of one message (``actions`` in templates); an empty string: left out.

    Attributes:
        ack: acknowledge the group.
        silence: silence the group (the page offers 1 h, 4 h, 24 h).
        silence_1h / silence_4h / silence_24h: the same page with that duration chosen.
        details: what the group is, and a link to it in Alertmanager.
    """

    ack: str
    silence: str
    details: str

    @property
    def silence_1h(self) -> str:
        """The silence link with 1 h chosen."""
        return f"{self.silence}?d=1h" if self.silence else ""

    @property
    def silence_4h(self) -> str:
        """The silence link with 4 h chosen."""
        return f"{self.silence}?d=4h" if self.silence else ""

    @property
    def silence_24h(self) -> str:
        """The silence link with 24 h chosen."""
        return f"{self.silence}?d=24h" if self.silence else ""


def group_matchers(notification: Notification) -> dict[str, str]:
    """The labels that name a notification's alert group (what a silence matches)."""
    if notification.group_labels:
        return dict(notification.group_labels)
    if notification.common_labels:
        return dict(notification.common_labels)
    if len(notification.alerts) == 1:
        return dict(notification.alerts[0].labels)
    return {}


class ActionLinker:
    """Writes signed action links for notifications.

    Args:
        external_url: how people reach the gateway (``https://gw.example.com``).
        secret: the HMAC secret.
        alertmanager_url: the configured Alertmanager, if any (used when a notification has
            no ``externalURL``).
        ttl: seconds a link stays good.
        clock: Unix time.
    """

    def __init__(
        self,
        external_url: str,
        secret: bytes,
        *,
        alertmanager_url: str | None = None,
        ttl: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base = external_url.rstrip("/") + "/act/"
        self.secret = secret
        self.ttl = ttl
        self.clock = clock
        self.alertmanagers: dict[str, str] = {}
        """Alertmanager URLs by the id tokens carry (the configured one, and those seen)."""
        self.default_alertmanager = ""
        if alertmanager_url:
            self.default_alertmanager = self.remember(alertmanager_url)

    def remember(self, url: str) -> str:
        """Note an Alertmanager URL; returns its id."""
        url = url.rstrip("/")
        ident = alertmanager_id(url)
        self.alertmanagers[ident] = url
        return ident

    def link(self, kind: Kind, matchers: Mapping[str, str], am: str) -> str:
        """One signed link."""
        expires = int(self.clock() + self.ttl)
        return self.base + sign(
            ActionToken(kind, tuple(matchers.items()), expires, am), self.secret
        )

    def __call__(self, notification: Notification) -> ActionLinks | None:
        """The links for ``notification``, or ``None`` (not a firing Alertmanager group, or
        its links would not fit the budget)."""
        if notification.source != "alertmanager" or notification.status != "firing":
            return None
        return self.for_group(group_matchers(notification), notification.external_url)

    def for_group(self, matchers: Mapping[str, str], external_url: str) -> ActionLinks | None:
        """The links for an alert group named by ``matchers`` that came from the Alertmanager
        at ``external_url`` (``""``: the configured one), or ``None`` (no Alertmanager is
        known for it, or its links would not fit the budget)."""
        # Every label byte is in each link about 4/3 times over: past the budget, no links.
        if not matchers or sum(limits.utf8_len(k + v) for k, v in matchers.items()) > LINK_BUDGET:
            return None
        am = self.default_alertmanager
        if external_url.startswith(("http://", "https://")):
            am = self.remember(external_url)
        if not am:
            return None
        ack, silence, details = (self.link(k, matchers, am) for k in ("a", "s", "d"))

        def cost(*urls: str) -> int:
            return _LINE_OVERHEAD + sum(limits.utf8_len(u) + _PER_LINK_OVERHEAD for u in urls)

        if cost(ack, silence, details) <= LINK_BUDGET:
            return ActionLinks(ack, silence, details)
        if cost(ack, silence) <= LINK_BUDGET:
            return ActionLinks(ack, silence, "")
        return None
