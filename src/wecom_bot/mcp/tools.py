"""The MCP tools: every message type through the SDK's models, limiter and client.

Each tool validates with the message models before anything is sent, and answers either a
small structured report or a tool error (``is_error``) whose text says what to change: the
field and the rule, how many bytes over the limit, the errcode and advice, or how long to
wait. No text that leaves a tool can hold a webhook key: every error passes through
:func:`wecom_bot.masking.redact` with the keys the server holds.

Text goes into the request exactly once: the agent's string becomes the model's field and
the model serialises it to JSON, so quotes, newlines and ``<font>`` tags arrive as written.
"""

from __future__ import annotations

import base64 as b64
import binascii
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel, Field, TypeAdapter

from .. import limits
from ..errors import (
    ConfigError,
    DeliveryError,
    MessageValidationError,
    RateLimitWaitExceeded,
    WeComAPIError,
)
from ..messages import (
    MSGTYPES,
    FileMessage,
    ImageMessage,
    MarkdownMessage,
    MarkdownV2Message,
    Message,
    NewsMessage,
    TemplateCard,
    TextMessage,
    VoiceMessage,
    parse_message,
)
from ..split import split_content, split_to_messages
from .bots import BotEntry, BotRegistry
from .files import FileRefused, MediaFiles

__all__ = [
    "TOOL_NAMES",
    "BotInfo",
    "BotList",
    "Delivery",
    "Preview",
    "SizeCheck",
    "WeComTools",
]

logger = logging.getLogger("wecom_bot.mcp")

ContentType = Literal["text", "markdown", "markdown_v2"]

TOOL_NAMES = (
    "send_text",
    "send_markdown",
    "send_markdown_v2",
    "send_image",
    "send_news",
    "send_file",
    "send_voice",
    "send_template_card",
    "preview_message",
    "list_bots",
)
"""The tools the server offers, in listing order."""

_BYTES_NOTE = (
    "Limits count UTF-8 bytes, not characters: ASCII is 1 byte, most Chinese characters "
    "3 bytes, an emoji 4."
)

# -- parameter descriptions: they are what teaches the agent the rules ------------------------

