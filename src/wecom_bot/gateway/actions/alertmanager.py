"""Creating a silence in a configured Alertmanager through its API v2."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from .registry import Alertmanager

_DETAIL_CHARS = 200


class SilenceError(Exception):
    """Alertmanager could not be reached or refused the silence.

    The message is for people (a page, the console): it says which, with the HTTP status,
    and never quotes the answer. ``detail`` is the start of the answer, for the log only.
    """

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence Alertmanager created: its id and when it ends."""

    id: str
    ends_at: datetime


async def create_silence(
    alertmanager: Alertmanager,
    matchers: Sequence[tuple[str, str]],
    *,
    seconds: int,
    created_by: str,
    comment: str,
    now: datetime | None = None,
) -> Silence:
    """``POST {url}/api/v2/silences`` with equality matchers from ``now`` for ``seconds``,
    with the Alertmanager's credentials; redirects are not followed.

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
    headers = {"Authorization": f"Bearer {alertmanager.bearer}"} if alertmanager.bearer else {}
    if alertmanager.basic:
        pair = ":".join(alertmanager.basic).encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    url = alertmanager.url + "/api/v2/silences"
    try:
        async with httpx.AsyncClient(timeout=alertmanager.timeout) as client:
            answer = await client.post(url, json=body, headers=headers, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise SilenceError(f"Alertmanager did not answer: {type(exc).__name__}") from exc
    if answer.status_code != 200:
        raise SilenceError(
            f"Alertmanager refused the silence (HTTP {answer.status_code})",
            status=answer.status_code,
            detail=answer.text[:_DETAIL_CHARS],
        )
    try:
        ident = str(answer.json()["silenceID"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SilenceError(
            "Alertmanager's answer has no silenceID", status=200, detail=answer.text[:_DETAIL_CHARS]
        ) from exc
    return Silence(ident, end)
