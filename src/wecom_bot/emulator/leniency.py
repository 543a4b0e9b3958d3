"""Where live WeCom lets a request through that its documentation would not, and how.

Outside ``--strict`` the emulator accepts such requests as live does, and says so: every rule
here that lets a request pass produces a :class:`Leniency`, stored with the entry as one of its
``warnings`` (shown by the inspection API and under the message on the page). How sure each
rule is, and why, is tabled in ``docs/emulator.md``.

- any ``Content-Type`` (or none) carrying a JSON body;
- JSON that is not strict but recoverable: raw control characters (a newline) inside a string,
  or a missing final ``}``; live answers errcode 0 with ``"ok. Warning: wrong json format. "``;
- fields the API does not define, at the top level or inside the message, are ignored;
- with ``limits="live"``: text over the documented 2048 bytes, up to the 5120 live accepts.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from .. import limits
from ..messages import (
    MSGTYPES,
    FileMessage,
    ImageMessage,
    MarkdownMessage,
    MarkdownV2Message,
    NewsMessage,
    NewsNoticeCard,
    TextMessage,
    TextNoticeCard,
    VoiceMessage,
)
from .validation import field_shown

__all__ = [
    "Leniency",
    "LeniencyKind",
    "content_type_leniency",
    "decode_json",
    "drop_unknown_fields",
    "is_json_content_type",
    "over_documented_text",
    "text_cut_to_documented_limit",
    "top_level_extras",
]

MAX_FIELD_WARNINGS = 10
"""Unknown fields named one by one; any more are counted in one last warning."""

_SIMPLE_MODELS = (TextMessage, MarkdownMessage, MarkdownV2Message, ImageMessage, NewsMessage,
                  FileMessage, VoiceMessage)  # fmt: skip
_BODY_MODELS: dict[str, type[BaseModel]] = {model.msgtype: model for model in _SIMPLE_MODELS}
_CARD_MODELS: dict[str, type[BaseModel]] = {
    "text_notice": TextNoticeCard,
    "news_notice": NewsNoticeCard,
}


class LeniencyKind(StrEnum):
    """What a request relied on that the documentation does not allow."""

    CONTENT_TYPE = "content_type"
    JSON_REPAIRED = "json_repaired"
    UNKNOWN_FIELD = "unknown_field"
    OVER_DOCUMENTED_LIMIT = "over_documented_limit"


@dataclass(frozen=True)
class Leniency:
    """One thing live WeCom lets through here, as an entry's warning.

    Attributes:
        kind: which rule applied.
        message: what it was, in words (quoting the field, the size and the limits).
        code: what ``message`` says, as a stable name the page says in its language (the
            catalogue's ``emulator.server.<code>``) with ``params``.
        params: the values of ``code``'s text.
    """

    kind: LeniencyKind
    message: str
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The warning as entries carry it: ``{"kind": ..., "message": ...}``, and ``code``
        with ``params`` beside the English ``message``."""
        named = {"code": self.code, "params": self.params} if self.code else {}
        return {"kind": str(self.kind), "message": self.message, **named}


def is_json_content_type(content_type: str) -> bool:
    """Whether the media type (parameters aside) is ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def content_type_leniency(content_type: str) -> Leniency | None:
    """A warning for a body sent without ``Content-Type: application/json``, else None."""
    if is_json_content_type(content_type):
        return None
    shown = content_type.split(";", 1)[0].strip()[:80]
    sent = f"Content-Type {shown}" if shown else "no Content-Type"
    return Leniency(
        LeniencyKind.CONTENT_TYPE,
        f"sent with {sent}, not application/json; read as JSON as live WeCom does",
        "leniency.content_type" if shown else "leniency.no_content_type",
        {"type": shown} if shown else {},
    )


def decode_json(data: bytes, *, lenient: bool) -> tuple[Any, Leniency | None]:
    """Decode a send body as JSON, repairing what live WeCom repairs when ``lenient``.

    Args:
        data: the body.
        lenient: also accept raw control characters inside strings and a missing final ``}``.

    Returns:
        The decoded value and, when it had to be repaired, the warning saying how.

    Raises:
        ValueError: not JSON (nor recoverable JSON), not UTF-8, ``NaN``-style constants, or a
            lone surrogate escape.
        RecursionError: nested too deeply.
    """
    text = data.decode("utf-8")
    try:
        return _loads(text, strict=True), None
    except ValueError:
        if not lenient:
            raise
    repairs = []
    try:
        value = _loads(text, strict=False)
    except ValueError:
        text += "}"
        value = _loads(text, strict=False)
        repairs.append("missing final }")
    if not repairs or not _parses_strictly(text):
        repairs.insert(0, "raw control character inside a string")
    # The repairs made, as the page's texts name them.
    one = {
        "raw control character inside a string": "leniency.json_control",
        "missing final }": "leniency.json_brace",
    }
    fixed = one[repairs[0]] if len(repairs) == 1 else "leniency.json_both"
    return value, Leniency(
        LeniencyKind.JSON_REPAIRED,
        f"not strict JSON ({', '.join(repairs)}); accepted as live WeCom does, "
        "which answers errmsg 'ok. Warning: wrong json format. '",
        fixed,
    )


def _parses_strictly(text: str) -> bool:
    try:
        _loads(text, strict=True)
    except ValueError:
        return False
    return True


def _loads(text: str, *, strict: bool) -> Any:
    value = json.loads(text, strict=strict, parse_constant=_no_constants)
    # "\ud800" escapes decode to lone surrogates: not text, and not storable as UTF-8.
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def drop_unknown_fields(payload: Any) -> tuple[Any, list[Leniency]]:
    """``payload`` without the fields its message type does not define, and a warning for each.

    Only a payload whose ``msgtype`` (and ``card_type`` for a card) is known is touched; field
    paths follow the errmsg style (``text.safe``, ``template_card.jump_list[0].color``).
    """
    msgtype = payload.get("msgtype") if isinstance(payload, dict) else None
    if not isinstance(msgtype, str):
        return payload, []
    body = payload.get(msgtype)
    model = _BODY_MODELS.get(msgtype)
    if msgtype == "template_card" and isinstance(body, dict):
        card_type = body.get("card_type")
        model = _CARD_MODELS.get(card_type) if isinstance(card_type, str) else None
    if model is None:
        return payload, []
    dropped = top_level_extras(payload)
    cleaned: dict[str, Any] = {"msgtype": msgtype}
    if msgtype in payload:
        cleaned[msgtype] = _clean(body, model, msgtype, dropped) if isinstance(body, dict) else body
    return cleaned, _field_warnings(dropped)


def top_level_extras(payload: Any) -> list[str]:
    """Keys beside ``msgtype`` and the message object in a payload of a known ``msgtype``.

    The SDK's parser reads fields given at the top level as the message's own; live WeCom is
    not known to, so the emulator never lets them through to it.
    """
    msgtype = payload.get("msgtype") if isinstance(payload, dict) else None
    if not isinstance(msgtype, str) or msgtype not in MSGTYPES:
        return []
    return [str(name) for name in payload if name not in ("msgtype", msgtype)]


def _clean(obj: dict[str, Any], model: type[BaseModel], path: str, dropped: list[str]) -> Any:
    kept: dict[str, Any] = {}
    for name, value in obj.items():
        info = model.model_fields.get(name)
        if info is None:
            dropped.append(f"{path}.{name}")
            continue
        inner, item = _nested_models(info.annotation)
        if inner is not None and isinstance(value, dict):
            value = _clean(value, inner, f"{path}.{name}", dropped)
        elif item is not None and isinstance(value, list):
            value = [
                _clean(v, item, f"{path}.{name}[{i}]", dropped) if isinstance(v, dict) else v
                for i, v in enumerate(value)
            ]
        kept[name] = value
    return kept


def _nested_models(annotation: Any) -> tuple[type[BaseModel] | None, type[BaseModel] | None]:
    """The model of an object field and the item model of a list field, from a type hint."""
    options = (
        get_args(annotation)
        if get_origin(annotation) in (Union, types.UnionType)
        else (annotation,)
    )
    inner = item = None
    for option in options:
        if isinstance(option, type) and issubclass(option, BaseModel):
            inner = option
        elif get_origin(option) is list:
            args = get_args(option)
            if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
                item = args[0]
    return inner, item


def _field_warnings(paths: list[str]) -> list[Leniency]:
    warnings = [
        Leniency(
            LeniencyKind.UNKNOWN_FIELD, f"unknown field {field_shown(p)} ignored",
            "leniency.unknown_field", {"field": field_shown(p)},
        )  # fmt: skip
        for p in paths[:MAX_FIELD_WARNINGS]
    ]
    if len(paths) > MAX_FIELD_WARNINGS:
        more = len(paths) - MAX_FIELD_WARNINGS
        warnings.append(
            Leniency(
                LeniencyKind.UNKNOWN_FIELD, f"{more} more unknown fields ignored",
                "leniency.more_fields", {"count": more},
            )
        )  # fmt: skip
    return warnings


def over_documented_text(size: int) -> Leniency:
    """The warning for text content between the documented and the live limit."""
    return Leniency(
        LeniencyKind.OVER_DOCUMENTED_LIMIT,
        f"text.content is {size} bytes: over the documented limit "
        f"{limits.TEXT_CONTENT_MAX_BYTES}, under the live one {limits.TEXT_CONTENT_LIVE_MAX_BYTES}",
        "leniency.over_documented",
        {
            "size": size, "documented": limits.TEXT_CONTENT_MAX_BYTES,
            "live": limits.TEXT_CONTENT_LIVE_MAX_BYTES,
        },
    )  # fmt: skip


def text_cut_to_documented_limit(payload: Any) -> tuple[Any, str | None]:
    """For live limits: a text payload over the documented limit, cut to it for checking.

    The rest of the message is checked as usual on the cut copy; the caller then checks the
    whole content against the live limit and puts it back.

    Returns:
        The payload to check, and the whole content when it was cut (else None).
    """
    body = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(body, dict) or payload.get("msgtype") != "text":
        return payload, None
    content = body.get("content")
    if not isinstance(content, str) or limits.utf8_len(content) <= limits.TEXT_CONTENT_MAX_BYTES:
        return payload, None
    cut = limits.truncate_utf8(content, limits.TEXT_CONTENT_MAX_BYTES)
    return {**payload, "text": {**body, "content": cut}}, content
