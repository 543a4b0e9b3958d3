"""Who may reach a server through a browser: the ``Host`` it was asked for, the site a
state-changing request came from, and the type of the body it carries.

A web page can make the browser send requests to a server on the operator's machine or
network, with the credentials the browser holds for it (basic auth included):

- a cross-site page can *send* (not read) a form or a ``text/plain`` post, or a ``fetch`` with
  ``mode: "no-cors"``; the browser marks it with ``Origin`` and ``Sec-Fetch-Site``;
- a page whose name is rebound to the server's address (DNS rebinding) is *same-origin* for
  the browser and can read answers too; the browser then sends that name as ``Host``.

:class:`Exposure` refuses both, before anything else runs: a ``Host`` that is not an allowed
name (421), a state-changing request that a browser marks as coming from another site (403),
and, when asked, a state-changing body that is not JSON (415), which a cross-site page cannot
send without a CORS preflight that this server never grants. Servers and scripts (Alertmanager,
Grafana, curl) send no ``Origin`` and name the server as it is configured, so they pass.

An IP literal is always an allowed ``Host``: a rebinding page is reached through a name, and a
page loaded from an address is that address's own origin. The gateway and the emulator's
control endpoints use it (:class:`ExposureGuard` is the middleware form).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ANY_HOST",
    "LOOPBACK_NAMES",
    "Exposure",
    "ExposureGuard",
    "Refusal",
    "default_hosts",
    "is_loopback",
    "is_wildcard",
]

ANY_HOST = "*"
"""The allowed-hosts entry that accepts any ``Host`` (a server behind a proxy that checks it)."""

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Names every server accepts by default."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE = frozenset({"same-origin", "none"})
_SHOWN = 80


def is_wildcard(address: str) -> bool:
    """Whether a listen address means every interface (``0.0.0.0``, ``::``, empty)."""
    return address.strip("[]") in ("", "0.0.0.0", "::")


def is_loopback(address: str) -> bool:
    """Whether a listen address is reachable from this machine only."""
    name = address.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_hosts(listen_host: str) -> tuple[str, ...]:
    """The names accepted when none are configured: loopback, and the listen address unless it
    is every interface (then the operator lists the names clients use)."""
    names = list(LOOPBACK_NAMES)
    if not is_wildcard(listen_host):
        names.append(listen_host)
    return tuple(names)


def _hostname(host: str) -> str:
    """``Host`` without its port, lower case, IPv6 brackets removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Refusal:
    """A refused request: the status and a JSON body that says what to change."""

    status: int
    message: str
    reason: str

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer it as plain ASGI (and close the connection: its body was not read)."""
        body = json.dumps({"error": self.message, "reason": self.reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Exposure:
    """The checks, decided from the request's headers alone.

    Args:
        allowed_hosts: names a request may give as ``Host`` (any port); ``*`` accepts any.
        hosts_hint: where the operator adds a name (shown in the 421 answer).
        open_paths: paths answered without any check (probes).
        open_prefixes: path prefixes answered without any check (the emulator's WeCom API).
        require_json: refuse a state-changing request whose body is not declared JSON.
        form_prefixes: path prefixes of pages that post their own forms and check where a post
            came from themselves (a CSRF token, ``Sec-Fetch-Site``), answering a person in
            HTML: only the ``Host`` is checked here.
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        *,
        hosts_hint: str,
        open_paths: Iterable[str] = (),
        open_prefixes: Iterable[str] = (),
        require_json: bool = True,
        form_prefixes: Iterable[str] = (),
    ) -> None:
        names = {_hostname(h) if h != ANY_HOST else h for h in allowed_hosts if h.strip()}
        self.any_host = ANY_HOST in names
        self.allowed_hosts = frozenset(names - {ANY_HOST})
        self.hosts_hint = hosts_hint
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)
        self.require_json = require_json
        self.form_prefixes = tuple(form_prefixes)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (a ``Host`` header value) names this server."""
        if self.any_host:
            return True
        name = _hostname(host)
        return name in self.allowed_hosts or _is_ip(name)

    def refusal(self, scope: Scope) -> Refusal | None:
        """Why this request is refused, or ``None`` when it may go on."""
        path: str = scope["path"]
        if path in self.open_paths or path.startswith(self.open_prefixes):
            return None
        host = origin = fetch_site = content_type = ""
        has_body = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1").strip().lower()
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                has_body = value.strip() not in (b"", b"0")
            elif name == b"transfer-encoding":
                has_body = True
        if not self.host_allowed(host):
            shown = host[:_SHOWN] if host else "(none)"
            return Refusal(
                421,
                f"Host {shown!r} is not a name of this server; "
                f"if clients reach it by that name, {self.hosts_hint}",
                "host",
            )
        if scope["method"] in _SAFE_METHODS or path.startswith(self.form_prefixes):
            return None
        if not self._same_site(fetch_site, origin, host):
            return Refusal(
                403,
                "cross-site request refused: a page of another site cannot change state here",
                "cross_site",
            )
        if self.require_json and (has_body or content_type) and not _is_json(content_type):
            return Refusal(
                415,
                "the body must be JSON: send it with Content-Type: application/json",
                "not_json",
            )
        return None

    @staticmethod
    def _same_site(fetch_site: str, origin: str, host: str) -> bool:
        # Sec-Fetch-Site is set by the browser alone (a page cannot forge it); without it,
        # an Origin must name the host the request was sent to.
        if fetch_site:
            return fetch_site in _SAME_SITE
        if not origin:
            return True
        scheme, sep, rest = origin.strip().lower().partition("://")
        return bool(sep) and scheme in ("http", "https") and rest == host.strip().lower()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class ExposureGuard:
    """ASGI middleware that answers every refused request before the app sees it."""

    def __init__(self, app: ASGIApp, exposure: Exposure) -> None:
        self.app = app
        self.exposure = exposure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.exposure.refusal(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)
