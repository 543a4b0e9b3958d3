"""Creating a silence in Alertmanager through its API v2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx


class SilenceError(Exception):
    """Alertmanager could not be reached or refused the silence (the message says which)."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence Alertmanager created: its id and when it ends."""

    id: str
    ends_at: datetime


async def create_silence(
    alertmanager_url: str,
    matchers: Sequence[tuple[str, str]],
    *,
    seconds: int,
    created_by: str,
    comment: str,
    now: datetime | None = None,
    timeout: float = 10.0,
) -> Silence:
    """``POST /api/v2/silences`` with equality matchers from ``now`` for ``seconds``.

    Raises:
        SilenceError: the request failed or Alertmanager answered other than 200.
    """
    start = now or datetime.now(UTC)
    end = start + timedelta(seconds=seconds)
    body = {
        "matchers": [
            {"name": n, "value": v, "isRegex": False, "isEqual": True} for n, v in matchers
        ],
        "startsAt": start.isoformat(),
        "endsAt": end.isoformat(),
        "createdBy": created_by,
        "comment": comment,
    }
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.post(alertmanager_url.rstrip("/") + "/api/v2/silences", json=body)
    except httpx.HTTPError as exc:
        raise SilenceError(f"Alertmanager did not answer: {type(exc).__name__}") from exc
    if answer.status_code != 200:
        raise SilenceError(
            f"Alertmanager refused the silence (HTTP {answer.status_code}): {answer.text[:200]}"
        )
    try:
        ident = str(answer.json()["silenceID"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SilenceError("Alertmanager's answer has no silenceID") from exc
    return Silence(ident, end)
