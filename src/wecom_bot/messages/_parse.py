"""``parse_message``: validate a raw API payload into the matching message model."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from ..errors import MessageValidationError, Rule, ValidationIssue
from ._base import Message, issues_from_pydantic
from .cards import NewsNoticeCard, TextNoticeCard
from .content import MarkdownMessage, MarkdownV2Message, TextMessage
from .media import FileMessage, ImageMessage, VoiceMessage
from .news import NewsMessage

_SIMPLE = (TextMessage, MarkdownMessage, MarkdownV2Message, ImageMessage, NewsMessage,
           FileMessage, VoiceMessage)  # fmt: skip
MSGTYPES: tuple[str, ...] = tuple(m.msgtype for m in _SIMPLE) + ("template_card",)
"""Every ``msgtype`` the webhook accepts."""


def _tag(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    msgtype = payload.get("msgtype")
    if msgtype == "template_card":
        body = payload.get("template_card")
        card_type = body.get("card_type") if isinstance(body, dict) else None
        return f"template_card:{card_type}"
    return msgtype if isinstance(msgtype, str) else None


_AnyMessage = Annotated[
    Annotated[TextMessage, Tag("text")]
    | Annotated[MarkdownMessage, Tag("markdown")]
    | Annotated[MarkdownV2Message, Tag("markdown_v2")]
    | Annotated[ImageMessage, Tag("image")]
    | Annotated[NewsMessage, Tag("news")]
    | Annotated[FileMessage, Tag("file")]
    | Annotated[VoiceMessage, Tag("voice")]
    | Annotated[TextNoticeCard, Tag("template_card:text_notice")]
    | Annotated[NewsNoticeCard, Tag("template_card:news_notice")],
    Discriminator(_tag),
]


@functools.cache
def _adapter() -> TypeAdapter[Message]:
    # Built on the first parse: it compiles the validators of every message type.
    return TypeAdapter(_AnyMessage)


def parse_message(payload: Any) -> Message:
    """Validate a raw API payload (``{"msgtype": ..., <msgtype>: {...}}``) into a message model.

    Args:
        payload: the decoded JSON body of a send request.

    Returns:
        The matching message model (``TextMessage``, ``TextNoticeCard``, ...).

    Raises:
        MessageValidationError: the payload breaks a rule; ``.issues`` name each field path
            (``text.content``), the rule, the limit and the actual value.
    """
    tag = _tag(payload)
    if tag is None or (tag not in MSGTYPES and not tag.startswith("template_card:")):
        raise MessageValidationError(_msgtype_issue(payload))
    try:
        return _adapter().validate_python(payload)
    except ValidationError as exc:
        if tag.startswith("template_card:") and tag not in (
            "template_card:text_notice",
            "template_card:news_notice",
        ):
            raise MessageValidationError(
                ValidationIssue(
                    field="template_card.card_type",
                    rule=Rule.CHOICE,
                    message="must be text_notice or news_notice",
                    limit=["text_notice", "news_notice"],
                    actual=tag.split(":", 1)[1],
                )
            ) from None
        prefix = tag.split(":", 1)[0]
        raise MessageValidationError(issues_from_pydantic(exc, prefix, skip=1)) from None


def _msgtype_issue(payload: Any) -> ValidationIssue:
    if not isinstance(payload, dict):
        return ValidationIssue(
            field="", rule=Rule.TYPE, message="the payload must be a JSON object"
        )
    msgtype = payload.get("msgtype")
    if msgtype is None:
        return ValidationIssue(field="msgtype", rule=Rule.REQUIRED, message="is required")
    return ValidationIssue(
        field="msgtype",
        rule=Rule.UNKNOWN_MSGTYPE,
        message=f"{msgtype!r} is not a message type; use one of {', '.join(MSGTYPES)}",
        limit=list(MSGTYPES),
        actual=msgtype,
    )
