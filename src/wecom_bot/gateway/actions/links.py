"""The action links an alert message carries, within a byte budget.

A notification from Alertmanager that is firing gets links for its alert group (its
``groupLabels``, else its common labels): acknowledge, silence and details. Each is a signed
token under ``{external_url}/act/``, naming the configured Alertmanager the group's
``externalURL`` selects (:mod:`.registry`; none: the silence page says so). The built-in
templates show at most :data:`LINK_BUDGET` bytes of them; when the group's labels make the
links longer, the details link goes first and then all of them (the message itself matters
more). Labels a link cannot carry (a text over 255 bytes, or not UTF-8) mean no links.

The console's playground shows links of a preview linker (:meth:`ActionLinker.preview`): as
long as real ones, but signed with a key derived from the secret for previews only, they act
on nothing (the page says they are a preview).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ... import limits
from ..model import Notification
from .registry import AlertmanagerRegistry
from .tokens import ActionToken, Kind, packable, preview_secret, sign

LINK_BUDGET = 360
"""Bytes the built-in templates may add to a message for its action links: all three for a
one-label group named by an Alertmanager name of up to about 16 characters (a name costs about
4 bytes a character across the three links)."""

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
        alertmanagers: the configured Alertmanagers (an alert's ``externalURL`` selects one
            of them; ``None``: none is configured).
        ttl: seconds a link stays good.
        clock: Unix time.
        preview: this linker writes inert preview links (see :meth:`preview`).
    """

    def __init__(
        self,
        external_url: str,
        secret: bytes,
        *,
        alertmanagers: AlertmanagerRegistry | None = None,
        ttl: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
        preview: bool = False,
    ) -> None:
        self.external_url = external_url.rstrip("/")
        self.base = self.external_url + "/act/"
        self.secret = secret
        self.ttl = ttl
        self.clock = clock
        self.alertmanagers = alertmanagers or AlertmanagerRegistry()
        self.is_preview = preview

    def preview(self) -> ActionLinker:
        """A linker for previews (the console's playground): the same links in shape and
        length (what a preview measures), signed with :func:`~.tokens.preview_secret`, so that
        they cannot act on any group, whatever labels were typed; their page says so."""
        return ActionLinker(
            self.external_url, preview_secret(self.secret), alertmanagers=self.alertmanagers,
            ttl=self.ttl, clock=self.clock, preview=True,
        )  # fmt: skip

    def link(self, kind: Kind, matchers: Mapping[str, str], am: str) -> str:
        """One signed link.

        Raises:
            ValueError: a label cannot be in a link (see :func:`~.tokens.packable`).
        """
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
        at ``external_url`` (``""``: the default one), or ``None`` (no labels, a label a link
        cannot carry, or links that would not fit the budget). Never raises for any label."""
        if not matchers or not all(packable(k) and packable(v) for k, v in matchers.items()):
            return None
        # Every label byte is in each link about 4/3 times over: past the budget, no links.
        if sum(limits.utf8_len(k) + limits.utf8_len(v) for k, v in matchers.items()) > LINK_BUDGET:
            return None
        # The selection is by configured URL only: the sender's URL itself is never used.
        selected = self.alertmanagers.select(external_url, log=not self.is_preview)
        am = selected.name if selected is not None else ""
        ack, silence, details = (self.link(k, matchers, am) for k in ("a", "s", "d"))

        def cost(*urls: str) -> int:
            return _LINE_OVERHEAD + sum(limits.utf8_len(u) + _PER_LINK_OVERHEAD for u in urls)

        if cost(ack, silence, details) <= LINK_BUDGET:
            return ActionLinks(ack, silence, details)
        if cost(ack, silence) <= LINK_BUDGET:
            return ActionLinks(ack, silence, "")
        return None
