"""The WeCom API itself: ``/cgi-bin/webhook/send`` and ``/cgi-bin/webhook/upload_media``.

Everything a client can send gets an HTTP 200 WeCom-style answer; bodies are read by hand
(never through a pydantic body model) so malformed input cannot turn into a 422 or a 500.

Order of checks on send: key (93000), body size, JSON (40008), message rules
(40008 / 44004 / 40058 / 301019), media_id (40007), then the rate limit (45009), so a message
that would be rejected anyway does not use up a slot and is reported for what is wrong with it.
What live WeCom lets through beyond its documentation (any content type, recoverable JSON,
unknown fields, text up to 5120 bytes with ``limits="live"``) is accepted with warnings by
:mod:`.leniency`; with ``strict`` settings the content type must be JSON (else 40058), JSON must
be strict (else 40008) and unknown fields are refused (40058).

On upload: an empty or missing ``media`` part (44001) is reported before the key (40058
``invalid param 'key'``), then the type (40004), then the size and format rules (40058).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from .. import limits
from ..errors import MessageValidationError
from ..masking import mask_key
from ..messages import FileMessage, ImageMessage, Message, VoiceMessage, parse_message
from .faults import Fault, FaultKind
from .leniency import (
    Leniency,
    content_type_leniency,
    decode_json,
    drop_unknown_fields,
    over_documented_text,
    text_cut_to_documented_limit,
    top_level_extras,
)
from .state import Emulator
from .storage import Entry, Media
from .validation import (
    ERRMSG_TEXT,
    REPAIRED_JSON_ERRMSG,
    WRONG_JSON_TEXT,
    Answer,
    WeComError,
    error_for_validation,
    invalid_parameter,
)

logger = logging.getLogger("wecom_bot.emulator")

router = APIRouter()

_DRAIN_LIMIT = 64 * 1024 * 1024
_RAW_TEXT_MAX = 4096
_FILENAME_MAX = 255
_AMR_NB = b"#!AMR\n"
_AMR_WB = b"#!AMR-WB\n"
# Speech bytes after the one-byte frame header, by frame type (3GPP TS 26.101 / 26.201).
_AMR_NB_SIZES = (12, 13, 15, 17, 19, 20, 26, 31, 5, 0, 0, 0, 0, 0, 0, 0)
_AMR_WB_SIZES = (17, 23, 32, 36, 40, 46, 50, 58, 60, 5, 0, 0, 0, 0, 0, 0)
_AMR_NB_RESERVED = frozenset(range(9, 15))
_AMR_WB_RESERVED = frozenset(range(10, 14))
_AMR_FRAME_SECONDS = 0.02

_SEND_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"media": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def emulator_of(request: Request) -> Emulator:
    """The emulator serving this request (``request.app.state.emulator``)."""
    emulator: Emulator = request.app.state.emulator
    return emulator


def client_ip(request: Request) -> str:
    """The peer address shown in the errmsg tail."""
    return request.client.host if request.client else "0.0.0.0"


@dataclass(frozen=True)
class Body:
    """A request body read under a cap.

    Attributes:
        data: the bytes (empty when over the cap).
        size: how many bytes the client sent (or announced, when over the cap).
        over: the body was larger than the cap.
    """

    data: bytes
    size: int
    over: bool


async def read_body(request: Request, cap: int) -> Body | None:
    """Read the body, keeping at most ``cap`` bytes; None if the client went away.

    A body over the cap is drained (and thrown away) up to a hard limit, so the client
    finishes sending and can read the error answer.
    """
    declared = request.headers.get("content-length", "")
    size, over = 0, False
    chunks: list[bytes] = []
    if declared.isdigit() and int(declared) > cap + _DRAIN_LIMIT:
        return Body(b"", int(declared), True)
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                over = True
                chunks.clear()
            elif chunk:
                chunks.append(chunk)
            if size > cap + _DRAIN_LIMIT:
                break
    except ClientDisconnect:
        return None
    return Body(b"" if over else b"".join(chunks), size, over)


@router.post(limits.SEND_PATH, openapi_extra=_SEND_DOC, summary="Send a message (WeCom API)")
async def send(request: Request) -> Response:
    """``POST /cgi-bin/webhook/send?key=KEY`` with a JSON message body."""
    emulator = emulator_of(request)
    ip, key = client_ip(request), request.query_params.get("key", "")
    try:
        if not emulator.key_allowed(key):
            logger.info("send refused: unknown key %s", mask_key(key) if key else "(none)")
            err = WeComError.of(limits.ERRCODE_INVALID_WEBHOOK_URL)
            return Answer.error(err, ip, emulator.settings.clock()).to_response()
        group_id = emulator.open_group(key)
        body = await read_body(request, emulator.settings.send_body_cap)
        if body is None:
            return Response(status_code=400)
        fault = emulator.faults.take(group_id)
        if fault is not None:
            faulted = await _apply_fault(emulator, request, group_id, fault, "send", body.size)
            if faulted is not None:
                return faulted
        content_type = request.headers.get("content-type", "")
        answer, entry = _process_send(emulator, key, group_id, body, content_type, ip)
        emulator.record(entry)
        logger.info(
            "send group=%s key=%s msgtype=%s errcode=%s",
            group_id, mask_key(key), entry.msgtype, answer.errcode,
        )  # fmt: skip
        return answer.to_response()
    except Exception:
        logger.exception("send failed inside the emulator (key %s)", mask_key(key))
        err = WeComError.of(limits.ERRCODE_SYSTEM_BUSY)
        return Answer.error(err, ip, emulator.settings.clock()).to_response()


def _process_send(
    emulator: Emulator, key: str, group_id: str, body: Body, content_type: str, ip: str
) -> tuple[Answer, Entry]:
    settings = emulator.settings
    now = settings.clock()
    warnings: list[Leniency] = []

    def reject(
        err: WeComError, *, payload: Any = None, raw: bytes | None = None, msgtype: Any = None
    ) -> tuple[Answer, Entry]:
        answer = Answer.error(err, ip, now)
        raw_text = None
        if raw is not None:
            raw_text = _redact(raw[:_RAW_TEXT_MAX].decode("utf-8", "replace"), key)
        entry = Entry(
            group_id=group_id,
            received_at=now,
            endpoint="send",
            status="rejected",
            errcode=answer.errcode,
            errmsg=_redact(answer.errmsg, key),
            bytes=body.size,
            msgtype=msgtype if isinstance(msgtype, str) else None,
            payload=_redact(payload, key),
            raw_text=raw_text,
            content_bytes=err.actual,
            limit=err.limit,
            warnings=_redact([w.to_json() for w in warnings], key),
        )
        return answer, entry

    cap = settings.send_body_cap
    if body.over:
        return reject(invalid_parameter("body", f"exceed max length {cap}", limit=cap,
                                        actual=body.size))  # fmt: skip
    loose_type = content_type_leniency(content_type)
    if loose_type is not None:
        if settings.strict:
            err = invalid_parameter("Content-Type", "invalid, must be application/json")
            return reject(err, raw=body.data)
        warnings.append(loose_type)
    try:
        payload, repaired = decode_json(body.data, lenient=not settings.strict)
    except (UnicodeError, ValueError, RecursionError):
        err = WeComError(limits.ERRCODE_INVALID_MESSAGE_TYPE, WRONG_JSON_TEXT)
        return reject(err, raw=body.data)
    if repaired is not None:
        warnings.append(repaired)
    msgtype = payload.get("msgtype") if isinstance(payload, dict) else None
    if not settings.strict:
        payload, ignored = drop_unknown_fields(payload)
        warnings.extend(ignored)
    elif extras := top_level_extras(payload):
        return reject(invalid_parameter(extras[0], "unknown field"), payload=payload,
                      msgtype=msgtype)  # fmt: skip
    checked, long_text = payload, None
    if settings.limits == "live":
        checked, long_text = text_cut_to_documented_limit(payload)
    try:
        message = parse_message(_truncate_news(checked))
    except MessageValidationError as exc:
        return reject(error_for_validation(exc), payload=payload, msgtype=msgtype)
    if long_text is not None:
        size = limits.utf8_len(long_text)
        if size > limits.TEXT_CONTENT_LIVE_MAX_BYTES:
            cap = limits.TEXT_CONTENT_LIVE_MAX_BYTES
            err = invalid_parameter("text.content", f"exceed max length {cap}", limit=cap,
                                    actual=size)  # fmt: skip
            return reject(err, payload=payload, msgtype=msgtype)
        message = message.model_copy(update={"content": long_text})
        warnings.append(over_documented_text(size))
    media, media_err = _check_media(emulator, group_id, message, now)
    if media_err is not None:
        return reject(media_err, payload=payload, msgtype=msgtype)
    if emulator.limiter is not None and emulator.limiter.try_acquire(group_id) > 0:
        err = WeComError.of(limits.ERRCODE_RATE_LIMITED)
        return reject(err, payload=payload, msgtype=msgtype)
    content_bytes, limit = _measure(message, media)
    entry = Entry(
        group_id=group_id,
        received_at=now,
        endpoint="send",
        status="accepted",
        errcode=limits.ERRCODE_OK,
        errmsg=REPAIRED_JSON_ERRMSG if repaired is not None else "ok",
        bytes=body.size,
        msgtype=message.msgtype,
        payload=_redact(message.to_payload(), key),
        content_bytes=content_bytes,
        limit=limit,
        media=[m.attachment() for m in media],
        warnings=_redact([w.to_json() for w in warnings], key),
    )
    return Answer.ok(entry.errmsg), entry


def _truncate_news(payload: Any) -> Any:
    """Cut news titles and descriptions to their byte limits, as the WeCom server does."""
    if not isinstance(payload, dict) or payload.get("msgtype") != "news":
        return payload
    news = payload.get("news")
    articles = news.get("articles") if isinstance(news, dict) else None
    if not isinstance(news, dict) or not isinstance(articles, list):
        return payload
    cut_articles = []
    for article in articles:
        if isinstance(article, dict):
            article = dict(article)
            for name, cap in (("title", limits.NEWS_TITLE_MAX_BYTES),
                              ("description", limits.NEWS_DESCRIPTION_MAX_BYTES)):  # fmt: skip
                if isinstance(article.get(name), str):
                    article[name] = limits.truncate_utf8(article[name], cap)
        cut_articles.append(article)
    return {**payload, "news": {**news, "articles": cut_articles}}


def _check_media(
    emulator: Emulator, group_id: str, message: Message, now: float
) -> tuple[list[Media], WeComError | None]:
    """Every media_id the message uses must be this group's, unexpired, of the right type."""
    wanted: list[tuple[str, str]] = []
    if isinstance(message, FileMessage | VoiceMessage):
        wanted.append((message.media_id, message.msgtype))
    for row in getattr(message, "horizontal_content_list", None) or ():
        if row.type == 2 and row.media_id:
            wanted.append((row.media_id, "file"))
    found: list[Media] = []
    ttl = emulator.settings.media_ttl_seconds
    for media_id, kind in wanted:
        media = emulator.storage.get_media(media_id)
        if (
            media is None
            or media.group_id != group_id
            or media.type != kind
            or now - media.created_at > ttl
        ):
            return found, WeComError.of(limits.ERRCODE_INVALID_MEDIA_ID)
        found.append(media)
    return found, None


