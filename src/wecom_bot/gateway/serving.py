"""How the gateway meets the network: which names reach it, who is warned, and the HTTP
server's bounds on slow and greedy clients.

- :func:`exposure_for`: the :class:`~wecom_bot.exposure.Exposure` of a configuration (the
  ``Host`` names it answers, cross-site and non-JSON state changes refused).
- :func:`unauthenticated_exposure`: the warning every start logs when the gateway listens
  beyond loopback with no ``auth``.
- :func:`server_config`: uvicorn's settings, with a protocol that cuts off a client that has
  not sent a request's headers within ``server.header_timeout`` (uvicorn waits forever for the
  first request of a connection) and that limits the connections one client address holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ..errors import ConfigError
from ..exposure import ANY_HOST, Exposure, default_hosts, is_loopback, is_wildcard
from .auth import OPEN_PATHS
from .config import GatewayConfig

__all__ = ["exposure_for", "server_config", "unauthenticated_exposure"]

ACTION_PAGES = "/act/"
"""Where the action pages post their confirmation forms (see :mod:`.actions.pages`)."""

H11_MAX_HEADER_BYTES = 64 * 1024
"""Largest request head (line and headers) the h11 parser buffers."""


def exposure_for(config: GatewayConfig) -> Exposure:
    """The gateway's exposure rules (the probes are exempt: orchestrators probe by address).

    Raises:
        ConfigError: the gateway listens on every interface and ``server.allowed_hosts`` is
            empty (which names would be right cannot be guessed).
    """
    hosts = config.server.allowed_hosts
    if not hosts and is_wildcard(config.listen_host):
        raise ConfigError(
            f"server.allowed_hosts: the gateway listens on {config.listen_host or 'every address'}"
            " (every interface): list the names senders and operators use to reach it, e.g. "
            f"[gateway.example.com], or [{ANY_HOST!r}] to accept any (only behind a proxy that "
            "checks Host); see docs/security.md"
        )
    names = list(hosts or default_hosts(config.listen_host))
    if config.external_url is not None:  # the name phones open action links by
        names.append(urlsplit(config.external_url).netloc)
    return Exposure(
        names,
        hosts_hint="add it to server.allowed_hosts in the gateway config",
        open_paths=OPEN_PATHS,
        form_prefixes=(ACTION_PAGES,),
    )


def unauthenticated_exposure(config: GatewayConfig) -> str | None:
    """A warning when the gateway listens beyond loopback with no inbound authentication."""
    auth = config.auth
    if is_loopback(config.listen_host) or auth.bearer_token or auth.bearer_token_env:
        return None
    if auth.username:
        return None
    return (
        f"the gateway listens on {config.listen_host or 'every address'} with no auth: anyone "
        "who can reach it can post into your groups and read the console; set auth "
        "(bearer_token_env or username/password_env), see docs/security.md"
    )


def server_config(app: Any, config: GatewayConfig, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for serving ``app`` with ``config.server``'s bounds."""
    server = config.server
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=bounded_protocol(server.header_timeout, server.max_connections_per_client),
        timeout_keep_alive=max(1, round(server.keep_alive)),
        limit_concurrency=server.max_connections,
        h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
        log_level="warning",
        # access_log off: request lines are noise at alert rates; errors are logged by the app.
        access_log=False,
        # proxy_headers off: nothing uses the client's address, and reading X-Forwarded-For
        # on every request costs the hot path.
        proxy_headers=False,
        timeout_graceful_shutdown=15,
    )


_BUSY = b"too many connections from this address\n"
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BUSY), _BUSY)
)


def bounded_protocol(header_timeout: float, per_client: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with a deadline for each request's head and a cap on the
    connections one client address holds; one class per server (it counts its own)."""
    counts: Counter[str] = Counter()

    class BoundedProtocol(AutoHTTPProtocol):  # type: ignore[valid-type,misc]
        _head_timer: asyncio.TimerHandle | None = None
        _served: Any = None
        _address: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            client = self.client
            address = str(client[0]) if client else ""
            if counts[address] >= per_client:
                transport.write(_REFUSED)  # type: ignore[attr-defined]
                transport.close()
                return
            counts[address] += 1
            self._address = address
            self._wait_for_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            if self._address is not None:
                counts[self._address] -= 1
                if counts[self._address] <= 0:
                    del counts[self._address]
                self._address = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # A new request cycle means its head arrived: its body has its own deadline.
            cycle = self.cycle
            if cycle is not None and cycle is not self._served:
                self._served = cycle
                self._stop_waiting()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._wait_for_head()

        def _wait_for_head(self) -> None:
            self._stop_waiting()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _stop_waiting(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            cycle = self.cycle
            if cycle is not None and cycle is not self._served:
                return  # pragma: no cover (a head completed between the check and the timer)
            if cycle is not None and not cycle.response_complete:
                return  # a request is being answered; its body has its own deadline
            if not self.transport.is_closing():
                self.transport.close()

    return BoundedProtocol
