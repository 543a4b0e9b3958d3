"""WeCom-style error answers: which errcode and errmsg a broken rule gets, and how they look.

Codes and texts follow the table of ``spec/reference.md``. A rule the table does not cover
gets 40058 with a text in the live style that names the field and the rule
(``template_card.card_action missing. invalid Request Parameter``). Every error answer carries
the live tail (``, hint: [...], from ip: ..., more info at ...?e=N``) and repeats the error in
the ``Error-Code`` / ``Error-Msg`` headers; success is exactly ``{"errcode":0,"errmsg":"ok"}``.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response

from .. import limits
from ..errors import MessageValidationError, Rule, ValidationIssue

PARAM_SUFFIX = ". invalid Request Parameter"
MORE_INFO = "https://open.work.weixin.qq.com/devtool/query?e="

ERRMSG_TEXT: dict[int, str] = {
    limits.ERRCODE_OK: "ok",
    limits.ERRCODE_SYSTEM_BUSY: "system busy",
    limits.ERRCODE_INVALID_WEBHOOK_URL: "invalid webhook url",
    limits.ERRCODE_RATE_LIMITED: "api freq out of limit",
    limits.ERRCODE_INVALID_MESSAGE_TYPE: "invalid message type",
    limits.ERRCODE_EMPTY_CONTENT: "empty content",
    limits.ERRCODE_INVALID_PARAMETER: "invalid Request Parameter",
    limits.ERRCODE_EMPTY_MEDIA: "empty media data",
    limits.ERRCODE_INVALID_MEDIA_TYPE: "invalid media type",
    limits.ERRCODE_MEDIA_MD5_MISMATCH: "media md5 not match",
    limits.ERRCODE_INVALID_MEDIA_ID: "invalid media_id",
}
"""The errmsg text (before the tail) of each errcode the webhook uses."""

WRONG_JSON_TEXT = "Warning: wrong json format. invalid message type"
"""A body that is not JSON at all (what sibling WeCom APIs answer, with 40008)."""

REPAIRED_JSON_ERRMSG = "ok. Warning: wrong json format. "
"""The whole errmsg of live's errcode 0 answer to recoverable JSON (trailing space included)."""

_CONTENT_FIELDS = {f"{msgtype}.content" for msgtype in limits.CONTENT_LIMITS}
_MEDIA_ID_FIELDS = {"file.media_id", "voice.media_id"}
_FIELD_SHOWN_MAX = 80

_RULE_PHRASE: dict[str, str] = {
    Rule.REQUIRED: "missing",
    Rule.EMPTY: "empty",
    Rule.MIN_BYTES: "below min length {limit}",
    Rule.MAX_ITEMS: "exceed max count {limit}",
    Rule.MIN_ITEMS: "below min count {limit}",
    Rule.RANGE: "out of range {limit}",
    Rule.CHOICE: "invalid value",
    Rule.TYPE: "invalid type",
    Rule.FORMAT: "invalid format",
    Rule.UNKNOWN_FIELD: "unknown field",
    Rule.NOT_SUPPORTED: "not supported",
}


@dataclass(frozen=True)
class WeComError:
    """An error answer before the tail is added.

    Attributes:
        errcode: the WeCom errcode.
        text: the errmsg text, e.g. ``text.content exceed max length 2048. invalid Request
            Parameter``.
        limit: the limit the request broke, when there is one (shown by the inspection API).
        actual: the request's value for that limit.
    """

    errcode: int
    text: str
    limit: int | None = None
    actual: int | None = None

    @classmethod
    def of(cls, errcode: int) -> WeComError:
        """The error with WeCom's own text for ``errcode``."""
        return cls(errcode, ERRMSG_TEXT.get(errcode, "unknown error"))


def invalid_parameter(field_path: str, phrase: str, **numbers: int | None) -> WeComError:
    """A 40058 error naming the field and the rule, in the live style."""
    return WeComError(
        limits.ERRCODE_INVALID_PARAMETER,
        f"{field_shown(field_path)} {phrase}{PARAM_SUFFIX}".lstrip(),
        limit=numbers.get("limit"),
        actual=numbers.get("actual"),
    )


