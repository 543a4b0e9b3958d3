"""The outbox interface: a durable queue of messages waiting to be delivered.

The gateway's HTTP handlers :meth:`Outbox.enqueue` rendered messages and answer the sender
only once the store has them; the dispatcher :meth:`Outbox.claim` s due records per bot,
sends them and then :meth:`~Outbox.ack` s, :meth:`~Outbox.release` s (retry later) or
:meth:`~Outbox.dead` s them. A message leaves the queue only through ``ack`` (delivered),
``replace`` (folded into a digest that is itself a record), ``settle`` (turned into the
messages rendered from it, each a record) or ``dead`` (a dead letter with its last error),
never silently.

Life of a record::

    enqueue ──► PENDING ──claim──► LEASED ──ack──► SENT
                  ▲  ▲               │  │
                  │  └── release ────┘  ├── replace ──► SENT (replaced_by = digest id)
                  │      lease expiry   ├── settle ───► SENT (its messages are new records)
                  │                     └── dead ─────► DEAD ──discard──► (deleted)
                  └──────────── requeue_dead ────────────┘

Semantics every implementation keeps (the contract suite in ``tests/store`` checks them):

* **Priority, then FIFO, per bot** among due records: ``claim`` hands out pending records whose
  ``next_attempt_at <= now`` ordered by ``(rank, id)``, where ``rank`` is ``created_at`` plus the
  aging delay of the record's :class:`Priority` (:func:`claim_rank`). A new alert therefore goes
  before every escalation or reminder queued less than their delay ago, and a lower class is
  never starved: once it has waited its delay it is as urgent as a new alert. A record waiting
  for a retry does not block the records behind it; once due it goes first again because it
  is older.
* **Leases**: a claimed record belongs to the caller until ``lease_until``. A lease that runs
  out (the worker died) returns the record to PENDING, counts one attempt and sets
  ``last_error``; ``claim`` does this implicitly for its bot, :meth:`Outbox.recover_expired_leases`
  for every bot (call it at start). Delivery is therefore at-least-once.
* **The send log** (:meth:`Outbox.note_send`, :meth:`Outbox.recent_sends`) keeps the recent
  sends per key fingerprint beside the queue, so that a restarted gateway knows the rate
  window WeCom is still counting (:mod:`wecom_bot.gateway.window`).
* **Time is passed in**: every method that needs the time takes ``now`` (seconds since the
  epoch, a float); when omitted the store's injected ``clock`` is read. Tests drive a fake clock
  and never sleep. Wall-clock time is used because records outlive the process; the gateway
  reads it from a :class:`~wecom_bot.clock.SteadyClock`, so a step of the system clock does
  not move the "now" these times are compared with (a Redis store times leases on the
  server's clock instead, see :mod:`wecom_bot.store.redis`).
* **A live owner keeps its leases**: :meth:`Outbox.renew` extends the leases a dispatcher
  still holds; it renews them every third of a lease while it sends or folds them, and gives
  back (:meth:`Outbox.unclaim`) what it cannot send at once instead of waiting holding them.
* **Alert groups and their timers** (escalation and reminders, :mod:`wecom_bot.gateway.actions.
  escalation`) live beside the queue. :meth:`Outbox.open_group` opens a group with its timers
  once (a group already open keeps its timers); :meth:`Outbox.acknowledge_group` and
  :meth:`Outbox.resolve_group` cancel them. A due timer is leased like a record
  (:meth:`Outbox.claim_timers`: one holder at a time, across processes); its holder fires it
  with :meth:`Outbox.fire_timer`, which stores the messages it sends and removes (or
  reschedules) the timer in one step, and only while the holder still holds it. A timer
  therefore fires exactly once: a holder that dies before firing leaves it to the next claim
  after the lease, and one that fires late finds it gone (:class:`TimerLostError`) and stores
  nothing.
* **Standing groups** (heartbeats, :mod:`wecom_bot.gateway.heartbeats`) are groups whose id
  starts with :data:`STANDING_PREFIX`. They use the same timers, and are armed again at every
  beat with :meth:`Outbox.arm_group`; :meth:`Outbox.list_groups`, :meth:`Outbox.purge_groups`
  and :meth:`Outbox.trim_groups` leave them alone (they are not alerts, and their state must
  outlive any retention). A standing group open without a timer is one whose timer fired:
  :meth:`Outbox.arm_group` tells this apart and stores the "it came back" messages in the
  same step, for exactly one caller.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import TracebackType
from typing import Any, Self

from ..errors import ConfigError, WeComBotError

Clock = Callable[[], float]
"""Returns the current time in seconds since the epoch (``time.time`` by default)."""

COALESCIBLE_KINDS: frozenset[str] = frozenset({"text", "markdown", "markdown_v2"})
"""Message types whose content may be merged into a digest by the dispatcher."""

MAX_ERROR_CHARS = 2000
"""``last_error`` is cut to this many characters so one noisy error cannot bloat the store."""

LEASE_EXPIRED_ERROR = "lease expired: the worker holding the message stopped before finishing"


class Priority(IntEnum):
    """What a message is, in the order the 20 messages a minute are spent on them.

    ``ALERT``: new firing alerts and resolves (and anything sent by a caller that does not
    say); ``ACTION``: acknowledgement lines; ``ESCALATION``: escalation notices; ``REMINDER``:
    reminders and other notices about alerts already delivered; ``GRAPH``: the chart or image
    sent after an alert's text (:mod:`wecom_bot.gateway.graphs`): it never goes ahead of an
    alert text queued up to its delay after it.
    """

    ALERT = 0
    ACTION = 1
    ESCALATION = 2
    REMINDER = 3
    GRAPH = 4


PRIORITY_AGING: Mapping[Priority, float] = {
    Priority.ALERT: 0.0,
    Priority.ACTION: 60.0,
    Priority.ESCALATION: 900.0,
    Priority.REMINDER: 3600.0,
    Priority.GRAPH: 30.0,
}
"""Seconds a record of each class waits behind newer records of the classes above it.

