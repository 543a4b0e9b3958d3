"""The Alertmanagers the gateway may create silences in: the configured ones, and only those.

An alert's ``externalURL`` is written by whoever sent the webhook, so it is never requested:
it only *selects* one of the configured Alertmanagers (``alertmanagers``, and
``actions.alertmanager_url`` as the entry ``default``) by scheme, host, port and path prefix.
A link names the selected one by its configured name. A URL that selects none is logged once
(a bounded memory of the URLs already logged, so that a sender inventing URLs cannot grow it).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ...masking import mask_url
from ..config import AlertmanagerConfig, GatewayConfig

__all__ = ["Alertmanager", "AlertmanagerRegistry", "normalized_url"]

logger = logging.getLogger("wecom_bot.gateway.actions")

URLKey = tuple[str, str, int, tuple[str, ...]]
"""A URL as it is compared: scheme, host, port, path segments."""

MAX_REMEMBERED_UNKNOWN = 256
"""Unknown ``externalURL`` values remembered as already logged (the oldest is forgotten)."""
_LOGGED_URL_CHARS = 200

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_url(url: str) -> URLKey:
    """``url`` as compared with others: lower-case scheme and host, the port (the scheme's
    default when none is given), the path's non-empty segments; userinfo, query and fragment
    left out.

    Raises:
        ValueError: not an http(s) URL with a host, or a bad port.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    port = parts.port or _DEFAULT_PORTS[scheme]
    segments = tuple(s for s in parts.path.split("/") if s)
    return scheme, parts.hostname.lower().rstrip("."), port, segments


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl().rstrip("/")


@dataclass(frozen=True, slots=True)
class Alertmanager:
    """One configured Alertmanager, its credentials read.

    Attributes:
        name: its configured name (what links carry).
        url: where its API is reached, without credentials.
        public_url: where people open it (its first ``external_urls``, else ``url``).
        basic: the basic-auth pair, if any.
        bearer: the bearer token, if any.
        timeout: seconds to wait for it.
    """

    name: str
    url: str
    public_url: str
    basic: tuple[str, str] | None = field(default=None, repr=False)
    bearer: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Its credentials, to mask in anything shown."""
        return tuple(s for s in ((self.basic or ("", ""))[1], self.bearer or "") if s)


class AlertmanagerRegistry:
    """The configured Alertmanagers, selected by name (a link) or by ``externalURL`` (an alert).

    Args:
        entries: the Alertmanagers with their URLs to match (``url`` and ``external_urls``).
        default: the name that serves an alert without ``externalURL`` (``None``: none does).
    """

    def __init__(
        self,
        entries: Sequence[tuple[Alertmanager, Sequence[str]]] = (),
        *,
        default: str | None = None,
    ) -> None:
        self._by_name = {am.name: am for am, _ in entries}
        self._prefixes: list[tuple[URLKey, Alertmanager]] = []
        for am, urls in entries:
            for url in urls:
                self._prefixes.append((normalized_url(url), am))
        # The longest path first: the most specific prefix selects.
        self._prefixes.sort(key=lambda p: len(p[0][3]), reverse=True)
        self.default = self._by_name.get(default) if default else None
        self._logged: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def from_config(
        cls, config: GatewayConfig, unresolved: dict[str, str] | None = None
    ) -> AlertmanagerRegistry:
        """The Alertmanagers of ``config``, their credentials read from the environment.

        Args:
            config: the configuration.
            unresolved: when given, a credential not set here is recorded (field -> why)
                instead of raising (``gateway check``).

        Raises:
            SecretNotSetError: a credential's variable or file is not set.
        """
        from ...errors import SecretNotSetError

        configured = config.alertmanager_entries()
        entries: list[tuple[Alertmanager, Sequence[str]]] = []
        for i, entry in enumerate(configured):
            where = f"alertmanagers[{i}]" if i < len(config.alertmanagers) else "actions"
            try:
                basic, bearer = entry.credentials(where)
            except SecretNotSetError as exc:
                if unresolved is None:
                    raise
                field_ = str(exc).partition(":")[0]
                unresolved[field_] = str(exc).removeprefix(f"{field_}: ")
                basic, bearer = None, None
            entries.append((_alertmanager(entry, basic, bearer), [entry.url, *entry.external_urls]))
        # Without externalURL: the short form's entry, else the only one there is.
        default = None
        if config.actions.alertmanager_url:
            default = configured[-1].name
        elif len(configured) == 1:
            default = configured[0].name
        return cls(entries, default=default)

    @property
    def names(self) -> list[str]:
        """The configured names."""
        return list(self._by_name)

    def get(self, name: str) -> Alertmanager | None:
        """The Alertmanager configured under ``name``, or ``None``."""
        return self._by_name.get(name)

    def select(self, external_url: str, *, log: bool = True) -> Alertmanager | None:
        """The configured Alertmanager an alert's ``externalURL`` names (``""``: the default
        one), or ``None``; ``log``: log a URL that selects none (once)."""
        if not external_url.strip():
            return self.default
        try:
            key = normalized_url(external_url)
        except ValueError:
            key = None
        if key is not None:
            for prefix, am in self._prefixes:
                if key[:3] == prefix[:3] and key[3][: len(prefix[3])] == prefix[3]:
                    return am
        if log:
            self._log_unknown(external_url)
        return None

    def _log_unknown(self, url: str) -> None:
        shown = mask_url(url[:_LOGGED_URL_CHARS])
        if shown in self._logged:
            self._logged.move_to_end(shown)
            return
        self._logged[shown] = None
        if len(self._logged) > MAX_REMEMBERED_UNKNOWN:
            self._logged.popitem(last=False)
        logger.warning(
            "an alert names the Alertmanager %r (its externalURL), which is not configured: "
            "it will not be asked to silence anything (add it to alertmanagers, as url or "
            "external_urls, to silence its alerts from links)",
            shown,
        )


def _alertmanager(
    entry: AlertmanagerConfig, basic: tuple[str, str] | None, bearer: str | None
) -> Alertmanager:
    url = _without_userinfo(entry.url)
    public = _without_userinfo(entry.external_urls[0]) if entry.external_urls else url
    return Alertmanager(entry.name, url, public, basic, bearer, entry.timeout)