_BOT = Annotated[
    str | None,
    Field(
        description="Name of the bot (robot) to post with, from list_bots; omit for the "
        "default bot."
    ),
]
_SPLIT = Annotated[
    bool,
    Field(
        description="When the content is over the byte limit: true sends it as several "
        "numbered messages cut at paragraph/line/word boundaries (markdown kept valid); "
        "false (default) returns an error saying how many bytes it is over."
    ),
]
_TEXT_CONTENT = Annotated[
    str,
    Field(
        description="The text, shown as is (no markup). At most "
        f"{limits.TEXT_CONTENT_MAX_BYTES} UTF-8 bytes. {_BYTES_NOTE}"
    ),
]
_MENTIONS = Annotated[
    list[str] | None,
    Field(description='WeCom userids to @mention; "@all" mentions everyone in the group.'),
]
_MOBILE_MENTIONS = Annotated[
    list[str] | None,
    Field(description='Mobile numbers to @mention; "@all" mentions everyone in the group.'),
]
_MARKDOWN_CONTENT = Annotated[
    str,
    Field(
        description="Markdown in WeCom's legacy subset, at most "
        f"{limits.MARKDOWN_CONTENT_MAX_BYTES} UTF-8 bytes. Rendered: headings '# ' to "
        "'###### ' (a space after the hashes), **bold**, [text](url) links, `inline code` "
        "(one line), '> ' quotes, <font color=\"info\">green</font>, "
        '<font color="comment">grey</font>, <font color="warning">orange-red</font>, and '
        "<@userid> to mention someone. Not rendered: tables, lists, images, code blocks, "
        f"italics (use send_markdown_v2 for those). {_BYTES_NOTE}"
    ),
]
_MARKDOWN_V2_CONTENT = Annotated[
    str,
    Field(
        description="Markdown v2, at most "
        f"{limits.MARKDOWN_V2_CONTENT_MAX_BYTES} UTF-8 bytes. Rendered: headings, *italic*, "
        "**bold**, lists (nested) and ordered lists, '> ' quotes (nested '>>'), [text](url) "
        "links, ![](url) images, '---' rules, `inline code`, ``` code blocks, tables with "
        ":--/:-:/--: alignment. Not supported: <font> colours and <@userid> mentions (use "
        "send_markdown for those). WeCom clients older than 4.1.36 show it as plain text. "
        f"{_BYTES_NOTE}"
    ),
]
_IMAGE_PATH = Annotated[
    str | None,
    Field(
        description="Path of a JPG or PNG file under a directory the server allows "
        "(--allow-dir); give path or base64."
    ),
]
_IMAGE_BASE64 = Annotated[
    str | None,
    Field(
        description="The JPG or PNG bytes in standard base64 (give path or base64). The md5 "
        "is computed for you."
    ),
]
_ARTICLES = Annotated[
    list[dict[str, Any]],
    Field(
        description=f"{limits.NEWS_MIN_ARTICLES} to {limits.NEWS_MAX_ARTICLES} articles, the "
        "first shown large. Each needs title and url; description and picurl (a JPG/PNG URL, "
        f"best 1068x455 for the first, 150x150 for others) are optional. A title over "
        f"{limits.NEWS_TITLE_MAX_BYTES} bytes or a description over "
        f"{limits.NEWS_DESCRIPTION_MAX_BYTES} bytes is cut (WeCom does the same)."
    ),
]
_FILE_PATH = Annotated[
    str,
    Field(
        description="Path of the file, under a directory the server allows (--allow-dir); "
        "uploaded, then sent. More than "
        f"{limits.UPLOAD_MIN_BYTES_EXCLUSIVE} bytes, at most {limits.FILE_MAX_BYTES} bytes "
        "(20 MiB)."
    ),
]
_VOICE_PATH = Annotated[
    str,
    Field(
        description="Path of an AMR recording (starts with '#!AMR') under a directory the "
        "server allows (--allow-dir), at most "
        f"{limits.VOICE_MAX_BYTES} bytes (2 MiB) and {limits.VOICE_MAX_SECONDS} s; uploaded, "
        "then sent."
    ),
]
_FILENAME = Annotated[
    str | None,
    Field(description="The file name shown in the chat; default: the file's own name."),
]
_CARD = Annotated[
    dict[str, Any],
    Field(
        description="The template card object, as in the API's 'template_card' (without "
        "msgtype). card_type 'text_notice' or 'news_notice'. card_action is required "
        "({type: 1, url} or {type: 2, appid}). text_notice needs main_title.title or "
        "sub_title_text; news_notice needs main_title.title. At most "
        f"{limits.HORIZONTAL_CONTENT_MAX_ITEMS} horizontal_content_list rows, "
        f"{limits.JUMP_LIST_MAX_ITEMS} jump_list links, {limits.VERTICAL_CONTENT_MAX_ITEMS} "
        "vertical_content_list blocks; card_image.aspect_ratio 1.3 to 2.25. Display lengths "
        "over WeCom's advice (e.g. main_title.title 26 characters) are sent but reported."
    ),
]
_PAYLOAD = Annotated[
    dict[str, Any],
    Field(
        description='A complete API payload, e.g. {"msgtype": "text", "text": '
        '{"content": "hi"}}. msgtype is one of ' + ", ".join(MSGTYPES) + "."
    ),
]


# -- results ------------------------------------------------------------------------------


class Delivery(BaseModel):
    """What a send tool did."""

    sent: int = Field(description="Messages WeCom accepted (errcode 0).")
    bot: str = Field(description="The bot that posted.")
    key: str = Field(description="Its key, masked.")
    msgtype: str
    content_bytes: list[int] | None = Field(
        default=None, description="UTF-8 bytes of each message's content (content types)."
    )
    media_id: str | None = Field(default=None, description="The upload's media_id (file/voice).")
    notes: list[str] = Field(default_factory=list, description="Advice that did not stop the send.")


class SizeCheck(BaseModel):
    """One measured size against its limit."""

    field: str
    bytes: int
    limit: int
    fits: bool


class Preview(BaseModel):
    """A validated message that was not sent."""

    sent: bool = Field(default=False, description="Always false: preview sends nothing.")
    msgtype: str
    body: str = Field(description="The exact JSON request body that would be sent.")
    body_bytes: int = Field(description="Size of the body in UTF-8 bytes.")
    sizes: list[SizeCheck] = Field(description="The limited parts, measured in bytes.")
    advisories: list[str] = Field(description="Display advice WeCom does not enforce (characters).")
    notes: list[str] = Field(description="Changes WeCom would make (e.g. a title cut).")


