"""Which addresses a graph may be fetched from, and fetching them within bounds.

``generatorURL`` and ``imageURL`` are written by whoever sends the notification, so they are
never requested as given: :class:`Allowlist` finds the configured entry a URL falls under
(the same scheme, host and port, its path under the entry's path, no credentials, no
``.``/``..`` segments), and the request goes to an address built from that entry.
:func:`bounded_get` then reads the answer with a deadline and a byte cap and follows no
redirect (a 3xx is a failure: a redirect could point anywhere); it asks for the identity
encoding and refuses a compressed answer, so the cap counts bytes as they arrive.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from ...masking import mask_url
from ..config import GraphSourceConfig

__all__ = ["Allowlist", "GraphFetchError", "Source", "bounded_get", "origin_of"]

logger = logging.getLogger("wecom_bot.gateway.graphs")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class GraphFetchError(Exception):
    """A query or an image fetch failed (the message names no secret)."""


@dataclass(frozen=True)
class Source:
    """A configured Prometheus or Grafana that a URL fell under.

    Attributes:
        field: where it is configured (``graphs.prometheus[0]``), for log lines.
        config: its entry.
        relative: the path of the URL below the entry's base (``/graph``), its query apart.
        query: the URL's query string.
    """

    field: str
    config: GraphSourceConfig
    relative: str
    query: str

    def address(self, path: str | None = None) -> str:
        """Where to send the request: the entry's ``url`` with ``path`` (the URL's own
        relative path and query when omitted)."""
        if path is not None:
            return self.config.url + path
        return self.config.url + self.relative + (f"?{self.query}" if self.query else "")

    def auth(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        """The credentials to send, read from the environment now.

        Raises:
            SecretNotSetError: a variable is not set.
        """
        basic, token = self.config.credentials(self.field)
        if basic is not None:
            return httpx.BasicAuth(*basic), {}
        if token is not None:
            return None, {"Authorization": f"Bearer {token}"}
        return None, {}


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url`` (no credentials, path or query), for log lines."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    return mask_url(f"{parts.scheme or '?'}://{host}{port}")[:200]


class Allowlist:
    """The configured entries of one kind (``prometheus`` or ``grafana``)."""

    def __init__(self, kind: str, entries: Sequence[GraphSourceConfig]) -> None:
        self.kind = kind
        self.entries = tuple(entries)

    def match(self, url: str) -> Source | None:
        """The entry ``url`` falls under, or ``None`` (then it must not be requested)."""
        candidate = _parsed(url)
        if candidate is None:
            return None
        for index, entry in enumerate(self.entries):
            for base in (entry.url, *entry.external_urls):
                relative = _under(candidate, urlsplit(base))
                if relative is not None:
                    field = f"graphs.{self.kind}[{index}]"
                    return Source(field, entry, relative, candidate.query)
        return None


def _parsed(url: str) -> SplitResult | None:
    if not url or len(url) > 64 * 1024 or _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    segments = unquote(parts.path).split("/")
    if any(s in (".", "..") for s in segments) or "%2f" in parts.path.lower():
        return None
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS[parts.scheme.lower()]


def _under(candidate: SplitResult, base: SplitResult) -> str | None:
    """The path of ``candidate`` below ``base``, or ``None`` when it is not under it."""
    if candidate.scheme.lower() != base.scheme.lower():
        return None
    if (candidate.hostname or "").lower().rstrip(".") != (base.hostname or "").lower():
        return None
    if _port(candidate) != _port(base):
        return None
    prefix = base.path.rstrip("/")
    path = candidate.path or "/"
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return path[len(prefix) :]


async def bounded_get(
    client: httpx.AsyncClient,
    source: Source,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    max_bytes: int,
    timeout: float,
) -> bytes:
    """GET ``url`` (an address built from ``source``) and return the body of a 200 answer.

    Raises:
        GraphFetchError: no answer within ``timeout`` (connection, headers and body in all),
            another status (a redirect included: none is followed), a compressed body, or a
            body over ``max_bytes``.
        SecretNotSetError: the entry's credentials are not set.
    """
    auth, headers = source.auth()
    where = origin_of(url)
    try:
        async with asyncio.timeout(timeout):
            # identity: the byte cap counts what is read, not a compressed stand-in
            headers = {**headers, "Accept-Encoding": "identity"}
            request = client.build_request("GET", url, params=params, headers=headers)
            response = await client.send(request, auth=auth, stream=True, follow_redirects=False)
            try:
                if response.status_code != 200:
                    raise GraphFetchError(f"{where} answered HTTP {response.status_code}")
                # httpx inflates a compressed body a read at a time, each read whole: a small
                # gzip answer would be decoded to many times the cap before it is counted.
                encoding = response.headers.get("content-encoding", "").strip().lower()
                if encoding not in ("", "identity"):
                    raise GraphFetchError(
                        f"{where} answered with Content-Encoding {encoding[:40]!r}, not the "
                        "identity asked for"
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise GraphFetchError(f"{where}: the answer is over {max_bytes} bytes")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise GraphFetchError(f"{where}: the answer is over {max_bytes} bytes")
            finally:
                await response.aclose()
    except TimeoutError:
        raise GraphFetchError(f"{where} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise GraphFetchError(f"{where}: {type(exc).__name__}") from None
    return bytes(body)
