"""Request bodies read within a size and a time, and within a budget shared by every request:
nothing clients send can hold memory or a connection without bound.

:func:`read_body` is the one reader: it stops at the cap (a ``Content-Length`` over it is
refused unread) and at a deadline for the whole body. The inbound webhooks call it directly
(:mod:`wecom_bot.gateway.intake.endpoints`); :class:`CappedBodies` puts every other request's body
through it before FastAPI reads it (a JSON body's lone surrogates replaced, see
:mod:`.surrogates`).

:class:`BodyBudget` bounds the bytes of bodies held at once across all requests
(``server.max_inflight_body_bytes``). A body that does not fit waits its turn, unread (the
server stops reading a connection whose request waits), and after ``server.body_timeout`` of
waiting gets 503: a sender retries a 5xx, while Alertmanager drops a notification answered
4xx, so a body within ``max_body_bytes`` is never refused for size because others were in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...exposure import Refusal
from ..surrogates import without_surrogates

__all__ = [
    "BodyBudget",
    "BodyBusy",
    "BodyTimeout",
    "CappedBodies",
    "Reservation",
    "read_body",
    "too_busy",
    "too_large",
    "too_slow",
]

_FIRST_STEP = 64 * 1024
"""The first reservation of a body of unknown length (chunked); it doubles as it grows."""


class BodyTimeout(Exception):
    """The client did not send the whole body within the deadline."""


class BodyBusy(Exception):
    """The body waited ``server.body_timeout`` for room in the budget and got none."""


class BodyBudget:
    """Bytes of request bodies held at once, shared by every request, granted first come
    first served.

    Args:
        limit: the budget in bytes, read at each grant so a reloaded configuration applies.
    """

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self.held = 0
        """Bytes granted and not yet given back."""
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def limit(self) -> int:
        """The budget in bytes, as configured now."""
        return self._limit()

    @property
    def waiting(self) -> int:
        """Requests waiting for room."""
        return len(self._waiting)

    async def take(self, size: int) -> None:
        """Wait until ``size`` more bytes fit (a size over the whole budget waits for an empty
        one), then hold them; cancelling the wait holds nothing."""
        if not self._waiting and self._fits(size):
            self.held += size
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, granted)
        self._waiting.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.give(size)  # granted while being cancelled: hand it on
            else:
                with contextlib.suppress(ValueError):  # a grant may have passed it over
                    self._waiting.remove(entry)
                self._grant()  # the head may have been the one that did not fit
            raise

    def give(self, size: int) -> None:
        """Give back ``size`` bytes taken earlier."""
        self.held = max(0, self.held - size)
        self._grant()

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self._limit()

    def _grant(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, granted = self._waiting.popleft()
            if not granted.done():
                self.held += size
                granted.set_result(None)


class Reservation:
    """One request's share of a :class:`BodyBudget`; :meth:`close` gives it back.

    Attributes:
        held: bytes this request holds.
        waiting: whether it is waiting for room right now.
    """

    def __init__(self, budget: BodyBudget | None) -> None:
        self.budget = budget
        self.held = 0
        self.waiting = False

    async def grow(self, size: int) -> None:
        """Hold at least ``size`` bytes, waiting for room when the budget is spent."""
        if self.budget is None or size <= self.held:
            return
        more = size - self.held
        self.waiting = True
        try:
            await self.budget.take(more)
        finally:
            self.waiting = False
        self.held += more

    def close(self) -> None:
        """Give every byte back (idempotent)."""
        if self.budget is not None and self.held:
            self.budget.give(self.held)
        self.held = 0


async def read_body(
    scope: Scope,
    receive_: Receive,
    cap: int,
    deadline: float | None = None,
    reservation: Reservation | None = None,
) -> bytearray | None:
    """The request body, or ``None`` as soon as it is known to exceed ``cap`` bytes.

    With a ``reservation``, the body's bytes are held in its budget first: the whole
    ``Content-Length`` before reading, or step by step for a body of unknown length. The
    reservation stays held after the call: close it once the body is no longer needed.

    Raises:
        BodyBusy: the body waited ``deadline`` seconds for room in the budget.
        BodyTimeout: the body did not arrive within ``deadline`` seconds (from when it had
            room).
    """
    length: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit():
                length = int(value)
                if length > cap:
                    return None
            break
    if reservation is not None and length is not None:
        try:
            async with asyncio.timeout(deadline):
                await reservation.grow(length)
        except TimeoutError:
            raise BodyBusy from None
    try:
        async with asyncio.timeout(deadline):
            return await _read(receive_, cap, length, reservation)
    except TimeoutError:
        if reservation is not None and reservation.waiting:
            raise BodyBusy from None
        raise BodyTimeout from None


async def _read(
    receive_: Receive, cap: int, length: int | None, reservation: Reservation | None
) -> bytearray | None:
    # One buffer of the announced size, filled in place: no list of chunks joined into a
    # second copy of a large body.
    buffer = bytearray(length or 0)
    filled = 0
    while True:
        message: Message = await receive_()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        end = filled + len(chunk)
        if end > cap:
            return None
        if reservation is not None and length is None and end > reservation.held:
            await reservation.grow(min(cap, max(end, 2 * reservation.held, _FIRST_STEP)))
        if end <= len(buffer):
            buffer[filled:end] = chunk
        else:
            buffer[filled:] = chunk
        filled = end
        if not message.get("more_body", False):
            break
    if filled < len(buffer):
        del buffer[filled:]
    return buffer


def too_large(cap: int, setting: str) -> Refusal:
    """The 413 answer for a body over ``cap`` bytes."""
    return Refusal(413, f"the body is larger than {setting} ({cap} bytes)", "too_large")


def too_slow(deadline: float) -> Refusal:
    """The 408 answer for a body that did not arrive in time."""
    return Refusal(
        408, f"the body did not arrive within server.body_timeout ({deadline:g} s)", "timeout"
    )


def too_busy(deadline: float) -> Refusal:
    """The 503 answer for a body that found no room in ``server.max_inflight_body_bytes``."""
    return Refusal(
        503,
        "too many request bodies in flight (server.max_inflight_body_bytes); waited "
        f"{deadline:g} s, retry",
        "busy",
    )


class CappedBodies:
    """ASGI middleware: reads each request's body within the limits, then hands it on.

    Args:
        app: the app to call.
        limits: returns ``(cap in bytes, deadline in seconds)``, read per request so a
            reloaded configuration applies.
        budget: returns the budget request bodies are held in (``None``: none).
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: Callable[[Scope], tuple[int, float]],
        budget: Callable[[Scope], BodyBudget | None] = lambda scope: None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        cap, deadline = self.limits(scope)
        reservation = Reservation(self.budget(scope))
        try:
            try:
                body = await read_body(scope, receive, cap, deadline, reservation)
            except BodyBusy:
                await too_busy(deadline)(scope, receive, send)
                return
            except BodyTimeout:
                await too_slow(deadline)(scope, receive, send)
                return
            if body is None:
                await too_large(cap, "server.max_api_body_bytes")(scope, receive, send)
                return
            delivered = False
            data = without_surrogates(bytes(body))  # see .surrogates
            del body

            async def replay() -> Message:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": data, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            reservation.close()
