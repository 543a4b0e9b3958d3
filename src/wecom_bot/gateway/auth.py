"""Inbound authentication: a bearer token or basic credentials, on every path but the probes.

:class:`Authentication` guards what FastAPI serves (console, metrics, reload); the inbound
webhook endpoints, answered before FastAPI's stack (:mod:`wecom_bot.gateway.intake.endpoints`),
call :func:`authorized` and :func:`refuse_unauthorized` themselves.
"""

from __future__ import annotations

import base64
import hmac
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import GatewayConfig

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["OPEN_PATHS", "Authentication", "authorized", "refuse_unauthorized", "source_of"]

OPEN_PATHS = ("/healthz", "/readyz")
OPEN_PREFIX = "/act/"
"""Paths answered without credentials (load balancers and orchestrators probe them)."""


def source_of(path: str) -> str:
    """The ``source`` label of a request path (for the rejection counter)."""
    head = path.strip("/").split("/", 1)[0]
    return {"alertmanager": "alertmanager", "grafana": "grafana", "webhook": "generic"}.get(
        head, "other"
    )


def authorized(config: GatewayConfig, headers: Headers) -> bool:
    """Whether the request's ``Authorization`` header satisfies ``config.auth``."""
    token = config.auth.token()
    basic = config.auth.basic()
    if token is None and basic is None:
        return True
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if token is not None and scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if basic is not None and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), basic[0].encode()) & hmac.compare_digest(
            password.encode(), basic[1].encode()
        )
    return False


async def refuse_unauthorized(gateway: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 401 with both challenges, counted as a rejection."""
    gateway.metrics.rejected.labels(source_of(scope["path"]), "auth").inc()
    refused = JSONResponse({"error": "authentication required"}, status_code=401)
    # One challenge per header: browsers (the console) pick Basic out of its own header,
    # not out of a comma-joined list that starts with a scheme they do not speak.
    refused.headers.append("WWW-Authenticate", 'Basic realm="wecom-bot", charset="UTF-8"')
    refused.headers.append("WWW-Authenticate", 'Bearer realm="wecom-bot"')
    await refused(scope, receive, send)


class Authentication:
    """Refuses requests without valid credentials (all paths but the probes).

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every request in
    extra tasks and streams.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in OPEN_PATHS
            # Action pages are for phones in the group: the signed token is their credential.
            or scope["path"].startswith(OPEN_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        gateway: Gateway = scope["app"].state.gateway
        if authorized(gateway.config, Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        await refuse_unauthorized(gateway, scope, receive, send)