def error_for_issue(issue: ValidationIssue) -> WeComError:
    """The WeCom answer for one broken rule of a send payload."""
    rule, path = str(issue.rule), issue.field
    if path == "msgtype" or rule == Rule.UNKNOWN_MSGTYPE or (not path and rule == Rule.TYPE):
        return WeComError.of(limits.ERRCODE_INVALID_MESSAGE_TYPE)
    if path in _CONTENT_FIELDS and rule in (Rule.REQUIRED, Rule.EMPTY):
        return WeComError.of(limits.ERRCODE_EMPTY_CONTENT)
    if rule in (Rule.MD5_MISMATCH, Rule.BASE64):
        # A base64 string cut short decodes to other bytes: WeCom reports the md5.
        return WeComError.of(limits.ERRCODE_MEDIA_MD5_MISMATCH)
    if path in _MEDIA_ID_FIELDS and rule in (Rule.REQUIRED, Rule.EMPTY, Rule.TYPE):
        return WeComError.of(limits.ERRCODE_INVALID_MEDIA_ID)
    limit = issue.limit if isinstance(issue.limit, int) else None
    actual = issue.actual if isinstance(issue.actual, int) else None
    if rule == Rule.MAX_BYTES:
        return invalid_parameter(path, f"exceed max length {issue.limit}", limit=limit,
                                 actual=actual)  # fmt: skip
    phrase = _RULE_PHRASE.get(rule, rule.replace("_", " ") or "invalid")
    if "{limit}" in phrase:
        bound = issue.limit
        if isinstance(bound, list | tuple):
            bound = "[" + ",".join(str(b) for b in bound) + "]"
        phrase = phrase.format(limit=bound)
    return invalid_parameter(path, phrase, limit=limit, actual=actual)


def error_for_validation(exc: MessageValidationError) -> WeComError:
    """The WeCom answer for a payload that failed validation (its first issue decides)."""
    if not exc.issues:
        return invalid_parameter("", "invalid")
    return error_for_issue(exc.issues[0])


def full_errmsg(text: str, errcode: int, client_ip: str, now: float) -> str:
    """``text`` with the live tail: hint (Unix time + random digits), client ip, info link."""
    hint = f"{int(now):010d}{secrets.randbelow(10**15):015d}"
    return f"{text}, hint: [{hint}], from ip: {client_ip}, more info at {MORE_INFO}{errcode}"


@dataclass
class Answer:
    """What the emulator answers a webhook call.

    Attributes:
        errcode: 0 for success.
        errmsg: the whole errmsg (with its tail when an error).
        extra: further body fields (``type``, ``media_id``, ``created_at`` of an upload).
    """

    errcode: int
    errmsg: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, errmsg: str = "ok", **extra: Any) -> Answer:
        """The success answer (``errmsg`` other than "ok" only for live's warning answers)."""
        return cls(limits.ERRCODE_OK, errmsg, extra)

    @classmethod
    def error(cls, err: WeComError, client_ip: str, now: float) -> Answer:
        """An error answer with the live tail."""
        return cls(err.errcode, full_errmsg(err.text, err.errcode, client_ip, now))

    def to_response(self) -> Response:
        """HTTP 200, compact JSON in UTF-8; errors repeat themselves in two headers."""
        body = {"errcode": self.errcode, "errmsg": self.errmsg, **self.extra}
        headers = {}
        if self.errcode != limits.ERRCODE_OK:
            headers = {"Error-Code": str(self.errcode), "Error-Msg": header_safe(self.errmsg)}
        return Response(
            content=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            media_type="application/json; charset=UTF-8",
            headers=headers,
        )


_HEADER_SAFE = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


def header_safe(text: str, max_len: int = 1024) -> str:
    """Percent-encode what an HTTP header value cannot carry (non-ASCII, control characters)."""
    return quote(text, safe=_HEADER_SAFE)[:max_len]


def field_shown(path: str) -> str:
    """A field path as an errmsg or warning shows it: cut to a bounded length.

    Field names can come from the request (unknown fields), so they are never shown whole.
    """
    return path if len(path) <= _FIELD_SHOWN_MAX else path[: _FIELD_SHOWN_MAX - 1] + "…"
