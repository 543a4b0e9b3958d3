"""The inspection and control API under ``/api`` (for tests, the web page and people).

Groups are named by their id, the key fingerprint (``wecom_bot.masking.key_fingerprint``),
never by the key: no answer of this API contains a whole key. Fault injection is addressed
by group id too (``POST /api/groups/{group_id}/faults``); a test that knows its key computes
the id with ``key_fingerprint(key)``, and may queue faults before the group's first request.

Errors here are plain HTTP (400 / 404 with ``{"error": ...}``); only ``/cgi-bin`` speaks WeCom.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .events import event_stream
from .faults import Fault, FaultSpecError
from .webhook import emulator_of

router = APIRouter(tags=["inspection"])

_GROUP_ID = re.compile(r"^[0-9a-f]{8}$")
_FAULT_BODY_CAP = 4096


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _unknown_group(group_id: str) -> JSONResponse:
    shown = group_id if _GROUP_ID.match(group_id) else "(malformed id)"
    return _error(404, f"no group {shown}")


@router.get("/info", summary="What this emulator is and how it is configured")
async def info(request: Request) -> dict[str, Any]:
    """Settings a client or page may want to show (no keys, only whether they are restricted)."""
    settings = emulator_of(request).settings
    return {
        "name": "wecom-bot emulator",
        "keys_restricted": settings.keys is not None,
        "rate_limit": str(settings.rate) if settings.rate else None,
        "media_ttl_seconds": settings.media_ttl_seconds,
        "strict": settings.strict,
        "limits": settings.limits,
        "send_path": "/cgi-bin/webhook/send",
        "upload_path": "/cgi-bin/webhook/upload_media",
    }


@router.get("/groups", summary="Every group with its counters")
async def list_groups(request: Request) -> dict[str, Any]:
    """Groups (keys masked) with accepted / rejected-by-errcode / rate-limited counters."""
    emulator = emulator_of(request)
    return {"groups": [g.to_json() for g in emulator.storage.list_groups()]}


@router.get("/groups/{group_id}", summary="One group, its counters and pending faults")
async def get_group(request: Request, group_id: str) -> Response:
    """One group, with the faults still queued for it."""
    emulator = emulator_of(request)
    group = emulator.storage.get_group(group_id)
    if group is None:
        return _unknown_group(group_id)
    return JSONResponse({**group.to_json(), "faults": emulator.faults.pending(group_id)})


@router.get("/groups/{group_id}/messages", summary="A group's entries, oldest first")
async def list_group_messages(
    request: Request,
    group_id: str,
    since_id: Annotated[int, Query(ge=0, description="only entries with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, description="at most this many (capped)")] = 100,
) -> Response:
    """Accepted and rejected entries of one group after ``since_id``."""
    emulator = emulator_of(request)
    if emulator.storage.get_group(group_id) is None:
        return _unknown_group(group_id)
    return JSONResponse(_page(emulator_of(request), group_id, since_id, limit))


@router.get("/messages", summary="Entries of every group, oldest first")
async def list_messages(
    request: Request,
    since_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> dict[str, Any]:
    """Accepted and rejected entries of all groups after ``since_id``."""
    return _page(emulator_of(request), None, since_id, limit)


def _page(emulator: Any, group_id: str | None, since_id: int, limit: int) -> dict[str, Any]:
    limit = min(limit, emulator.settings.max_page_size)
    entries = emulator.storage.list_entries(group_id, since_id=since_id, limit=limit)
    return {
        "group_id": group_id,
        "messages": [e.to_json() for e in entries],
        "next_since_id": entries[-1].id if entries else since_id,
        "more": len(entries) == limit,
    }


@router.get("/groups/{group_id}/media", summary="A group's uploads")
async def list_group_media(request: Request, group_id: str) -> Response:
    """Uploads of one group (metadata; the bytes are at ``/api/media/{media_id}``)."""
    emulator = emulator_of(request)
    if emulator.storage.get_group(group_id) is None:
        return _unknown_group(group_id)
    return JSONResponse({"media": [m.to_json() for m in emulator.storage.list_media(group_id)]})


@router.get("/media/{media_id}", summary="The bytes of an upload")
async def get_media(request: Request, media_id: str) -> Response:
    """Download an uploaded file or voice clip (for the page's attachments)."""
    emulator = emulator_of(request)
    media = emulator.storage.get_media(media_id)
    data = emulator.storage.media_data(media_id) if media else None
    if media is None or data is None:
        return _error(404, "no such media")
    quoted = json.dumps(media.filename, ensure_ascii=True)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename={quoted}"},
    )


