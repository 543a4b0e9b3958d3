"""Request bodies read within a size and a time: nothing a client sends can hold memory or a
connection without bound.

:func:`read_body` is the one reader: it stops at the cap (a ``Content-Length`` over it is
refused unread) and at a deadline for the whole body. The inbound webhooks call it directly
(:mod:`wecom_bot.gateway.endpoints`); :class:`CappedBodies` puts every other request's body
through it before FastAPI reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..exposure import Refusal

__all__ = ["BodyTimeout", "CappedBodies", "read_body", "too_large", "too_slow"]


class BodyTimeout(Exception):
    """The client did not send the whole body within the deadline."""


async def read_body(
    scope: Scope, receive_: Receive, cap: int, deadline: float | None = None
) -> bytes | None:
    """The request body, or ``None`` as soon as it is known to exceed ``cap`` bytes.

    Raises:
        BodyTimeout: the body did not arrive within ``deadline`` seconds.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > cap:
                return None
            break
    try:
        async with asyncio.timeout(deadline):
            return await _read(receive_, cap)
    except TimeoutError:
        raise BodyTimeout from None


async def _read(receive_: Receive, cap: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive_()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def too_large(cap: int, setting: str) -> Refusal:
    """The 413 answer for a body over ``cap`` bytes."""
    return Refusal(413, f"the body is larger than {setting} ({cap} bytes)", "too_large")


def too_slow(deadline: float) -> Refusal:
    """The 408 answer for a body that did not arrive in time."""
    return Refusal(
        408, f"the body did not arrive within server.body_timeout ({deadline:g} s)", "timeout"
    )


class CappedBodies:
    """ASGI middleware: reads each request's body within the limits, then hands it on.

    Args:
        app: the app to call.
        limits: returns ``(cap in bytes, deadline in seconds)``, read per request so a
            reloaded configuration applies.
    """

    def __init__(self, app: ASGIApp, limits: Callable[[Scope], tuple[int, float]]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        cap, deadline = self.limits(scope)
        try:
            body = await read_body(scope, receive, cap, deadline)
        except BodyTimeout:
            await too_slow(deadline)(scope, receive, send)
            return
        if body is None:
            await too_large(cap, "server.max_api_body_bytes")(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
