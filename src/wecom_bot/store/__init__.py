"""The outbox: durable storage of messages waiting for delivery.

Pick an implementation with :func:`open_store` (the ``store`` setting); every one satisfies
the :class:`Outbox` contract.
"""

from ._factory import ACCEPTED_FORMS, open_store
from .base import (
    COALESCIBLE_KINDS,
    STANDING_PREFIX,
    Acknowledged,
    Armed,
    Clock,
    GroupRecord,
    LeaseLostError,
    NewMessage,
    NewTimer,
    Outbox,
    OutboxRecord,
    Priority,
    SendMark,
    Status,
    StoreError,
    StoreOpenError,
    StoreUnavailableError,
    TimerLostError,
    TimerRecord,
    is_standing,
)
from .filelock import StoreInUseError
from .memory import MemoryOutbox
from .sqlite import SQLiteOutbox

__all__ = [
    "ACCEPTED_FORMS",
    "Acknowledged",
    "Armed",
    "COALESCIBLE_KINDS",
    "Clock",
    "GroupRecord",
    "LeaseLostError",
    "MemoryOutbox",
    "NewMessage",
    "NewTimer",
    "Outbox",
    "OutboxRecord",
    "Priority",
    "SQLiteOutbox",
    "STANDING_PREFIX",
    "SendMark",
    "Status",
    "StoreError",
    "StoreInUseError",
    "StoreOpenError",
    "StoreUnavailableError",
    "TimerLostError",
    "TimerRecord",
    "is_standing",
    "open_store",
]