A lower class is claimed after every higher one queued less than this before it, so it waits
while alerts keep the budget busy, and goes out once it has waited this long (nothing starves).
"""


def claim_rank(created_at: float, priority: int) -> float:
    """The order ``claim`` hands records out in (lower first; ties by id): both stores sort by
    this one value."""
    return created_at + PRIORITY_AGING[Priority(priority)]


class Status(StrEnum):
    """Where a record is in its life (see the module docstring for the transitions)."""

    PENDING = "pending"
    LEASED = "leased"
    SENT = "sent"
    DEAD = "dead"


STANDING_PREFIX = "heartbeat:"
"""Group ids starting with this are standing groups (see the module docstring)."""


def is_standing(group_id: str) -> bool:
    """Whether ``group_id`` names a standing group (a heartbeat's)."""
    return group_id.startswith(STANDING_PREFIX)


class Armed(IntEnum):
    """What :meth:`Outbox.arm_group` found and did."""

    OPENED = 0
    """The group was not open: it was opened with the timers."""
    KEPT = 1
    """It was open and ``only_new`` was asked: nothing changed."""
    REARMED = 2
    """It was open with a timer pending: its timers were replaced (a claim on them is lost)."""
    RESUMED = 3
    """It was open with no timer (the last one fired): timers set and ``resumed`` stored."""


class Acknowledged(IntEnum):
    """What :meth:`Outbox.acknowledge_group` found; false only when the group is not open."""

    NOT_OPEN = 0
    """No such open group (it resolved, or was never opened): nothing was changed."""
    FIRST = 1
    """The group had not been acknowledged (nor silenced) before: this is the first time."""
    AGAIN = 2
    """Someone had acknowledged (or silenced) it already."""


class StoreError(WeComBotError):
    """The outbox could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The backend failed while running (unreachable, disk full, locked for too long).

    Nothing of the failed call was stored. The gateway answers 503 so that senders retry.
    """


class StoreOpenError(StoreError, ConfigError):
    """The store named by the ``store`` setting cannot be opened or written at start.

    The message names the setting, the path or address, and what to do about it.
    """


class LeaseLostError(StoreError):
    """:meth:`Outbox.replace` or :meth:`Outbox.settle` was given a record no longer leased.

    Attributes:
        ids: the record ids that are not (or no longer) leased.
    """

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)
        super().__init__(
            f"records {self.ids} are not leased any more (acked, released, dead or gone); "
            "nothing was changed"
        )


_PAYLOAD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_payload(payload: Mapping[str, Any]) -> str:
    """Serialize a message payload to compact UTF-8 JSON, as it is stored.

    Raises:
        ValueError: the payload cannot be represented as JSON.
    """
    try:
        return _PAYLOAD_ENCODER.encode(payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"message payload is not JSON-serializable: {exc}") from exc


