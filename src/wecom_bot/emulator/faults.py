"""Fault injection: make the next requests of one group fail the way real networks do.

Faults queue per group, first in first out: posting "HTTP 502 twice" then "drop once" makes
the next two requests answer 502 and the third lose its connection. A fault applies to the
webhook endpoints (send and upload_media) of that group, after the request body was read.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_COUNT = 10_000
MAX_DELAY_MS = 600_000


class FaultKind(StrEnum):
    """What an injected fault does to a request."""

    HTTP_STATUS = "http_status"
    """Answer this HTTP status (500, 502, ...) with a plain-text body; nothing is processed."""
    DELAY = "delay"
    """Wait ``delay_ms`` before processing the request normally (it is then stored)."""
    DROP = "drop"
    """Close the connection without any answer; nothing is processed."""
    ERRCODE = "errcode"
    """Answer HTTP 200 with this WeCom errcode; nothing is processed (stored as rejected)."""
    NOT_JSON = "not_json"
    """Answer HTTP 200 with a body that is not the API's JSON (``body``: ``html``, a captive
    portal's page, or ``empty``); nothing is processed, as when a proxy answers in WeCom's place."""


NOT_JSON_BODIES = ("html", "empty")


class FaultSpecError(ValueError):
    """A fault description is invalid; the message says which field and why."""


@dataclass(frozen=True)
class Fault:
    """One kind of failure, with its parameter.

    Attributes:
        kind: what happens.
        status: the HTTP status for ``http_status`` (400-599).
        delay_ms: the delay for ``delay``.
        errcode: the WeCom errcode for ``errcode`` (non-zero).
        errmsg: optional errmsg text for ``errcode`` (default: the text WeCom uses for it).
        body: what ``not_json`` answers: ``html`` or ``empty``.
    """

    kind: FaultKind
    status: int | None = None
    delay_ms: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    body: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> tuple[Fault, int]:
        """Read ``{"kind": ..., "status"|"delay_ms"|"errcode"|"body": ..., "count": N}``.

        Returns:
            The fault and how many requests it applies to (default 1).

        Raises:
            FaultSpecError: unknown kind, missing or out-of-range parameter, unknown field.
        """
        if not isinstance(data, dict):
            raise FaultSpecError("the body must be a JSON object")
        try:
            kind = FaultKind(str(data.get("kind")))
        except ValueError:
            choices = ", ".join(k.value for k in FaultKind)
            raise FaultSpecError(f"kind must be one of {choices}") from None
        allowed = {"kind", "count"} | {
            FaultKind.HTTP_STATUS: {"status"},
            FaultKind.DELAY: {"delay_ms"},
            FaultKind.DROP: set(),
            FaultKind.ERRCODE: {"errcode", "errmsg"},
            FaultKind.NOT_JSON: {"body"},
        }[kind]
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise FaultSpecError(f"unknown field(s) for kind {kind.value}: {', '.join(unknown)}")
        count = _int(data, "count", 1, MAX_COUNT, default=1)
        if kind is FaultKind.HTTP_STATUS:
            return cls(kind, status=_int(data, "status", 400, 599, default=500)), count
        if kind is FaultKind.DELAY:
            return cls(kind, delay_ms=_int(data, "delay_ms", 0, MAX_DELAY_MS)), count
        if kind is FaultKind.ERRCODE:
            errcode = _int(data, "errcode", -(2**31), 2**31 - 1)
            if errcode == 0:
                raise FaultSpecError("errcode must not be 0 (0 means success)")
            errmsg = data.get("errmsg")
            if errmsg is not None and (not isinstance(errmsg, str) or len(errmsg) > 200):
                raise FaultSpecError("errmsg must be a string of at most 200 characters")
            return cls(kind, errcode=errcode, errmsg=errmsg), count
        if kind is FaultKind.NOT_JSON:
            body = data.get("body", "html")
            if body not in NOT_JSON_BODIES:
                raise FaultSpecError(f"body must be one of {', '.join(NOT_JSON_BODIES)}")
            return cls(kind, body=body), count
        return cls(kind), count

    def to_json(self) -> dict[str, Any]:
        """The fault as the inspection API shows it (no null fields)."""
        out: dict[str, Any] = {"kind": self.kind.value}
        for name in ("status", "delay_ms", "errcode", "errmsg", "body"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _int(data: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(name, default)
    if value is None:
        raise FaultSpecError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultSpecError(f"{name} must be an integer")
    if not low <= value <= high:
        raise FaultSpecError(f"{name} must be between {low} and {high}, got {value}")
    return value


class FaultPlan:
    """The pending faults of every group (in memory; a restart forgets them)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[list[Any]]] = {}

    def add(self, group_id: str, fault: Fault, count: int) -> None:
        """Queue ``fault`` for the next ``count`` requests of the group (after those queued)."""
        self._queues.setdefault(group_id, deque()).append([fault, count])

    def take(self, group_id: str) -> Fault | None:
        """The fault for the request arriving now, if any (consumes one use)."""
        queue = self._queues.get(group_id)
        if not queue:
            return None
        slot = queue[0]
        slot[1] -= 1
        if slot[1] <= 0:
            queue.popleft()
            if not queue:
                del self._queues[group_id]
        fault: Fault = slot[0]
        return fault

    def pending(self, group_id: str) -> list[dict[str, Any]]:
        """The queued faults of a group with their remaining counts."""
        return [{**f.to_json(), "count": n} for f, n in self._queues.get(group_id, ())]

    def clear(self, group_id: str | None = None) -> None:
        """Drop the pending faults of one group, or of all."""
        if group_id is None:
            self._queues.clear()
        else:
            self._queues.pop(group_id, None)