class BotInfo(BaseModel):
    """A configured bot, key masked."""

    name: str
    key: str | None
    base_url: str | None
    source: str
    default: bool
    available: bool
    error: str | None


class BotList(BaseModel):
    """The bots and the limits that apply to each."""

    bots: list[BotInfo]
    default: str | None
    rate: str = Field(description="Messages allowed per key and window.")
    max_wait_seconds: float = Field(description="How long a call waits for a free slot.")


# -- schemas from the message models --------------------------------------------------------


def _adopt_schema(tool: Tool, param: str, schema: dict[str, Any]) -> None:
    """Publish ``schema`` (from a message model) for ``param`` of ``tool``.

    The tool's own description of the parameter is kept (it teaches the limits); the
    model's ``$defs`` move to the root so that their ``$ref`` pointers resolve.
    """
    schema = dict(schema)
    defs = schema.pop("$defs", None)
    properties: dict[str, Any] = tool.parameters["properties"]
    current = properties[param]
    adopted = {k: v for k, v in schema.items() if k != "title"}
    for keep in ("description", "default"):
        if keep in current:
            adopted[keep] = current[keep]
    if "anyOf" in current and any(s.get("type") == "null" for s in current["anyOf"]):
        if not (adopted.get("anyOf") and any(s.get("type") == "null" for s in adopted["anyOf"])):
            adopted = {
                "anyOf": [{k: v for k, v in adopted.items() if k not in ("description",
                                                                         "default")},
                          {"type": "null"}],
                **{k: adopted[k] for k in ("description", "default") if k in adopted},
            }  # fmt: skip
    properties[param] = adopted
    if defs:
        tool.parameters.setdefault("$defs", {}).update(defs)