def _measure(message: Message, media: list[Media]) -> tuple[int | None, int | None]:
    """The size of the limited part of a message and its documented limit."""
    content = getattr(message, "content", None)
    if isinstance(content, str) and message.msgtype in limits.CONTENT_LIMITS:
        return limits.utf8_len(content), limits.CONTENT_LIMITS[message.msgtype]
    if isinstance(message, ImageMessage):
        return len(message.data), limits.IMAGE_MAX_BYTES
    if isinstance(message, FileMessage | VoiceMessage) and media:
        cap = limits.VOICE_MAX_BYTES if message.msgtype == "voice" else limits.FILE_MAX_BYTES
        return media[0].size, cap
    return None, None


def _redact(value: Any, key: str) -> Any:
    """``value`` with every occurrence of the key masked (a message may quote its own URL)."""
    if isinstance(value, str):
        return value.replace(key, mask_key(key)) if key in value else value
    if isinstance(value, dict):
        return {_redact(k, key): _redact(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    return value


@router.post(
    limits.UPLOAD_PATH, openapi_extra=_UPLOAD_DOC, summary="Upload a file or voice (WeCom API)"
)
async def upload_media(request: Request) -> Response:
    """``POST /cgi-bin/webhook/upload_media?key=KEY&type=file|voice``, multipart field ``media``."""
    emulator = emulator_of(request)
    ip, key = client_ip(request), request.query_params.get("key", "")
    try:
        group_id = emulator.open_group(key) if emulator.key_allowed(key) else None
        body = await read_body(request, emulator.settings.upload_body_cap)
        if body is None:
            return Response(status_code=400)
        fault = emulator.faults.take(group_id) if group_id else None
        if fault is not None and group_id is not None:
            faulted = await _apply_fault(
                emulator, request, group_id, fault, "upload_media", body.size
            )
            if faulted is not None:
                return faulted
        media_type = request.query_params.get("type", "")
        part = None if body.over else await _media_part(request, body.data)
        err, media, data = _process_upload(emulator, group_id, media_type, body, part)
        now = emulator.settings.clock()
        if err is not None:
            answer = Answer.error(err, ip, now)
            if group_id is not None:
                filename = _redact(part[0], key) if part else None
                emulator.record(
                    Entry(
                        group_id=group_id,
                        received_at=now,
                        endpoint="upload_media",
                        status="rejected",
                        errcode=answer.errcode,
                        errmsg=_redact(answer.errmsg, key),
                        bytes=body.size,
                        msgtype=media_type if media_type in limits.UPLOAD_TYPES else None,
                        payload={"type": media_type[:32], "filename": filename},
                        content_bytes=err.actual,
                        limit=err.limit,
                    )
                )
        else:
            assert media is not None and data is not None
            media = replace(media, filename=_redact(media.filename, key))
            emulator.storage.add_media(media, data)
            answer = Answer.ok(
                type=media.type, media_id=media.media_id, created_at=str(int(media.created_at))
            )
        logger.info(
            "upload group=%s key=%s type=%s errcode=%s",
            group_id, mask_key(key) if key else "(none)", media_type[:16], answer.errcode,
        )  # fmt: skip
        return answer.to_response()
    except Exception:
        logger.exception("upload failed inside the emulator (key %s)", mask_key(key))
        err = WeComError.of(limits.ERRCODE_SYSTEM_BUSY)
        return Answer.error(err, ip, emulator.settings.clock()).to_response()


async def _media_part(request: Request, data: bytes) -> tuple[str, str | None, bytes] | None:
    """The ``media`` file part of a multipart body: (filename, content type, bytes)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        return None
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=8, max_fields=32)
    except Exception:  # any malformed multipart: there is no usable media part
        return None
    try:
        item = form.get("media")
        if not isinstance(item, UploadFile):
            return None
        content = await item.read()
        return _clean_filename(item.filename), item.content_type, content
    finally:
        await form.close()


def _clean_filename(name: str | None) -> str:
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    return (base or "media")[:_FILENAME_MAX]


def _process_upload(
    emulator: Emulator,
    group_id: str | None,
    media_type: str,
    body: Body,
    part: tuple[str, str | None, bytes] | None,
) -> tuple[WeComError | None, Media | None, bytes | None]:
    if not body.over and (part is None or not part[2]):
        return WeComError.of(limits.ERRCODE_EMPTY_MEDIA), None, None
    if group_id is None:
        return WeComError(limits.ERRCODE_INVALID_PARAMETER, "invalid param 'key'"), None, None
    if media_type not in limits.UPLOAD_TYPES:
        return WeComError.of(limits.ERRCODE_INVALID_MEDIA_TYPE), None, None
    cap = limits.VOICE_MAX_BYTES if media_type == "voice" else limits.FILE_MAX_BYTES
    if body.over or part is None:
        return invalid_parameter("media", f"exceed max length {cap}", limit=cap,
                                 actual=body.size), None, None  # fmt: skip
    filename, content_type, data = part
    size = len(data)
    if size <= limits.UPLOAD_MIN_BYTES_EXCLUSIVE:
        floor = limits.UPLOAD_MIN_BYTES_EXCLUSIVE + 1
        return invalid_parameter("media", f"below min length {floor}", limit=floor,
                                 actual=size), None, None  # fmt: skip
    if size > cap:
        return invalid_parameter("media", f"exceed max length {cap}", limit=cap,
                                 actual=size), None, None  # fmt: skip
    if media_type == "voice":
        seconds = amr_duration(data)
        if seconds is None:
            return invalid_parameter("media", "invalid format, voice must be AMR"), None, None
        if seconds > limits.VOICE_MAX_SECONDS:
            return (
                invalid_parameter("media", f"exceed max duration {limits.VOICE_MAX_SECONDS}s"),
                None,
                None,
            )
    media = Media(
        media_id=secrets.token_urlsafe(33),
        group_id=group_id,
        type=media_type,
        filename=filename,
        content_type=content_type,
        size=size,
        md5=hashlib.md5(data).hexdigest(),
        created_at=emulator.settings.clock(),
    )
    return None, media, data


def amr_duration(data: bytes) -> float | None:
    """Playing time of an AMR (narrow- or wide-band) file in seconds; None if not AMR.

    Counts the 20 ms frames of the storage format (RFC 4867 section 5); a short last frame
    is tolerated, a reserved frame type is not.
    """
    if data.startswith(_AMR_NB):
        pos, sizes, reserved = len(_AMR_NB), _AMR_NB_SIZES, _AMR_NB_RESERVED
    elif data.startswith(_AMR_WB):
        pos, sizes, reserved = len(_AMR_WB), _AMR_WB_SIZES, _AMR_WB_RESERVED
    else:
        return None
    frames = 0
    while pos < len(data):
        frame_type = (data[pos] >> 3) & 0x0F
        if frame_type in reserved:
            return None
        pos += 1 + sizes[frame_type]
        frames += 1
    return frames * _AMR_FRAME_SECONDS


# What a captive portal or an egress proxy's login page looks like to an API client.
_PORTAL_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Network login required</title></head>\n"
    "<body><h1>Sign in to continue</h1><p>This network requires you to log in before "
    "reaching the internet (injected by the wecom-bot emulator).</p></body></html>\n"
)


async def _apply_fault(
    emulator: Emulator, request: Request, group_id: str, fault: Fault, endpoint: str, size: int
) -> Response | None:
    """Act out an injected fault; None means "go on and process the request"."""
    logger.info("injecting fault %s into group %s", fault.to_json(), group_id)
    if fault.kind is FaultKind.DELAY:
        emulator.storage.count_fault(group_id)
        await asyncio.sleep((fault.delay_ms or 0) / 1000)
        return None
    if fault.kind is FaultKind.HTTP_STATUS:
        emulator.storage.count_fault(group_id)
        status = fault.status or 500
        return PlainTextResponse(f"{status} (injected by the wecom-bot emulator)\n", status)
    if fault.kind is FaultKind.NOT_JSON:
        emulator.storage.count_fault(group_id)
        if fault.body == "empty":
            return Response(b"", 200)
        return HTMLResponse(_PORTAL_PAGE, 200)
    if fault.kind is FaultKind.DROP:
        emulator.storage.count_fault(group_id)
        if await _drop_connection(request):
            return Response()
        logger.warning("cannot drop the connection on this server; answering 502 instead")
        return PlainTextResponse("502 (injected drop)\n", 502, headers={"Connection": "close"})
    errcode = fault.errcode if fault.errcode is not None else limits.ERRCODE_SYSTEM_BUSY
    now = emulator.settings.clock()
    err = WeComError(errcode, fault.errmsg or ERRMSG_TEXT.get(errcode, "injected fault"))
    answer = Answer.error(err, client_ip(request), now)
    emulator.record(
        Entry(
            group_id=group_id,
            received_at=now,
            endpoint=endpoint,
            status="rejected",
            errcode=errcode,
            errmsg=answer.errmsg,
            bytes=size,
            injected=True,
        )
    )
    return answer.to_response()


async def _drop_connection(request: Request) -> bool:
    """Close the TCP connection without answering. Needs uvicorn (the CLI's server).

    ASGI has no "abort" message, so this reaches the connection's transport through the
    server's receive callable; an app that returns without answering would get a 500 instead.
    """
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return False
    transport.abort()
    try:
        async with asyncio.timeout(1.0):
            while (await request.receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass
    return True
