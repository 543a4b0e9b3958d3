"""The state one running emulator owns, created and closed by the app's lifespan."""

from __future__ import annotations

import asyncio

from ..masking import key_fingerprint, mask_key
from .events import Broadcaster, Event
from .faults import FaultPlan
from .ratelimit import SlidingWindowLimiter
from .settings import KEY_PATTERN, EmulatorSettings
from .storage import Entry, Storage


class Emulator:
    """Settings, store, rate limiter, pending faults and live events of one emulator.

    Routes reach it as ``request.app.state.emulator`` (set while the app runs).

    Args:
        settings: how the emulator behaves.
        storage: the open store (closed by the owner, the lifespan).
        loop: the event loop serving the app (for :meth:`close_streams` from other threads).
    """

    def __init__(
        self, settings: EmulatorSettings, storage: Storage, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.limiter = (
            SlidingWindowLimiter(settings.rate, settings.monotonic) if settings.rate else None
        )
        self.faults = FaultPlan()
        self.events = Broadcaster()
        self._loop = loop
        for key in settings.keys or ():
            storage.ensure_group(key_fingerprint(key), mask_key(key), settings.clock())

    def key_allowed(self, key: str) -> bool:
        """Whether ``key`` names a group: well-formed, and listed when keys are restricted."""
        if not KEY_PATTERN.match(key):
            return False
        return self.settings.keys is None or key in self.settings.keys

    def open_group(self, key: str) -> str:
        """The group id of an allowed key, creating the group on first use."""
        group_id = key_fingerprint(key)
        self.storage.ensure_group(group_id, mask_key(key), self.settings.clock())
        return group_id

    def record(self, entry: Entry) -> Entry:
        """Store an entry and announce it to the event streams."""
        stored = self.storage.add_entry(entry)
        self.events.publish(Event("entry", stored.to_json(), stored.id))
        return stored

    def delete_group(self, group_id: str) -> bool:
        """Forget a group: entries, media, rate-limit history, pending faults."""
        existed = self.storage.delete_group(group_id)
        if self.limiter:
            self.limiter.reset(group_id)
        self.faults.clear(group_id)
        if existed:
            self.events.publish(Event("cleared", {"group_id": group_id}))
        return existed

    def reset(self) -> None:
        """Forget everything; restricted keys get their (empty) groups back."""
        self.storage.reset()
        if self.limiter:
            self.limiter.reset()
        self.faults.clear()
        for key in self.settings.keys or ():
            self.open_group(key)
        self.events.publish(Event("cleared", {"group_id": None}))

    def close_streams(self) -> None:
        """End every open event stream so the server can stop.

        Safe from any thread and from a signal handler: the work is handed to the loop.
        """
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.events.close)