def cut_error(error: str) -> str:
    """Bound the length of an error text before it is stored."""
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to put into the outbox.

    Attributes:
        bot: the configured bot name (never the webhook key: keys do not belong in the store).
        payload: the API payload, e.g. ``{"msgtype": "text", "text": {"content": "hi"}}``.
        notification_id: the inbound notification this message was rendered from, for history.
        coalescible: whether the dispatcher may merge it into a digest; ``None`` means "if its
            ``msgtype`` is text, markdown or markdown_v2".
        not_before: earliest delivery time; ``None`` means as soon as possible.
        payload_json: ``payload`` already written as JSON text by the caller, stored as is
            instead of encoding ``payload`` again; it must decode to ``payload``.
        priority: its class (:class:`Priority`): where it stands in the claim order.

    Raises:
        ValueError: ``bot`` is empty, ``payload`` has no string ``msgtype``, or ``priority`` is
            not a :class:`Priority`.
    """

    bot: str
    payload: Mapping[str, Any]
    notification_id: str | None = None
    coalescible: bool | None = None
    not_before: float | None = None
    payload_json: str | None = None
    priority: Priority = Priority.ALERT

    def __post_init__(self) -> None:
        if not isinstance(self.bot, str) or not self.bot:
            raise ValueError("NewMessage.bot must be a non-empty bot name")
        if self.priority not in PRIORITY_AGING:
            raise ValueError(f"NewMessage.priority must be a Priority, not {self.priority!r}")
        msgtype = self.payload.get("msgtype") if isinstance(self.payload, Mapping) else None
        if not isinstance(msgtype, str) or not msgtype:
            raise ValueError("NewMessage.payload must be an API payload with a 'msgtype'")

    def encoded(self) -> str:
        """The payload as stored: :attr:`payload_json`, else :func:`encode_payload`.

        Raises:
            ValueError: the payload cannot be represented as JSON.
        """
        if self.payload_json is not None:
            return self.payload_json
        return encode_payload(self.payload)

    @property
    def kind(self) -> str:
        """The payload's ``msgtype``."""
        return str(self.payload["msgtype"])

    @property
    def is_coalescible(self) -> bool:
        """The effective coalescible flag (explicit, else decided by :attr:`kind`)."""
        if self.coalescible is not None:
            return self.coalescible
        return self.kind in COALESCIBLE_KINDS


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A stored message and its delivery state (a snapshot; the store is the truth).

    Attributes:
        id: unique, increasing, never reused.
        bot: the bot name.
        kind: the payload's ``msgtype``.
        payload: the API payload (a fresh dict decoded from the stored JSON).
        status: see :class:`Status`.
        attempts: failed delivery attempts so far (releases and expired leases).
        created_at: enqueue time; a digest keeps the oldest time of the records it replaced.
        next_attempt_at: earliest time ``claim`` hands it out again.
        updated_at: time of the last change (for SENT: when it was delivered).
        lease_until: end of the current lease (LEASED only).
        last_error: the last delivery error, kept after a retry and on dead letters.
        notification_ids: inbound notifications whose content this record carries (a digest
            carries those of every record it replaced).
        dedup_key: the key given to :meth:`Outbox.enqueue_once`, if any.
        coalescible: whether the dispatcher may merge it into a digest.
        replaced_by: for a record folded into a digest, the digest's id.
        priority: its class (:class:`Priority`).
    """

    id: int
    bot: str
    kind: str
    payload: dict[str, Any]
    status: Status
    attempts: int
    created_at: float
    next_attempt_at: float
    updated_at: float
    lease_until: float | None = None
    last_error: str | None = None
    notification_ids: tuple[str, ...] = ()
    dedup_key: str | None = None
    coalescible: bool = False
    replaced_by: int | None = None
    priority: Priority = Priority.ALERT

    @property
    def rank(self) -> float:
        """Its place in the claim order (see :func:`claim_rank`)."""
        return claim_rank(self.created_at, self.priority)

    @property
    def notification_id(self) -> str | None:
        """The first (for a plain message: the only) notification id, if any."""
        return self.notification_ids[0] if self.notification_ids else None


class TimerLostError(StoreError):
    """:meth:`Outbox.fire_timer` was given a timer its caller no longer holds (cancelled,
    fired, or claimed again by another holder after the lease ran out); nothing was stored.

    Attributes:
        group_id: the timer's group.
        key: the timer's key.
    """

    def __init__(self, group_id: str, key: str) -> None:
        self.group_id = group_id
        self.key = key
        super().__init__(
            f"timer {key!r} of group {group_id!r} is not held any more (cancelled, fired or "
            "claimed again); nothing was stored"
        )


@dataclass(frozen=True, slots=True)
class NewTimer:
    """A timer to schedule for an alert group (see :meth:`Outbox.open_group`).

    Attributes:
        key: names the timer within its group (a group holds one timer per key).
        due_at: when it fires (seconds since the epoch).
        payload: what to do then; JSON-ready, kept as given.

    Raises:
        ValueError: ``key`` is empty.
    """

    key: str
    due_at: float
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key or "\0" in self.key:
            raise ValueError("NewTimer.key must be a non-empty string without NUL")


@dataclass(frozen=True, slots=True)
class TimerRecord:
    """A stored timer (a snapshot; the store is the truth).

    Attributes:
        group_id: the alert group it belongs to.
        key: its name within the group.
        due_at: when it fires next.
        payload: what to do then (a fresh dict).
        fired: how many times it fired (a reminder is rescheduled after each).
        claim: the token of its current holder, while claimed (see :meth:`Outbox.claim_timers`).
        lease_until: when the current claim runs out.
    """

    group_id: str
    key: str
    due_at: float
    payload: dict[str, Any]
    fired: int = 0
    claim: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """An open alert group and its timers (a snapshot).

    Attributes:
        id: the group's id (the caller's; a hash of the group's labels in the gateway).
        opened_at: when it was opened (its first firing notification).
        updated_at: the last notification that mentioned it, or the last acknowledgement.
        info: what the caller keeps about it (labels, title, routes ...), a fresh dict.
        acknowledged_by: who acknowledged (or silenced) it, if anyone.
        acknowledged_at: when.
        silenced_until: the end of the silence made for it, if one was.
        timers: its timers, soonest first.
    """

    id: str
    opened_at: float
    updated_at: float
    info: dict[str, Any]
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    silenced_until: float | None = None
    timers: tuple[TimerRecord, ...] = ()

    @property
    def next_timer(self) -> TimerRecord | None:
        """The timer that fires first, if any."""
        return min(self.timers, key=lambda t: t.due_at, default=None)


def check_timers(group_id: str, timers: Sequence[NewTimer]) -> None:
    """The argument rule of :meth:`Outbox.open_group`: a group id, one timer per key.

    Raises:
        ValueError: the group id is empty or holds a NUL character, or two timers share a key.
    """
    if not isinstance(group_id, str) or not group_id or "\0" in group_id:
        raise ValueError("open_group: the group id must be a non-empty string without NUL")
    keys = [t.key for t in timers]
    if len(set(keys)) != len(keys):
        raise ValueError("open_group: two timers share a key")


def encode_json(value: Mapping[str, Any], what: str) -> str:
    """Serialize group info or a timer payload as stored (compact UTF-8 JSON).

    Raises:
        ValueError: it cannot be represented as JSON (the message names ``what``).
    """
    try:
        return _PAYLOAD_ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serializable: {exc}") from exc


def check_keep(keep: int) -> None:
    """The argument rule of :meth:`Outbox.trim_groups`.

    Raises:
        ValueError: ``keep`` below 0.
    """
    if keep < 0:
        raise ValueError("trim_groups needs keep >= 0")


def check_claim_arguments(limit: int, lease_seconds: float) -> None:
    """The argument rule of :meth:`Outbox.claim` and :meth:`Outbox.claim_timers`.

    Raises:
        ValueError: ``limit`` below 1 or ``lease_seconds`` not positive.
    """
    if limit < 1 or lease_seconds <= 0:
        raise ValueError("claim needs limit >= 1 and lease_seconds > 0")


@dataclass(frozen=True, slots=True)
class SendMark:
    """One send made with a webhook key, as the send log keeps it (see :meth:`Outbox.note_send`).

    Attributes:
        at: when it was sent (seconds since the epoch).
        rejected: the server answered 45009 to it: its window was full at ``at``, counting
            sends this process did not see.
    """

    at: float
    rejected: bool = False


def check_replace(claimed_ids: Sequence[int], new_messages: Sequence[NewMessage]) -> None:
    """The argument rule every :meth:`Outbox.replace` shares: a digest never drops anything.

    Raises:
        ValueError: no claimed id or no new message.
    """
    if not claimed_ids or not new_messages:
        raise ValueError("replace needs at least one claimed id and one new message")


def merge_notification_ids(originals: Iterable[Sequence[str]], own: str | None) -> tuple[str, ...]:
    """Notification ids of a digest: those of the originals (their ``notification_ids``) in
    order, then its own, no repeats."""
    merged: dict[str, None] = {}
    for ids in originals:
        for nid in ids:
            merged.setdefault(nid, None)
    if own:
        merged.setdefault(own, None)
    return tuple(merged)


class Outbox(abc.ABC):
    """A durable, leased, per-bot FIFO queue of outgoing messages.

    Implementations: :class:`~wecom_bot.store.memory.MemoryOutbox` (tests, one-shot CLI use),
    :class:`~wecom_bot.store.sqlite.SQLiteOutbox` (default, one process) and
    :class:`~wecom_bot.store.redis.RedisOutbox` (several gateway instances). Build one with
    :func:`wecom_bot.store.open_store`. Every method is a coroutine and safe to call from many
    tasks at once; backend failures raise :class:`StoreUnavailableError`.
    """

    #: A description of where the data lives, safe to log (passwords masked).
    location: str

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    # -- writing ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(
        self, messages: Sequence[NewMessage], *, now: float | None = None
    ) -> list[int]:
        """Store messages as PENDING, all or none.

        Args:
            messages: the messages, stored in this order (FIFO per bot follows it).
            now: the enqueue time (``created_at``); the clock when omitted.

        Returns:
            The new record ids, in the order of ``messages``.

        Raises:
            StoreUnavailableError: nothing was stored.
        """

    @abc.abstractmethod
    async def enqueue_once(
        self,
        dedup_key: str,
        window_seconds: float,
        messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int] | None:
        """Enqueue unless ``dedup_key`` was accepted within the last ``window_seconds``.

        The check and the insert are one atomic step, so two gateway instances receiving the
        same notification store it once. The window starts when a key is accepted; a
        duplicate does not extend it.

        Returns:
            The new ids, or ``None`` when the key is a duplicate (nothing stored).
        """

    @abc.abstractmethod
    async def replace(
        self,
        claimed_ids: Sequence[int],
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[OutboxRecord]:
        """Swap leased records for digest messages in one transaction.

        The originals become SENT with ``replaced_by`` set to the first new id; the new records
        are LEASED to the caller under the latest lease of the originals, carry the originals'
        notification ids and their oldest ``created_at`` (so they keep their place in FIFO
        order and age), and ``attempts`` 0.

        Returns:
            The new records, in the order of ``new_messages``.

        Raises:
            ValueError: ``claimed_ids`` or ``new_messages`` is empty (a digest never drops).
            LeaseLostError: some original is not LEASED any more; nothing was changed.
        """

    @abc.abstractmethod
    async def settle(
        self,
        claimed_id: int,
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int]:
        """Finish a leased record by storing the messages it became, in one transaction.

        For a journal record (an inbound notification stored as it arrived) that a processor
        claimed and rendered: the record becomes SENT (``updated_at = now``, lease cleared) and
        each new message is stored PENDING exactly as :meth:`enqueue` stores it (its
        ``notification_id``, ``coalescible`` and ``not_before`` honoured), except that its
        ``created_at`` is the settled record's, so age and end-to-end latency count from when
        the original was accepted (and it takes its place in FIFO order accordingly).

        Only the status is checked, not who holds the lease: a lease that ran out but was not
        yet recovered can still be settled, like :meth:`replace`.

        Args:
            claimed_id: the LEASED record to finish.
            new_messages: the messages it became, stored in this order; may be empty (the
                record is just finished).
            now: the settle time; the clock when omitted.

        Returns:
            The new record ids, in the order of ``new_messages``.

        Raises:
            LeaseLostError: the record is not LEASED (unknown, recovered after its lease ran
                out, already settled or acked); nothing was changed.
            ValueError: a payload cannot be stored as JSON; nothing was changed.
            StoreUnavailableError: nothing was changed.
        """

    # -- the dispatcher's side ------------------------------------------------------------
    @abc.abstractmethod
    async def claim(
        self, bot: str, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[OutboxRecord]:
        """Lease up to ``limit`` due records of ``bot``, oldest first.

        Expired leases of ``bot`` are recovered first (see the module docstring).

        Returns:
            The leased records (``status`` LEASED, ``lease_until = now + lease_seconds``) in
            FIFO order; empty when nothing is due.
        """

    @abc.abstractmethod
    async def renew(
        self, ids: Sequence[int], *, lease_seconds: float, now: float | None = None
    ) -> int:
        """Extend the leases of ``ids`` still LEASED to ``lease_seconds`` from now.

        The dispatcher renews what it holds well before the lease runs out, so a record whose
        owner is alive (sending slowly, folding a digest) is never recovered by another
        worker or instance. Records no longer leased (acked, released, recovered) are left
        as they are. Returns how many leases were extended.

        Raises:
            ValueError: ``lease_seconds`` is not positive.
        """

    @abc.abstractmethod
    async def unclaim(self, ids: Sequence[int], *, now: float | None = None) -> int:
        """Give leased records back untouched (no attempt counted), due immediately.

        For a dispatcher that claimed more than it could use. Returns how many were leased.
        """

    @abc.abstractmethod
    async def ack(self, ids: Sequence[int], *, now: float | None = None) -> int:
        """Mark records delivered (SENT); unknown or already-sent ids are ignored.

        Works from any other status: a delivery that succeeded is the truth even if the lease
        had run out meanwhile. Returns how many records changed.
        """

    @abc.abstractmethod
    async def release(
        self,
        record_id: int,
        *,
        next_attempt_at: float,
        error: str,
        now: float | None = None,
    ) -> bool:
        """A delivery attempt failed: count it and make the record due again later.

        Returns:
            ``True`` if the record was LEASED (and is now PENDING), ``False`` otherwise
            (nothing changed: it was acked, recovered or dead-lettered meanwhile).
        """

    @abc.abstractmethod
    async def dead(self, record_id: int, error: str, *, now: float | None = None) -> bool:
        """Move a PENDING or LEASED record to the dead letters with its last error.

        A LEASED record was being tried: that attempt is counted, as :meth:`release` counts a
        failed one, so ``attempts`` of a dead letter is how many times it was tried.

        Returns:
            ``True`` if it changed, ``False`` if it was not pending/leased.
        """

    # -- dead letters -------------------------------------------------------------------------
    @abc.abstractmethod
    async def requeue_dead(self, ids: Sequence[int], *, now: float | None = None) -> int:
        """Make dead letters PENDING again, due now, with ``attempts`` reset to 0.

        ``last_error`` is kept for history. Returns how many were dead.
        """

    @abc.abstractmethod
    async def discard_dead(self, ids: Sequence[int]) -> int:
        """Delete dead letters for good. Returns how many were deleted."""

    @abc.abstractmethod
    async def list_dead(self, bot: str | None = None, *, limit: int = 100) -> list[OutboxRecord]:
        """Dead letters, oldest first, optionally of one bot."""

    # -- reading ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def get(self, record_id: int) -> OutboxRecord | None:
        """One record by id, in any status, or ``None``."""

    @abc.abstractmethod
    async def find_by_notification(self, notification_id: str) -> list[OutboxRecord]:
        """Every stored record carrying ``notification_id`` (the history of a notification)."""

    async def delivery_states(self, notification_id: str) -> list[OutboxRecord]:
        """Like :meth:`find_by_notification`, for reading delivery state only: a backend may
        leave ``payload`` empty and ``notification_ids`` out (a digest of a long backlog
        carries thousands of ids, and history reads this for each of them)."""
        return await self.find_by_notification(notification_id)

    @abc.abstractmethod
    async def pending_count(self, bot: str | None = None) -> int:
        """Records not yet delivered (PENDING or LEASED), of one bot or of all."""

    @abc.abstractmethod
    async def dead_count(self, bot: str | None = None) -> int:
        """Dead letters, of one bot or of all."""

    @abc.abstractmethod
    async def depth_by_bot(self) -> dict[str, int]:
        """Undelivered records (PENDING or LEASED) per bot; bots with none are absent."""

    @abc.abstractmethod
    async def oldest_pending_age(self, bot: str, *, now: float | None = None) -> float | None:
        """Seconds since the oldest undelivered record of ``bot`` was created, or ``None``.

        The dispatcher compares this with its coalescing delay.
        """

    @abc.abstractmethod
    async def bots_with_due_work(self, *, now: float | None = None) -> list[str]:
        """Bots, sorted, that have a due PENDING record or an expired lease."""

    @abc.abstractmethod
    async def next_due_at(self, bot: str | None = None) -> float | None:
        """The earliest time something becomes claimable (a retry time or a lease end).

        ``None`` when nothing is waiting. Lets the dispatcher sleep instead of polling.
        """

    # -- the send log (the rate window across restarts) ---------------------------------------
    @abc.abstractmethod
    async def note_send(
        self, key_id: str, at: float, *, keep: float, rejected: bool = False
    ) -> None:
        """Record a send made with one webhook key, so that the next process knows the window.

        A gateway that restarts (or reloads) seeds its rate limiter from :meth:`recent_sends`
        instead of starting with an empty window and being refused by WeCom.

        Args:
            key_id: an identifier of the key, never the key itself (its
                :func:`~wecom_bot.masking.key_fingerprint`).
            at: when the send was made (seconds since the epoch).
            keep: how long marks of ``key_id`` are worth keeping; those older than
                ``at - keep`` are forgotten now (a window or two is all anyone asks for).
            rejected: the server answered 45009 (see :class:`SendMark`).

        Raises:
            StoreUnavailableError: nothing was recorded.
        """

    @abc.abstractmethod
    async def recent_sends(self, key_id: str, since: float) -> list[SendMark]:
        """The recorded sends of ``key_id`` made at ``since`` or later, oldest first.

        Raises:
            StoreUnavailableError: the backend did not answer.
        """

    # -- alert groups and their timers (escalation, reminders) --------------------------------
    @abc.abstractmethod
    async def open_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        now: float | None = None,
    ) -> bool:
        """Open an alert group with its timers, unless it is open already: one atomic step.

        A group that is open keeps its timers, its opening time and its acknowledgement; only
        its ``info`` and ``updated_at`` change (a sender repeating a firing notification does
        not restart its escalation).

        Args:
            group_id: the group's id.
            info: what to keep about it (JSON-ready), replacing what was kept.
            timers: its timers, for a group not open yet (keys unique).
            now: the time (``opened_at`` / ``updated_at``); the clock when omitted.

        Returns:
            ``True`` if the group was opened now (and its timers scheduled).

        Raises:
            ValueError: ``info`` or a timer payload cannot be stored as JSON, two timers
                share a key, or the group id is empty or holds a NUL; nothing was changed.
            StoreUnavailableError: nothing was changed.
        """

    @abc.abstractmethod
    async def arm_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        resumed: Sequence[NewMessage] = (),
        only_new: bool = False,
        now: float | None = None,
    ) -> tuple[Armed, list[int]]:
        """Open a group or arm it again, in one atomic step (heartbeats).

        Not open: it is opened with ``info`` and ``timers`` (:attr:`Armed.OPENED`). Open and
        ``only_new``: nothing changes (:attr:`Armed.KEPT`). Open otherwise: ``info`` and
        ``updated_at`` are replaced and its timers become ``timers`` (any claim on the old ones
        is lost, so a holder about to fire one gets :class:`TimerLostError`); if it had no
        timer left (it fired), ``resumed`` is stored as :meth:`enqueue` stores messages
        (:attr:`Armed.RESUMED`), else not (:attr:`Armed.REARMED`). Of several callers arming
        a fired group at once, exactly one gets RESUMED.

        Returns:
            What happened, and the ids of the stored ``resumed`` messages (else empty).

        Raises:
            ValueError: as :meth:`open_group`, or a message payload cannot be stored as JSON;
                nothing was changed.
            StoreUnavailableError: nothing was changed.
        """

    @abc.abstractmethod
    async def acknowledge_group(
        self,
        group_id: str,
        *,
        by: str,
        silenced_until: float | None = None,
        now: float | None = None,
    ) -> Acknowledged:
        """Someone took an open group in hand: cancel its timers and say who, in one step.

        A silence is an acknowledgement that also says until when (``silenced_until``); an
        acknowledgement without one keeps the silence already recorded.

        Returns:
            Whether the group was open, and if so whether it had been acknowledged before
            (in the same step: of two people acting at once, one is :attr:`~Acknowledged.FIRST`).
        """

    @abc.abstractmethod
    async def resolve_group(self, group_id: str) -> bool:
        """The group resolved: forget it and its timers, in one step.

        Returns:
            ``True`` if the group was open.
        """

    @abc.abstractmethod
    async def get_group(self, group_id: str) -> GroupRecord | None:
        """One open group with its timers, or ``None``."""

    @abc.abstractmethod
    async def list_groups(self, *, limit: int = 500) -> list[GroupRecord]:
        """Open groups with their timers, the longest open first (ties: by id); standing
        groups are left out."""

    @abc.abstractmethod
    async def claim_timers(
        self, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[TimerRecord]:
        """Lease up to ``limit`` due timers, soonest first (ties: by group id, then key).

        A timer is due when ``due_at <= now`` and nobody holds it, or when its holder's lease
        ran out. Each claimed timer gets a new ``claim`` token and ``lease_until = now +
        lease_seconds``; no other caller gets it until then.

        Raises:
            ValueError: ``limit`` below 1 or ``lease_seconds`` not positive.
        """

    @abc.abstractmethod
    async def fire_timer(
        self,
        timer: TimerRecord,
        messages: Sequence[NewMessage],
        *,
        next_due_at: float | None = None,
        now: float | None = None,
    ) -> list[int]:
        """Fire a claimed timer: store ``messages`` as :meth:`enqueue` does and remove the timer
        (or, with ``next_due_at``, make it due again then, unclaimed, ``fired`` counted), in
        one step, only if ``timer.claim`` still holds it.

        Returns:
            The new record ids, in the order of ``messages`` (maybe none).

        Raises:
            TimerLostError: the timer is gone or held by another claim; nothing was stored.
            ValueError: a payload cannot be stored as JSON; nothing was changed.
            StoreUnavailableError: nothing was changed.
        """

    @abc.abstractmethod
    async def next_timer_at(self) -> float | None:
        """The earliest time a timer becomes claimable (its due time, or its lease's end),
        or ``None`` when there is none."""

    @abc.abstractmethod
    async def purge_groups(self, *, before: float, now: float | None = None) -> int:
        """Forget, with their timers, groups no notification mentioned since ``before``, and
        groups whose silence ended by ``now`` (Alertmanager tells nothing of a silenced group,
        not even that it resolved; it notifies again if the group still fires once the silence
        ends, and the group opens anew). Standing groups stay. Returns how many."""

    @abc.abstractmethod
    async def trim_groups(self, *, keep: int) -> int:
        """Forget, with their timers, the unacknowledged groups no notification mentioned for
        the longest (by ``updated_at``, ties by id) while more than ``keep`` unacknowledged
        groups are open (the bound on groups escalating; an acknowledged group has no timers
        and stays, so its acknowledgement is kept). Standing groups neither count nor go.
        Returns how many.

        Raises:
            ValueError: ``keep`` below 0.
        """

    # -- maintenance -----------------------------------------------------------------------
    @abc.abstractmethod
    async def recover_expired_leases(self, *, now: float | None = None) -> int:
        """Return every expired lease to PENDING (one attempt counted). Returns how many."""

    @abc.abstractmethod
    async def purge_sent(self, *, before: float) -> int:
        """Delete SENT records delivered before ``before`` (history retention)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Check the backend answers and, where it can tell cheaply, accepts writes (the
        readiness probe: a full disk or a damaged file is not ready).

        Raises:
            StoreUnavailableError: it does not.
        """

    async def check_identity(self, *, repair: bool = False) -> str | None:
        """Whether the store still holds the data it opened (readiness and the store watch).

        A SQLite file can be deleted or replaced under the running process, and a Redis can
        restart empty; the writes that follow would go somewhere a restart does not find, or
        the records queued before are gone. The first call fixes what "the data it opened"
        means (a Redis store writes its epoch key then).

        Args:
            repair: do what can be done about it: a SQLite file deleted while open is written
                back to its path from the open connection and reopened (nothing is lost); a
                replaced one is saved beside the path and the store refuses every call from
                then on; a Redis that lost its data gets a new epoch, so the next call answers
                ``None`` (what was queued there is gone; the message says so).

        Returns:
            ``None`` when all is well; otherwise what happened and what to do, one line with
            no secret in it (for the log and ``/readyz``). After a repair the same incident is
            not reported again, except by a store that refuses every call.

        Raises:
            StoreUnavailableError: the backend does not answer.
        """
        return None

    async def durability_warning(self) -> str | None:
        """Why a restart of the backend could lose stored records, when it can tell (a Redis
        with persistence off or unreadable); ``None`` otherwise. Logged once at start.

        Raises:
            StoreUnavailableError: the backend does not answer.
        """
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
