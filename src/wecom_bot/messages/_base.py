"""The base class of every message model and the translation of pydantic errors."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import PydanticCustomError

from ..errors import MessageValidationError, Rule, ValidationIssue
from ..limits import utf8_len


class TruncatedWarning(UserWarning):
    """A field was cut to its byte limit, as the WeCom server itself would do."""


_PYDANTIC_RULES: dict[str, Rule] = {
    "missing": Rule.REQUIRED,
    "extra_forbidden": Rule.UNKNOWN_FIELD,
    "too_long": Rule.MAX_ITEMS,
    "too_short": Rule.MIN_ITEMS,
    "literal_error": Rule.CHOICE,
    "enum": Rule.CHOICE,
    "union_tag_invalid": Rule.UNKNOWN_MSGTYPE,
    "union_tag_not_found": Rule.UNKNOWN_MSGTYPE,
    "greater_than_equal": Rule.RANGE,
    "less_than_equal": Rule.RANGE,
    "greater_than": Rule.RANGE,
    "less_than": Rule.RANGE,
}


def _field_path(loc: tuple[int | str, ...], prefix: str) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


def issues_from_pydantic(exc: ValidationError, prefix: str, skip: int = 0) -> list[ValidationIssue]:
    """Turn a pydantic error into issues whose field paths follow the API's JSON layout."""
    issues = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        ctx = err.get("ctx") or {}
        rule = ctx.get("rule") or _PYDANTIC_RULES.get(kind)
        loc = tuple(err["loc"][skip:])
        if ctx.get("field"):
            loc += tuple(str(ctx["field"]).split("."))
        if rule is None:
            rule = Rule.TYPE if kind.endswith("_type") or kind.endswith("_parsing") else kind
        limit = ctx.get("limit", ctx.get("max_length", ctx.get("min_length")))
        actual = ctx.get("actual", ctx.get("actual_length"))
        message = err["msg"]
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a field of this message type"
        elif kind == "too_long":
            message = f"has {actual} items, at most {limit} allowed"
        elif kind == "too_short":
            message = f"has {actual} items, at least {limit} required"
        issues.append(
            ValidationIssue(
                field=_field_path(loc, prefix),
                rule=str(rule),
                message=message,
                limit=limit,
                actual=actual,
            )
        )
    return issues


def fail(
    rule: Rule, message: str, *, limit: Any = None, actual: Any = None, field: str = ""
) -> PydanticCustomError:
    """Build the error a validator raises; ``message`` should quote the limit and actual value.

    ``field`` names the offending field when a whole-model check raises it.
    """
    return PydanticCustomError(
        str(rule), message, {"rule": str(rule), "limit": limit, "actual": actual, "field": field}
    )


def check_content(value: str, max_bytes: int) -> str:
    """Reject empty content and content over ``max_bytes`` UTF-8 bytes."""
    if not value:
        raise fail(Rule.EMPTY, "must not be empty")
    if len(value) * 4 > max_bytes:  # a shorter string cannot exceed the limit
        size = utf8_len(value)
        if size > max_bytes:
            raise fail(
                Rule.MAX_BYTES,
                f"is {size} bytes (UTF-8), limit {max_bytes} bytes; over by {size - max_bytes}",
                limit=max_bytes,
                actual=size,
            )
    return value


def check_string_list(value: Any) -> Any:
    """Refuse a bare string where a list of strings belongs; accept a tuple as a list.

    ``list("alice")`` is ``["a", "l", "i", "c", "e"]``: a string passed for a list would
    otherwise mention five people who do not exist.
    """
    if isinstance(value, str | bytes):
        shown = repr(value)
        raise fail(Rule.TYPE, f"must be a list of strings, not the string {shown}: use [{shown}]")
    if isinstance(value, tuple):
        return list(value)
    return value


def as_list(value: list[str] | tuple[str, ...] | None) -> list[str] | None:
    """A list-of-strings argument as the model's list; anything else is left to the model."""
    return list(value) if isinstance(value, tuple) else value


class _TranslatingMeta(ModelMetaclass):
    # Translating here rather than in __init__ keeps pydantic's fast path for nested models:
    # a model with a custom __init__ is validated through that __init__ everywhere.
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            prefix = getattr(cls, "api_path", "") or cls.__name__
            raise MessageValidationError(issues_from_pydantic(exc, prefix)) from None


class ApiModel(BaseModel, metaclass=_TranslatingMeta):
    """Common configuration: immutable, strict types, unknown fields rejected.

    Building one with invalid values raises :class:`MessageValidationError`.
    """

    # defer_build: a model's validator is built when first used, so a command that sends one
    # type does not pay for building all nine at start-up (issue 27).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)

    api_path: ClassVar[str] = ""
    """Where this object sits in the API JSON, prefixed to field paths in errors."""

    def _body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Message(ApiModel):
    """A message the webhook can send; subclasses are one per API message type.

    Build one with keyword arguments (``TextMessage(content="hi")``) or from a raw API
    payload with :func:`wecom_bot.parse_message`. Invalid input raises
    :class:`wecom_bot.MessageValidationError` naming the field, the rule, the limit and
    the actual value.
    """

    msgtype: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "msgtype" in cls.__dict__:
            cls.api_path = cls.msgtype

    @model_validator(mode="before")
    @classmethod
    def _unwrap_payload(cls, data: Any) -> Any:
        """Accept the API layout ``{"msgtype": T, T: {...}}`` as well as flat fields."""
        if isinstance(data, dict) and data.get("msgtype") == cls.msgtype:
            body = data.get(cls.msgtype)
            rest = {k: v for k, v in data.items() if k not in ("msgtype", cls.msgtype)}
            if isinstance(body, dict):
                return {**body, **rest}
            if body is None:
                return rest
            raise fail(Rule.TYPE, f"'{cls.msgtype}' must be a JSON object")
        return data

    def to_payload(self) -> dict[str, Any]:
        """The exact JSON object the API expects, without null fields."""
        return {"msgtype": self.msgtype, self.msgtype: self._body()}

    def to_json(self) -> bytes:
        """The request body: compact JSON in UTF-8 (not ASCII-escaped)."""
        # pydantic's own serializer writes the body straight to UTF-8 JSON, several times
        # faster than model_dump + json.dumps; the envelope is two fixed keys.
        body = self.__pydantic_serializer__.to_json(self, exclude_none=True)
        kind = self.msgtype.encode()
        return b'{"msgtype":"' + kind + b'","' + kind + b'":' + body + b"}"

    def advisories(self) -> list[str]:
        """Display advice the message ignores (lengths WeCom recommends but does not enforce)."""
        return []