@router.delete("/groups/{group_id}", summary="Forget a group")
async def delete_group(request: Request, group_id: str) -> Response:
    """Delete a group's entries, media, rate-limit history and pending faults."""
    if not emulator_of(request).delete_group(group_id):
        return _unknown_group(group_id)
    return JSONResponse({"deleted": group_id})


@router.post("/reset", summary="Forget everything")
async def reset(request: Request) -> dict[str, Any]:
    """Delete every group, entry, media, rate-limit history and pending fault."""
    emulator_of(request).reset()
    return {"reset": True}


@router.get(
    "/events",
    summary="Server-Sent Events: one per stored entry",
    response_class=StreamingResponse,
)
async def events(
    request: Request,
    since_id: Annotated[int | None, Query(ge=0, description="replay entries after this id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """``event: entry`` with the entry JSON (``group_id`` included) for each stored entry;
    ``event: cleared`` with ``{"group_id": id or null}`` when a group (or all) is deleted.

    Starts after ``Last-Event-ID`` (what a reconnecting EventSource sends), else after
    ``since_id``, else with the next new entry.
    """
    emulator = emulator_of(request)
    start = emulator.storage.last_entry_id()
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id.strip())
    elif since_id is not None:
        start = since_id
    return StreamingResponse(
        event_stream(emulator, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/groups/{group_id}/faults", summary="Faults queued for a group")
async def list_faults(request: Request, group_id: str) -> Response:
    """Pending faults with their remaining counts, in the order they will apply."""
    if not _GROUP_ID.match(group_id):
        return _error(400, "group_id must be 8 hex digits (key_fingerprint of the key)")
    pending = emulator_of(request).faults.pending(group_id)
    return JSONResponse({"group_id": group_id, "faults": pending})


@router.post(
    "/groups/{group_id}/faults",
    summary="Queue a fault for the next requests of a group",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "kind": {
                                "enum": ["http_status", "delay", "drop", "errcode", "not_json"]
                            },
                            "status": {"type": "integer", "minimum": 400, "maximum": 599},
                            "delay_ms": {"type": "integer", "minimum": 0},
                            "errcode": {"type": "integer"},
                            "errmsg": {"type": "string"},
                            "body": {"enum": ["html", "empty"], "default": "html"},
                            "count": {"type": "integer", "minimum": 1, "default": 1},
                        },
                        "required": ["kind"],
                    }
                }
            },
        }
    },
)
async def add_fault(request: Request, group_id: str) -> Response:
    """Body ``{"kind": "http_status"|"delay"|"drop"|"errcode"|"not_json",
    "status"|"delay_ms"|"errcode"|"body": ..., "count": N}``: the next N webhook requests
    (send or upload) of the group get it.
    """
    if not _GROUP_ID.match(group_id):
        return _error(400, "group_id must be 8 hex digits (key_fingerprint of the key)")
    raw = await request.body()
    if len(raw) > _FAULT_BODY_CAP:
        return _error(400, "body too large")
    try:
        fault, count = Fault.from_json(json.loads(raw))
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, FaultSpecError) else "the body must be JSON"
        return _error(400, message)
    emulator = emulator_of(request)
    emulator.faults.add(group_id, fault, count)
    return JSONResponse(
        {"group_id": group_id, "faults": emulator.faults.pending(group_id)}, status_code=201
    )


@router.delete("/groups/{group_id}/faults", summary="Drop a group's pending faults")
async def clear_faults(request: Request, group_id: str) -> dict[str, Any]:
    """Forget the faults still queued for a group."""
    emulator_of(request).faults.clear(group_id)
    return {"group_id": group_id, "faults": []}