def _field(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    field: dict[str, Any] = dict(schema["properties"][name])
    if "$defs" in schema:
        field["$defs"] = schema["$defs"]
    return field


# -- the tools ----------------------------------------------------------------------------------


class WeComTools:
    """The tool implementations over one :class:`BotRegistry`.

    Args:
        registry: the bots, their clients and the shared limiter.
        files: the directories the media tools may read (none when omitted).
    """

    def __init__(self, registry: BotRegistry, files: MediaFiles | None = None) -> None:
        self.registry = registry
        self.files = files or MediaFiles()

    # The public methods below are the tools; their docstrings are the tool descriptions.

    async def send_text(
        self,
        content: _TEXT_CONTENT,
        mentioned_list: _MENTIONS = None,
        mentioned_mobile_list: _MOBILE_MENTIONS = None,
        bot: _BOT = None,
        split: _SPLIT = False,
    ) -> Delivery:
        """Send a plain-text message to a WeCom group, optionally @mentioning people or @all.

        At most 2048 UTF-8 bytes per message; set split=true to send longer text as
        several messages (mentions go on the first).
        """
        return await self._send_content(
            "text", content, bot, split, mentioned_list, mentioned_mobile_list
        )

    async def send_markdown(
        self, content: _MARKDOWN_CONTENT, bot: _BOT = None, split: _SPLIT = False
    ) -> Delivery:
        """Send markdown in WeCom's legacy subset (coloured text with <font>, <@userid> mentions).

        At most 4096 UTF-8 bytes per message. Use send_markdown_v2 for tables, lists and
        code blocks.
        """
        return await self._send_content("markdown", content, bot, split)

    async def send_markdown_v2(
        self, content: _MARKDOWN_V2_CONTENT, bot: _BOT = None, split: _SPLIT = False
    ) -> Delivery:
        """Send markdown v2: tables, lists, code blocks, images; no colours, no mentions.

        At most 4096 UTF-8 bytes per message.
        """
        return await self._send_content("markdown_v2", content, bot, split)

    async def send_image(
        self, path: _IMAGE_PATH = None, base64: _IMAGE_BASE64 = None, bot: _BOT = None
    ) -> Delivery:
        """Send a JPG or PNG image (at most 2 MiB before base64), from a file path or base64."""
        with self._errors():
            if (path is None) == (base64 is None):
                raise ToolError("give exactly one of path or base64")
            if path is not None:
                data = self._read_file(path, limits.IMAGE_MAX_BYTES)
            else:
                try:
                    data = b64.b64decode(base64 or "", validate=True)
                except (binascii.Error, ValueError):
                    raise ToolError("base64: not valid standard base64") from None
            message = ImageMessage.from_bytes(data)
            return await self._deliver(bot, "image", [message], notes=[])

    async def send_news(self, articles: _ARTICLES, bot: _BOT = None) -> Delivery:
        """Send a news message: 1 to 8 link cards with title, description and picture."""
        with self._errors():
            message, notes = _validated({"msgtype": "news", "news": {"articles": articles}})
            return await self._deliver(bot, "news", [message], notes=notes)

    async def send_file(
        self, path: _FILE_PATH, filename: _FILENAME = None, bot: _BOT = None
    ) -> Delivery:
        """Upload a file (at most 20 MiB) and send it to the group as a file message."""
        return await self._send_media("file", path, filename, bot)

    async def send_voice(
        self, path: _VOICE_PATH, filename: _FILENAME = None, bot: _BOT = None
    ) -> Delivery:
        """Upload an AMR voice recording (at most 2 MiB, 60 s) and send it as a voice message."""
        return await self._send_media("voice", path, filename, bot)

    async def send_template_card(self, card: _CARD, bot: _BOT = None) -> Delivery:
        """Send a template card (text_notice or news_notice): title, key figures, links, action."""
        with self._errors():
            if "card_type" not in card:
                card = {"card_type": "text_notice", **card}
            message, notes = _validated({"msgtype": "template_card", "template_card": card})
            return await self._deliver(
                bot, "template_card", [message], notes=notes + message.advisories()
            )

    async def preview_message(self, payload: _PAYLOAD) -> Preview:
        """Validate any message payload and show the exact JSON and its sizes; sends nothing.

        Use it to check a message against WeCom's limits (UTF-8 bytes) before sending it.
        """
        with self._errors():
            message, notes = _validated(payload)
            body = message.to_json()
            return Preview(
                msgtype=message.msgtype,
                body=body.decode("utf-8"),
                body_bytes=len(body),
                sizes=_sizes(message),
                advisories=message.advisories(),
                notes=notes,
            )

    async def list_bots(self) -> BotList:
        """List the bots this server can post with: names and masked keys (never the keys)."""
        registry = self.registry
        return BotList(
            bots=[BotInfo.model_validate(item) for item in registry.describe()],
            default=registry.default,
            rate=str(registry.limiter.rate),
            max_wait_seconds=registry.max_wait,
        )

    # -- shared paths ------------------------------------------------------------------------

    async def _send_content(
        self,
        msgtype: ContentType,
        content: str,
        bot: str | None,
        split: bool,
        mentioned_list: list[str] | None = None,
        mentioned_mobile_list: list[str] | None = None,
    ) -> Delivery:
        with self._errors():
            limit = limits.CONTENT_LIMITS[msgtype]
            size = limits.utf8_len(content)
            notes: list[str] = []
            if size > limit and not split:
                parts = len(split_content(content, limit, syntax=msgtype, markers=True))
                raise ToolError(
                    f"content is {size} bytes (UTF-8), over the {msgtype} limit of {limit} "
                    f"bytes by {size - limit} bytes. Nothing was sent. Shorten it, or call "
                    f"again with split=true to send it as {parts} messages."
                )
            messages: list[Message]
            if size > limit:
                messages = split_to_messages(
                    msgtype,
                    content,
                    mentioned_list=mentioned_list,
                    mentioned_mobile_list=mentioned_mobile_list,
                    markers=True,
                )
                notes.append(f"content of {size} bytes was split into {len(messages)} messages")
            elif msgtype == "text":
                messages = [
                    TextMessage(
                        content=content,
                        mentioned_list=mentioned_list,
                        mentioned_mobile_list=mentioned_mobile_list,
                    )
                ]
            elif msgtype == "markdown":
                messages = [MarkdownMessage(content=content)]
            else:
                messages = [MarkdownV2Message(content=content)]
                if "<font" in content or "<@" in content:
                    notes.append(
                        "markdown_v2 shows no <font> colours and no <@userid> mentions; "
                        "use send_markdown for those"
                    )
            return await self._deliver(bot, msgtype, messages, notes=notes)

    async def _send_media(
        self, media_type: Literal["file", "voice"], path: str, filename: str | None, bot: str | None
    ) -> Delivery:
        with self._errors():
            entry = self.registry.get(bot)
            limit = limits.FILE_MAX_BYTES if media_type == "file" else limits.VOICE_MAX_BYTES
            data = self._read_file(path, limit)
            # The upload and the send each take a slot: make sure both fit before uploading.
            self._check_room(entry, 2)
            client = self.registry.client(entry)
            upload = await client.upload_media(data, media_type, filename or Path(path).name)
            message: Message = (
                FileMessage(media_id=upload.media_id)
                if media_type == "file"
                else VoiceMessage(media_id=upload.media_id)
            )
            delivery = await self._deliver(bot, media_type, [message], notes=[])
            return delivery.model_copy(update={"media_id": upload.media_id})

    def _read_file(self, path: str, limit: int) -> bytes:
        try:
            return self.files.read(path, limit)
        except FileRefused as exc:
            raise ToolError(str(exc)) from None

    async def _deliver(
        self, bot: str | None, msgtype: str, messages: list[Message], *, notes: list[str]
    ) -> Delivery:
        entry = self.registry.get(bot)
        if len(messages) > 1:
            self._check_room(entry, len(messages))
        client = self.registry.client(entry)
        sent = 0
        try:
            for message in messages:
                await client.send(message)
                sent += 1
        except (RateLimitWaitExceeded, DeliveryError) as exc:
            raise ToolError(self._describe_failure(exc, entry, sent, len(messages))) from None
        content_bytes = [
            limits.utf8_len(m.content)
            for m in messages
            if isinstance(m, TextMessage | MarkdownMessage | MarkdownV2Message)
        ]
        return Delivery(
            sent=sent,
            bot=entry.name,
            key=entry.masked_key,
            msgtype=msgtype,
            content_bytes=content_bytes or None,
            notes=notes,
        )

    def _check_room(self, entry: BotEntry, count: int) -> None:
        rate = self.registry.limiter.rate
        if count > rate.limit:
            raise ToolError(
                f"this needs {count} messages but bot {entry.name!r} may send only "
                f"{rate.limit} per {rate.window:g} s; shorten the content. Nothing was sent."
            )
        eta = self.registry.eta(entry, count)
        if eta > self.registry.max_wait:
            raise ToolError(
                _rate_limited(eta - self.registry.max_wait, entry, self.registry)
                + f" ({count} messages are needed). Nothing was sent."
            )

    def _describe_failure(
        self, exc: RateLimitWaitExceeded | DeliveryError, entry: BotEntry, sent: int, total: int
    ) -> str:
        done = f" {sent} of {total} parts were sent before it." if sent else " Nothing was sent."
        if isinstance(exc, RateLimitWaitExceeded):
            return _rate_limited(exc.retry_after, entry, self.registry) + "." + done
        if isinstance(exc, WeComAPIError):
            if exc.errcode == limits.ERRCODE_RATE_LIMITED:
                wait = max(self.registry.retry_after(entry), 1.0)
                return (
                    f"rate limited, retry after {_seconds(wait)} s: WeCom answered errcode "
                    f"45009 ({exc.errmsg}) for bot {entry.name!r}; another sender may be "
                    f"using the same key.{done}"
                )
            advice = _ADVICE.get(exc.errcode)
            text = (
                f"WeCom rejected the message: errcode {exc.errcode} ({exc.errmsg}) for bot "
                f"{entry.name!r} ({entry.masked_key})."
            )
            return f"{text} {advice}{done}" if advice else text + done
        kind = "try again later" if exc.retryable else "check the bot's base URL"
        return f"delivery failed for bot {entry.name!r}: {exc}; {kind}.{done}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn every failure into a key-safe tool error."""
        try:
            yield
        except ToolError as exc:
            raise ToolError(self._safe(str(exc))) from None
        except MessageValidationError as exc:
            raise ToolError(self._safe(_invalid(exc))) from None
        except ConfigError as exc:
            raise ToolError(self._safe(str(exc))) from None
        except (RateLimitWaitExceeded, DeliveryError) as exc:
            raise ToolError(self._safe(f"{type(exc).__name__}: {exc}")) from None
        except Exception as exc:
            text = self._safe(f"{type(exc).__name__}: {exc}")
            logger.error("unexpected failure in a tool: %s", text)
            raise ToolError(f"unexpected error: {text}") from None

    def _safe(self, text: str) -> str:
        from ..masking import redact

        return redact(text, *self.registry.secrets())

    def tools(self) -> list[Tool]:
        """The MCP tool definitions, input schemas taken from the message models."""
        made: dict[str, Tool] = {}
        for name in TOOL_NAMES:
            fn: Callable[..., Any] = getattr(self, name)
            made[name] = Tool.from_function(fn, name=name, structured_output=True)
        for name, model in (
            ("send_text", TextMessage),
            ("send_markdown", MarkdownMessage),
            ("send_markdown_v2", MarkdownV2Message),
        ):
            for param in model.model_fields:
                _adopt_schema(made[name], param, _field(model, param))
        _adopt_schema(made["send_news"], "articles", _field(NewsMessage, "articles"))
        _adopt_schema(made["send_template_card"], "card", TypeAdapter(TemplateCard).json_schema())
        _adopt_schema(made["preview_message"], "payload", _payload_schema())
        return list(made.values())


# -- helpers ------------------------------------------------------------------------------------

_ADVICE: dict[int, str] = {
    limits.ERRCODE_INVALID_WEBHOOK_URL: "The key is wrong or the robot was removed from the "
    "group: ask the user to check the bot's configuration; retrying will not help.",
    limits.ERRCODE_SYSTEM_BUSY: "WeCom is busy: try again in a little while.",
    limits.ERRCODE_INVALID_PARAMETER: "A field breaks a rule: check it with preview_message.",
    limits.ERRCODE_EMPTY_CONTENT: "The content is empty.",
    limits.ERRCODE_INVALID_MESSAGE_TYPE: "The msgtype is unknown to this WeCom server.",
    limits.ERRCODE_INVALID_MEDIA_ID: "A media_id lives 3 days and only for the robot that "
    "uploaded it: send the file again.",
    limits.ERRCODE_MEDIA_MD5_MISMATCH: "The image data was damaged: send it again.",
}


def _seconds(value: float) -> str:
    # Rounded up, so "retry after" never names a moment that is still too early.
    return f"{math.ceil(max(value, 0.0) * 10) / 10:g}"


def _rate_limited(retry_after: float, entry: BotEntry, registry: BotRegistry) -> str:
    rate = registry.limiter.rate
    return (
        f"rate limited, retry after {_seconds(retry_after)} s: bot {entry.name!r} may send "
        f"{rate.limit} messages per {rate.window:g} s and the next slot is further away than "
        f"this server waits ({registry.max_wait:g} s)"
    )


def _invalid(exc: MessageValidationError) -> str:
    lines = [f"invalid message, nothing was sent: {len(exc.issues)} problem(s)"]
    for issue in exc.issues:
        lines.append(f"- {issue}")
    return "\n".join(lines)


def _validated(payload: Any) -> tuple[Message, list[str]]:
    """Validate an API payload; news truncation warnings become notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = parse_message(payload)
    return message, [str(w.message) for w in caught]


def _check(field: str, size: int, limit: int) -> SizeCheck:
    return SizeCheck(field=field, bytes=size, limit=limit, fits=size <= limit)


def _sizes(message: Message) -> list[SizeCheck]:
    if isinstance(message, TextMessage | MarkdownMessage | MarkdownV2Message):
        limit = limits.CONTENT_LIMITS[message.msgtype]
        return [_check(f"{message.msgtype}.content", limits.utf8_len(message.content), limit)]
    if isinstance(message, ImageMessage):
        return [_check("image (decoded)", len(message.data), limits.IMAGE_MAX_BYTES)]
    checks: list[SizeCheck] = []
    if isinstance(message, NewsMessage):
        for i, article in enumerate(message.articles):
            where = f"news.articles[{i}]"
            title = limits.utf8_len(article.title)
            checks.append(_check(f"{where}.title", title, limits.NEWS_TITLE_MAX_BYTES))
            if article.description is not None:
                desc = limits.utf8_len(article.description)
                checks.append(
                    _check(f"{where}.description", desc, limits.NEWS_DESCRIPTION_MAX_BYTES)
                )
    return checks


def _payload_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"msgtype": {"type": "string", "enum": list(MSGTYPES)}},
        "required": ["msgtype"],
        "additionalProperties": True,
    }
