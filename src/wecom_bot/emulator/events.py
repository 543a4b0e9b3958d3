"""Live events: an in-process fan-out of new entries, served as Server-Sent Events.

A stream first replays stored entries after the client's position (``Last-Event-ID`` or
``since_id``), then follows live ones, so a reconnecting ``EventSource`` misses nothing. A
subscriber that falls too far behind is not allowed to grow memory: its backlog is dropped and
it catches up from the store instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import Emulator

_MAX_BACKLOG = 1000
_REPLAY_PAGE = 200


@dataclass(frozen=True)
class Event:
    """One live event.

    Attributes:
        kind: ``entry`` (a stored entry), ``cleared`` (a group deleted, or all on reset),
            or the internal ``lost`` / ``closing`` signals, never sent to clients.
        data: the JSON data.
        id: the entry id for ``entry`` events.
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def encode(self) -> str:
        """The event in the ``text/event-stream`` format."""
        head = f"id: {self.id}\n" if self.id is not None else ""
        data = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"{head}event: {self.kind}\ndata: {data}\n\n"


_LOST = Event("lost")
_CLOSING = Event("closing")


class Broadcaster:
    """Fans events out to the open streams. Use it from the event loop only."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._queues)

    def subscribe(self) -> asyncio.Queue[Event]:
        """A new queue that receives every event published from now on."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        if self.closed:
            queue.put_nowait(_CLOSING)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering to ``queue``."""
        self._queues.discard(queue)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber."""
        for queue in self._queues:
            if queue.qsize() >= _MAX_BACKLOG:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_LOST)
            else:
                queue.put_nowait(event)

    def close(self) -> None:
        """End every open stream (and every stream opened later)."""
        self.closed = True
        for queue in self._queues:
            queue.put_nowait(_CLOSING)


async def event_stream(emulator: Emulator, since_id: int) -> AsyncIterator[str]:
    """Stored entries after ``since_id``, then live events, in SSE format.

    Ends when the emulator closes its streams, after ``sse_max_seconds``, or when the client
    goes away (the server cancels the iteration).
    """
    settings = emulator.settings
    events = emulator.events
    queue = events.subscribe()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.sse_max_seconds
    last = since_id
    try:
        yield "retry: 1000\n\n"
        catch_up = True
        while True:
            if catch_up:
                page = emulator.storage.list_entries(since_id=last, limit=_REPLAY_PAGE)
                for entry in page:
                    last = entry.id
                    yield Event("entry", entry.to_json(), entry.id).encode()
                catch_up = len(page) == _REPLAY_PAGE
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or events.closed:
                return
            try:
                event = await asyncio.wait_for(
                    queue.get(), min(settings.sse_heartbeat_seconds, remaining)
                )
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is _CLOSING:
                return
            if event is _LOST:
                catch_up = True
                continue
            if event.kind == "entry":
                if event.id is None or event.id <= last:
                    continue
                last = event.id
            yield event.encode()
    finally:
        events.unsubscribe(queue)
