"""``wecom-bot send TYPE ...`` and ``wecom-bot upload``: a thin layer over the SDK.

Each command reads its input (argument, ``--file``, standard input, a JSON/YAML file),
builds validated message models, and hands them to :func:`deliver`, which either prints them
(``--dry-run``) or sends them with a :class:`~wecom_bot.Bot`. Every command shares the
target and delivery options of :class:`SendOptions`; exit codes are mapped in
:mod:`wecom_bot.cli.errors`.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from .. import limits
from ..client import Bot, MediaUpload, SendResult
from ..client._core import check_upload, read_media
from ..errors import DeliveryError, MessageValidationError, Rule
from ..masking import mask_key
from ..messages import (
    FileMessage,
    ImageMessage,
    MarkdownMessage,
    MarkdownV2Message,
    Message,
    NewsMessage,
    TextMessage,
    VoiceMessage,
    image_format,
    parse_message,
)
from ..profiles import Target, resolve_target
from ..ratelimit import Rate, SlidingWindowLimiter, parse_rate
from ..retry import RetryPolicy
from ..split import plan_split, split_to_messages
from .errors import EXIT_CODES_HELP, CliUsageError
from .output import Output, Streams, command_scope

if TYPE_CHECKING:
    import httpx

__all__ = [
    "SendOptions",
    "build_content_messages",
    "deliver",
    "measure",
    "parse_article",
    "prepare_image",
    "read_content",
    "register",
]

ContentType = Literal["text", "markdown", "markdown_v2"]

_TARGET = "Target"
_DELIVERY = "Delivery"
_EPILOG = (
    EXIT_CODES_HELP + "\n\n"
    "Target: --webhook or --key, else --profile NAME, else WECOM_BOT_WEBHOOK / WECOM_BOT_KEY, "
    "else the profile file's default. --base-url (or WECOM_BOT_BASE_URL) points at a proxy "
    "or at 'wecom-bot emulator'."
)
_MEDIA_PLACEHOLDER = "<media_id of the upload>"


# -- options every send command shares ---------------------------------------------------


@dataclass(frozen=True)
class SendOptions:
    """The target and delivery options every ``send`` command (and ``upload``) accepts.

    Attributes:
        webhook: ``--webhook URL``.
        key: ``--key KEY``.
        base_url: ``--base-url URL``.
        profile: ``--profile NAME``.
        config: ``--config PATH`` (the profile file).
        dry_run: print the request instead of sending it.
        json: machine-readable output.
        rate_limit: wait locally to stay within ``rate``.
        rate: the robot's rate (``20/60s``): the local limit with ``rate_limit``, and the wait
            after a 45009 answer.
        retries: how many times to try again after a retryable failure.
        timeout: seconds per request.
    """

    webhook: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    profile: str | None = None
    config: Path | None = None
    dry_run: bool = False
    json: bool = False
    rate_limit: bool = False
    rate: str = "20/60s"
    retries: int = 3
    timeout: float = 10.0

    def parsed_rate(self) -> Rate:
        """The ``--rate`` value.

        Raises:
            CliUsageError: it is not of the form ``20/60s``.
        """
        try:
            return parse_rate(self.rate)
        except ValueError as exc:
            raise CliUsageError(f"--rate: {exc}") from None

    def secrets(self) -> list[str]:
        """Values given on the command line that hold a key (to mask in all output)."""
        return [s for s in (self.key, self.webhook) if s]

    def target(self, streams: Streams) -> Target:
        """Resolve the webhook target (see :func:`wecom_bot.profiles.resolve_target`)."""
        return resolve_target(
            webhook=self.webhook,
            key=self.key,
            base_url=self.base_url,
            profile=self.profile,
            config_path=self.config,
            env=streams.env,
        )

    def bot(self, target: Target, http_client: httpx.Client | None = None) -> Bot:
        """A client for ``target`` with these options' retry policy and rate limit."""
        rate = self.parsed_rate()
        policy = RetryPolicy(max_attempts=self.retries + 1, rate_window=rate.window)
        limiter = SlidingWindowLimiter(rate) if self.rate_limit else None
        return Bot(
            target.key,
            base_url=target.base_url,
            timeout=self.timeout,
            rate_limit=limiter if limiter is not None else False,
            retry=policy,
            http_client=http_client,
        )


def _shared(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


_SHARED_PARAMETERS = [
    _shared(
        "webhook",
        Annotated[str | None, typer.Option(
            "--webhook", metavar="URL", rich_help_panel=_TARGET,
            help="The robot's full webhook URL (it holds the key). Env: WECOM_BOT_WEBHOOK.",
        )],
        None,
    ),
    _shared(
        "key",
        Annotated[str | None, typer.Option(
            "--key", "-k", metavar="KEY", rich_help_panel=_TARGET,
            help="The webhook key alone. Env: WECOM_BOT_KEY.",
        )],
        None,
    ),
    _shared(
        "base_url",
        Annotated[str | None, typer.Option(
            "--base-url", metavar="URL", rich_help_panel=_TARGET,
            help="API base URL: a proxy, or the emulator. Env: WECOM_BOT_BASE_URL.",
        )],
        None,
    ),
    _shared(
        "profile",
        Annotated[str | None, typer.Option(
            "--profile", "-p", metavar="NAME", rich_help_panel=_TARGET,
            help="A named target from the profile file.",
        )],
        None,
    ),
    _shared(
        "config",
        Annotated[Path | None, typer.Option(
            "--config", metavar="PATH", rich_help_panel=_TARGET, dir_okay=False,
            help="Profile file. Env: WECOM_BOT_CONFIG; "
            "default ~/.config/wecom-bot/profiles.yaml.",
        )],
        None,
    ),
    _shared(
        "dry_run",
        Annotated[bool, typer.Option(
            "--dry-run", rich_help_panel=_DELIVERY,
            help="Print the exact JSON and its sizes against the limits; send nothing.",
        )],
        False,
    ),
    _shared(
        "json_output",
        Annotated[bool, typer.Option(
            "--json", rich_help_panel=_DELIVERY, help="Machine-readable output on stdout.",
        )],
        False,
    ),
    _shared(
        "rate_limit",
        Annotated[bool, typer.Option(
            "--rate-limit", rich_help_panel=_DELIVERY,
            help="Wait locally to stay within --rate (for many parts or many calls).",
        )],
        False,
    ),
    _shared(
        "rate",
        Annotated[str, typer.Option(
            "--rate", metavar="N/WINDOW", rich_help_panel=_DELIVERY,
            help="The robot's rate: the local limit with --rate-limit, and the wait after "
            "a 45009 answer.",
        )],
        "20/60s",
    ),
    _shared(
        "retries",
        Annotated[int, typer.Option(
            "--retries", metavar="N", min=0, max=100, rich_help_panel=_DELIVERY,
            help="Retries after a network error, HTTP 5xx, errcode -1 or 45009.",
        )],
        3,
    ),
    _shared(
        "timeout",
        Annotated[float, typer.Option(
            "--timeout", metavar="SECONDS", min=0.1, rich_help_panel=_DELIVERY,
            help="Seconds to wait for each answer.",
        )],
        10.0,
    ),
]  # fmt: skip


def _with_send_options(func: Callable[..., None]) -> Callable[..., None]:
    """Give a command the shared options; it receives them packed as ``opts: SendOptions``.

    Typer builds a command's options from its signature, so the wrapper presents the
    command's own parameters followed by the shared ones.
    """
    own = inspect.signature(func, eval_str=True)
    params = [p for p in own.parameters.values() if p.name != "opts"]
    names = [p.name for p in _SHARED_PARAMETERS]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        shared = {name: kwargs.pop(name) for name in names}
        shared["json"] = shared.pop("json_output")
        func(*args, opts=SendOptions(**shared), **kwargs)

    signature = own.replace(parameters=params + _SHARED_PARAMETERS)
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return wrapper


def _help(summary: str, example: str) -> str:
    return f"{summary}\n\nExample:  {example}"


# -- input ---------------------------------------------------------------------------------


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def read_content(streams: Streams, content: str | None, file: str | None) -> str:
    """The content of a text-like message: the argument, ``--file`` or standard input.

    ``-`` as the argument or the file means standard input. Trailing newlines are dropped
    (``echo`` adds one).

    Raises:
        CliUsageError: both an argument and ``--file``, an unreadable file, or no content
            while standard input is a terminal.
    """
    if content is not None and file is not None:
        raise CliUsageError("give the content as an argument or with --file, not both")
    if file is not None and file != "-":
        path = Path(file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CliUsageError(f"--file: {path} is not UTF-8 text") from None
        except OSError as exc:
            raise CliUsageError(f"--file: cannot read {path}: {exc.strerror}") from None
    elif content is not None and content != "-":
        text = content
    else:
        if content is None and file is None and _isatty(streams.stdin):
            raise CliUsageError(
                "no content: give it as an argument, with --file PATH, or on standard input "
                "(echo hi | wecom-bot send text)"
            )
        text = streams.stdin.read()
    return text.rstrip("\r\n")


def _read_document(streams: Streams, path: str, what: str) -> Any:
    """A JSON or YAML document from a file (``-``: standard input)."""
    import yaml

    name = "standard input" if path == "-" else path
    if path == "-":
        text = streams.stdin.read()
    else:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CliUsageError(f"{what}: {name} is not UTF-8 text") from None
        except OSError as exc:
            raise CliUsageError(f"{what}: cannot read {name}: {exc.strerror}") from None
    if path.lower().endswith((".yaml", ".yml")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1})" if mark is not None else ""
            raise CliUsageError(f"{what}: {name} is not valid YAML{at}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if path.lower().endswith(".json") or path == "-":
            raise CliUsageError(
                f"{what}: {name} is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise CliUsageError(f"{what}: {name} is neither JSON nor YAML") from None


# -- building messages ----------------------------------------------------------------------


def build_content_messages(
    msgtype: ContentType,
    content: str,
    *,
    mentions: Sequence[str] = (),
    mobiles: Sequence[str] = (),
    split: bool = False,
    markers: bool = False,
) -> list[Message]:
    """Build the text / markdown / markdown_v2 message(s) for ``content``.

    Args:
        msgtype: the message type.
        content: the content.
        mentions: userids (or ``@all``): text's ``mentioned_list``; appended to markdown
            as ``<@userid>``; markdown_v2 has none.
        mobiles: mobiles (or ``@all``) for text's ``mentioned_mobile_list``.
        split: send content over the limit as several messages instead of failing.
        markers: number split parts ``(i/n)``.

    Returns:
        One message, or the parts in sending order (mentions in the first one).

    Raises:
        CliUsageError: the content is over the limit without ``split`` (the message says by
            how many bytes), or mentions are asked of a type that has none.
        MessageValidationError: the content breaks another rule (it is empty, say).
    """
    if msgtype == "markdown_v2" and (mentions or mobiles):
        raise CliUsageError(
            "markdown_v2 cannot mention anyone (WeCom has no mentions in markdown_v2); "
            "use 'send markdown --mention USERID' or 'send text --mention USERID'"
        )
    if msgtype == "markdown" and mobiles:
        raise CliUsageError("markdown mentions userids only (<@userid>); drop --mention-mobile")
    limit = limits.CONTENT_LIMITS[msgtype]
    suffix = ""
    if msgtype == "markdown" and mentions:
        suffix = "\n" + " ".join(f"<@{m}>" for m in mentions)
    size = limits.utf8_len(content) + limits.utf8_len(suffix)
    if size <= limit or not content:
        return [_content_message(msgtype, content + suffix, mentions, mobiles)]
    budget = limit - limits.utf8_len(suffix)
    if not split:
        count = len(plan_split(content, budget, syntax=msgtype, markers=markers))
        raise CliUsageError(
            f"{msgtype}.content is {size} bytes (UTF-8), {size - limit} bytes over the "
            f"{limit}-byte limit; pass --split to send it as {count} messages"
        )
    if msgtype == "text":
        return split_to_messages(
            "text",
            content,
            mentioned_list=list(mentions) or None,
            mentioned_mobile_list=list(mobiles) or None,
            markers=markers,
        )
    parts = plan_split(content, budget, syntax=msgtype, markers=markers)
    return [
        _content_message(
            msgtype, p.prefix + p.body + p.suffix + (suffix if i == 0 else "") + p.marker, (), ()
        )
        for i, p in enumerate(parts)
    ]


def _content_message(
    msgtype: ContentType, content: str, mentions: Sequence[str], mobiles: Sequence[str]
) -> Message:
    if msgtype == "text":
        return TextMessage(
            content=content,
            mentioned_list=list(mentions) or None,
            mentioned_mobile_list=list(mobiles) or None,
        )
    if msgtype == "markdown":
        return MarkdownMessage(content=content)
    return MarkdownV2Message(content=content)


_ARTICLE_FIELDS = ("title", "url", "description", "picurl")
_ARTICLE_CUT = re.compile(r",(?=\s*[A-Za-z_]+\s*=)")


def parse_article(spec: str) -> dict[str, str]:
    """Parse ``title=...,url=...,description=...,picurl=...`` (one ``--article`` value).

    A comma starts a new field only when ``name=`` follows it, so values may hold commas;
    a value that holds ``,name=`` must come from ``--from FILE`` instead.

    Raises:
        CliUsageError: a part is not ``name=value``, a name is unknown (the nearest valid
            one is suggested) or repeated.
    """
    import difflib

    article: dict[str, str] = {}
    for part in _ARTICLE_CUT.split(spec):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliUsageError(
                f"--article: {part!r} is not name=value (e.g. title=Hi,url=https://...)"
            )
        if name not in _ARTICLE_FIELDS:
            close = difflib.get_close_matches(name, _ARTICLE_FIELDS, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise CliUsageError(
                f"--article: unknown field {name!r}{hint} (fields: {', '.join(_ARTICLE_FIELDS)})"
            )
        if name in article:
            raise CliUsageError(f"--article: {name} is given twice in {spec!r}")
        article[name] = value.strip()
    return article


def _news_payload(document: Any) -> Any:
    """Accept a full payload, ``{"articles": [...]}`` or a bare list of articles."""
    if isinstance(document, list):
        return {"msgtype": "news", "news": {"articles": document}}
    if isinstance(document, dict) and "msgtype" not in document and "articles" in document:
        return {"msgtype": "news", "news": document}
    return document


def _card_payload(document: Any) -> Any:
    """Accept a full ``template_card`` payload or the card object alone."""
    if isinstance(document, dict) and "msgtype" not in document and "card_type" in document:
        return {"msgtype": "template_card", "template_card": document}
    return document


def _parse_collecting_warnings(payload: Any, notices: list[str]) -> Message:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = parse_message(payload)
    notices.extend(str(w.message) for w in caught)
    notices.extend(message.advisories())
    return message


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


def prepare_image(
    data: bytes, name: str, *, max_bytes: int = limits.IMAGE_MAX_BYTES
) -> tuple[bytes, list[str]]:
    """Make image bytes sendable: JPG/PNG within the limit pass as they are.

    Other formats are converted to PNG; an image over ``max_bytes`` is re-encoded (JPEG
    unless it has transparency) and downscaled until it fits. Needs Pillow for anything
    but a JPG/PNG within the limit.

    Args:
        data: the image file's bytes.
        name: its name, for notices.
        max_bytes: the size limit (2 MiB, WeCom's).

    Returns:
        The bytes to send and the notices to show (what was converted, and why).

    Raises:
        CliUsageError: Pillow is missing, or cannot read the data as an image.
    """
    if image_format(data) is not None and len(data) <= max_bytes:
        return data, []
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        from .launcher import checkout_root, install_command

        raise CliUsageError(
            f"{name} is not a JPG/PNG within 2 MiB and converting it needs Pillow: "
            f"{install_command(['image'], checkout_root())}"
        ) from None
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise CliUsageError(f"{name}: not an image Pillow can read ({exc})") from None
    notices: list[str] = []
    source = image.format or "unknown format"
    if getattr(image, "n_frames", 1) > 1:
        notices.append(f"{name} is animated; only its first frame is sent")
    if image_format(data) is None:
        data = _encode(image, "PNG")
        notices.append(
            f"{name} is {source}, not JPG/PNG; converted to PNG ({_human_size(len(data))})"
        )
    if len(data) > max_bytes:
        before = len(data)
        data, description = _shrink(image, max_bytes)
        notices.append(
            f"{name} is {_human_size(before)}, over the {_human_size(max_bytes)} image limit; "
            f"re-encoded as {description} ({_human_size(len(data))})"
        )
    return data, notices


def _has_alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode(image: Any, fmt: Literal["PNG", "JPEG"], quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        image.save(buffer, format="PNG", optimize=True)
    else:
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _shrink(image: Any, max_bytes: int) -> tuple[bytes, str]:
    """Re-encode and downscale until the image fits; returns the bytes and what was done."""
    from PIL import Image

    fmt: Literal["PNG", "JPEG"] = "PNG" if _has_alpha(image) else "JPEG"
    current = image
    for _ in range(12):
        data = _encode(current, fmt)
        if len(data) <= max_bytes:
            return data, f"{fmt} {current.width}x{current.height}"
        scale = min(0.9, (max_bytes / len(data)) ** 0.5 * 0.95)
        width = max(1, int(current.width * scale))
        height = max(1, int(current.height * scale))
        current = image.resize((width, height), Image.Resampling.LANCZOS)
    raise CliUsageError(f"the image cannot be made smaller than {_human_size(max_bytes)}")


# -- output of a dry run or a send -------------------------------------------------------------


def measure(message: Message) -> list[dict[str, Any]]:
    """The sizes of a message that a limit applies to, for ``--dry-run``.

    Returns:
        Entries ``{"field", "size", "limit", "unit"}``; ``limit`` is None where the API has
        none (the whole body).
    """
    body = message.to_json()
    sizes: list[dict[str, Any]] = [
        {"field": "body", "size": len(body), "limit": None, "unit": "bytes"}
    ]

    def add(name: str, size: int, limit: int | None, unit: str = "bytes") -> None:
        sizes.append({"field": name, "size": size, "limit": limit, "unit": unit})

    if isinstance(message, TextMessage | MarkdownMessage | MarkdownV2Message):
        msgtype = message.msgtype
        add(f"{msgtype}.content", limits.utf8_len(message.content), limits.CONTENT_LIMITS[msgtype])
    elif isinstance(message, ImageMessage):
        add("image (decoded)", len(message.data), limits.IMAGE_MAX_BYTES)
    elif isinstance(message, NewsMessage):
        add("news.articles", len(message.articles), limits.NEWS_MAX_ARTICLES, "items")
        for i, article in enumerate(message.articles):
            add(f"news.articles[{i}].title", limits.utf8_len(article.title),
                limits.NEWS_TITLE_MAX_BYTES)  # fmt: skip
            if article.description is not None:
                add(f"news.articles[{i}].description", limits.utf8_len(article.description),
                    limits.NEWS_DESCRIPTION_MAX_BYTES)  # fmt: skip
    return sizes


def _size_text(entry: dict[str, Any]) -> str:
    if entry["limit"] is None:
        return f"{entry['field']} {entry['size']} {entry['unit']}"
    return f"{entry['field']} {entry['size']} of {entry['limit']} {entry['unit']}"


@dataclass
class _Upload:
    media_type: str
    name: str
    size: int
    media: MediaUpload | None = None

    def document(self) -> dict[str, Any]:
        limit = limits.FILE_MAX_BYTES if self.media_type == "file" else limits.VOICE_MAX_BYTES
        doc: dict[str, Any] = {
            "type": self.media_type,
            "filename": self.name,
            "size": self.size,
            "limit": limit,
        }
        if self.media is not None:
            doc["media_id"] = self.media.media_id
            doc["created_at"] = self.media.created_at
        return doc


def _show_dry_run(out: Output, messages: Sequence[Message], upload: _Upload | None) -> None:
    documents: list[dict[str, Any]] = [
        {"payload": m.to_payload(), "body_bytes": len(m.to_json()), "sizes": measure(m)}
        for m in messages
    ]
    if out.json_mode:
        doc: dict[str, Any] = {"ok": True, "dry_run": True, "messages": documents}
        if upload is not None:
            doc["upload"] = upload.document()
        out.json(doc)
        return
    for message in messages:
        out.line(message.to_json().decode("utf-8"))
    if upload is not None:
        up = upload.document()
        out.info(f"upload ({up['type']}): {up['filename']} {up['size']} of {up['limit']} bytes")
    total = len(messages)
    for i, entry in enumerate(documents, start=1):
        label = f"message {i}/{total}" if total > 1 else "message"
        out.info(f"{label}: " + "; ".join(_size_text(s) for s in entry["sizes"]))
    out.info("dry run: nothing was sent")


def _send_all(bot: Bot, messages: Sequence[Message]) -> list[SendResult]:
    results = []
    for i, message in enumerate(messages, start=1):
        try:
            results.append(bot.send(message))
        except DeliveryError as error:
            if len(messages) > 1:
                error.add_note(f"part {i} of {len(messages)}; {i - 1} sent before it")
            raise
    return results


def _report(
    out: Output,
    target: Target,
    messages: Sequence[Message],
    results: Sequence[SendResult],
    upload: _Upload | None,
) -> None:
    for result in results:
        if result.errmsg != "ok":
            out.notice(f"the API accepted the message with: {result.errmsg}")
    if out.json_mode:
        doc: dict[str, Any] = {
            "ok": True,
            "target": {"key": mask_key(target.key), "base_url": target.base_url,
                       "source": target.source},
            "sent": [
                {"msgtype": m.msgtype, "errcode": r.errcode, "errmsg": r.errmsg,
                 "attempts": r.attempts}
                for m, r in zip(messages, results, strict=True)
            ],
        }  # fmt: skip
        if upload is not None:
            doc["upload"] = upload.document()
        out.json(doc)
        return
    msgtype = messages[0].msgtype if messages else "nothing"
    what = f"{len(messages)} {msgtype} messages" if len(messages) > 1 else f"{msgtype} message"
    out.line(f"sent {what} to {mask_key(target.key)} ({target.base_url})")


def deliver(
    out: Output,
    opts: SendOptions,
    messages: Sequence[Message],
    *,
    notices: Iterable[str] = (),
) -> None:
    """Send the messages in order (or only show them with ``--dry-run``) and report.

    Args:
        out: where to write.
        opts: target and delivery options.
        messages: validated messages, sent in order; the first failure stops the rest.
        notices: things to tell the user first (conversions, truncations, advice).

    Raises:
        ConfigError: no usable target (not with ``--dry-run``, which needs none).
        DeliveryError: a send failed; with several parts, its note says which one.
    """
    for notice in notices:
        out.notice(notice)
    if opts.dry_run:
        _show_dry_run(out, messages, None)
        return
    target = opts.target(out.streams)
    out.protect(target.key)
    with opts.bot(target) as bot:
        results = _send_all(bot, messages)
    _report(out, target, messages, results, None)


def _read_upload(path: Path, media_type: str) -> tuple[bytes, _Upload]:
    data, name = read_media(path, None)
    check_upload(data, media_type)
    return data, _Upload(media_type, name, len(data))


def _upload_and_send(
    out: Output, opts: SendOptions, path: Path, media_type: Literal["file", "voice"], send: bool
) -> None:
    data, upload = _read_upload(path, media_type)
    message_cls = FileMessage if media_type == "file" else VoiceMessage
    if opts.dry_run:
        messages = [message_cls(media_id=_MEDIA_PLACEHOLDER)] if send else []
        _show_dry_run(out, messages, upload)
        return
    target = opts.target(out.streams)
    out.protect(target.key)
    with out.progress(len(data), f"uploading {upload.name}") as reporter:
        http = None
        if reporter is not None:
            from .upload_progress import progress_client

            http = progress_client(opts.timeout, reporter)
        try:
            with opts.bot(target, http_client=http) as bot:
                upload.media = bot.upload_media(data, media_type, upload.name)
                if not send:
                    _report_upload(out, target, upload)
                    return
                sent: list[Message] = [message_cls(media_id=upload.media.media_id)]
                results = _send_all(bot, sent)
        finally:
            if http is not None:
                http.close()
    _report(out, target, sent, results, upload)


def _report_upload(out: Output, target: Target, upload: _Upload) -> None:
    if out.json_mode:
        out.json({"ok": True, "target": {"key": mask_key(target.key),
                  "base_url": target.base_url}, "upload": upload.document()})  # fmt: skip
        return
    assert upload.media is not None
    out.line(upload.media.media_id)
    out.info(f"uploaded {upload.name} ({_human_size(upload.size)}) as {upload.media_type}; "
             "the media_id is valid 3 days, for this robot only")  # fmt: skip


# -- the commands -----------------------------------------------------------------------------

send_app = typer.Typer(
    name="send",
    help=_help(
        "Send one message to a WeCom group robot: text, markdown, markdown-v2, image, news, "
        "file, voice, card, or a raw JSON payload.",
        "echo 'deploy done' | wecom-bot send text --key $WECOM_BOT_KEY",
    ),
    epilog=_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ContentArg = Annotated[
    str | None,
    typer.Argument(
        metavar="CONTENT",
        help="The content; '-' or nothing reads standard input.",
        show_default=False,
    ),
]
FileOpt = Annotated[
    str | None,
    typer.Option("--file", "-f", metavar="PATH", help="Read the content from a UTF-8 file."),
]
SplitOpt = Annotated[
    bool, typer.Option("--split", help="Send content over the limit as several messages.")
]
MarkersOpt = Annotated[
    bool, typer.Option("--markers", help="With --split, end each part with (i/n).")
]
MediaPath = Annotated[
    Path,
    typer.Argument(metavar="PATH", exists=True, dir_okay=False, readable=True,
                   show_default=False),
]  # fmt: skip


@contextmanager
def _scope(ctx: typer.Context, opts: SendOptions) -> Iterator[Output]:
    """A command scope (errors to exit codes) that masks the key-bearing options too."""
    with command_scope(ctx, json_mode=opts.json) as out:
        out.protect(*opts.secrets())
        yield out


@send_app.command(
    "text",
    help=_help(
        "Send a text message (at most 2048 UTF-8 bytes), optionally @mentioning people.",
        "wecom-bot send text 'disk 91% on db-1' --mention @all",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def text_command(
    ctx: typer.Context,
    content: ContentArg = None,
    file: FileOpt = None,
    mention: Annotated[
        list[str] | None,
        typer.Option(
            "--mention", "-m", metavar="USERID|@all", help="Mention a userid, or @all (repeatable)."
        ),
    ] = None,  # fmt: skip
    mention_mobile: Annotated[
        list[str] | None,
        typer.Option(
            "--mention-mobile",
            metavar="MOBILE|@all",
            help="Mention by mobile number, or @all (repeatable).",
        ),
    ] = None,  # fmt: skip
    split: SplitOpt = False,
    markers: MarkersOpt = False,
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        body = read_content(out.streams, content, file)
        messages = build_content_messages(
            "text", body, mentions=mention or (), mobiles=mention_mobile or (),
            split=split, markers=markers,
        )  # fmt: skip
        deliver(out, opts, messages)


@send_app.command(
    "markdown",
    help=_help(
        "Send markdown in WeCom's subset (at most 4096 bytes): headings, bold, links, "
        'inline code, quotes, <font color="info|comment|warning">, <@userid> mentions.',
        "wecom-bot send markdown -f report.md --mention alice",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def markdown_command(
    ctx: typer.Context,
    content: ContentArg = None,
    file: FileOpt = None,
    mention: Annotated[
        list[str] | None,
        typer.Option(
            "--mention",
            "-m",
            metavar="USERID|@all",
            help="Append <@USERID> to the content (repeatable).",
        ),
    ] = None,  # fmt: skip
    split: SplitOpt = False,
    markers: MarkersOpt = False,
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        body = read_content(out.streams, content, file)
        messages = build_content_messages(
            "markdown", body, mentions=mention or (), split=split, markers=markers
        )
        deliver(out, opts, messages)


@send_app.command(
    "markdown-v2",
    help=_help(
        "Send markdown v2 (at most 4096 bytes): tables, lists, code blocks, images; "
        "no font colours and no mentions.",
        "wecom-bot send markdown-v2 -f table.md",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def markdown_v2_command(
    ctx: typer.Context,
    content: ContentArg = None,
    file: FileOpt = None,
    mention: Annotated[
        list[str] | None,
        typer.Option("--mention", "-m", hidden=True, help="Not supported by markdown_v2."),
    ] = None,
    split: SplitOpt = False,
    markers: MarkersOpt = False,
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        if mention:
            build_content_messages("markdown_v2", "x", mentions=mention)  # raises the advice
        body = read_content(out.streams, content, file)
        messages = build_content_messages("markdown_v2", body, split=split, markers=markers)
        deliver(out, opts, messages)


@send_app.command(
    "image",
    help=_help(
        "Send an image. JPG/PNG are sent as they are; other formats are converted to PNG and "
        "images over 2 MiB are downscaled/re-encoded (with a notice).",
        "wecom-bot send image chart.png",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def image_command(ctx: typer.Context, path: MediaPath, *, opts: SendOptions) -> None:
    with _scope(ctx, opts) as out:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CliUsageError(f"cannot read {path}: {exc.strerror}") from None
        data, notices = prepare_image(raw, path.name)
        deliver(out, opts, [ImageMessage.from_bytes(data)], notices=notices)


@send_app.command(
    "news",
    help=_help(
        "Send a news message of 1 to 8 articles, from repeated --article or a JSON/YAML file.",
        "wecom-bot send news --article 'title=Release 2.0,url=https://example.com/r2,"
        "description=What changed'",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def news_command(
    ctx: typer.Context,
    article: Annotated[
        list[str] | None,
        typer.Option(
            "--article",
            "-a",
            metavar="title=..,url=..[,description=..][,picurl=..]",
            help="One article (repeatable, in order).",
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE",
            help="JSON/YAML: a list of articles, {articles: [...]} or a payload.",
        ),
    ] = None,  # fmt: skip
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        if article and from_file:
            raise CliUsageError("give --article or --from, not both")
        if article:
            payload: Any = {
                "msgtype": "news",
                "news": {"articles": [parse_article(a) for a in article]},
            }
        elif from_file:
            payload = _news_payload(_read_document(out.streams, from_file, "--from"))
        else:
            raise CliUsageError("no articles: give --article 'title=...,url=...' or --from FILE")
        notices: list[str] = []
        message = _parse_collecting_warnings(payload, notices)
        if message.msgtype != "news":
            raise CliUsageError(f"--from holds a {message.msgtype} payload, not news")
        deliver(out, opts, [message], notices=notices)


@send_app.command(
    "file",
    help=_help(
        "Upload a file (6 bytes to 20 MiB) and send it. Large uploads show a progress bar.",
        "wecom-bot send file nightly-report.pdf",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def file_command(ctx: typer.Context, path: MediaPath, *, opts: SendOptions) -> None:
    with _scope(ctx, opts) as out:
        _upload_and_send(out, opts, path, "file", send=True)


@send_app.command(
    "voice",
    help=_help(
        "Upload an AMR voice clip (at most 2 MiB, 60 s) and send it.",
        "wecom-bot send voice standup.amr",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def voice_command(ctx: typer.Context, path: MediaPath, *, opts: SendOptions) -> None:
    with _scope(ctx, opts) as out:
        _upload_and_send(out, opts, path, "voice", send=True)


@send_app.command(
    "card",
    help=_help(
        "Send a template card (text_notice or news_notice) from a JSON/YAML file: the whole "
        "payload or the template_card object alone.",
        "wecom-bot send card --from incident-card.yaml",
    ),
    epilog=_EPILOG,
)
@_with_send_options
def card_command(
    ctx: typer.Context,
    from_file: Annotated[
        str, typer.Option("--from", metavar="FILE", help="The card as JSON or YAML ('-': stdin).")
    ],
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        payload = _card_payload(_read_document(out.streams, from_file, "--from"))
        notices: list[str] = []
        message = _parse_collecting_warnings(payload, notices)
        if message.msgtype != "template_card":
            raise CliUsageError(f"--from holds a {message.msgtype} payload, not a template card")
        deliver(out, opts, [message], notices=notices)


@send_app.command(
    "json",
    help=_help(
        'Send a raw API payload ({"msgtype": ..., ...}) from a file or standard input, after '
        "validating it against every documented rule.",
        'echo \'{"msgtype":"text","text":{"content":"hi"}}\' | wecom-bot send json',
    ),
    epilog=_EPILOG,
)
@_with_send_options
def json_command(
    ctx: typer.Context,
    path: Annotated[
        str, typer.Argument(metavar="FILE", help="The payload; '-' (default) reads stdin.")
    ] = "-",
    split: SplitOpt = False,
    markers: MarkersOpt = False,
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        payload = _read_document(out.streams, path, "payload")
        notices: list[str] = []
        messages = _json_messages(payload, notices, split=split, markers=markers)
        deliver(out, opts, messages, notices=notices)


def _json_messages(
    payload: Any, notices: list[str], *, split: bool, markers: bool
) -> list[Message]:
    try:
        return [_parse_collecting_warnings(payload, notices)]
    except MessageValidationError as error:
        oversize = [
            i for i in error.issues if i.rule == Rule.MAX_BYTES and i.field.endswith(".content")
        ]
        if not oversize or len(oversize) != len(error.issues):
            raise
        msgtype: ContentType = payload["msgtype"]
        body = payload[msgtype]
        if not split:
            issue = oversize[0]
            raise CliUsageError(
                f"{issue.field} is {issue.actual} bytes (UTF-8), {issue.actual - issue.limit} "
                f"bytes over the {issue.limit}-byte limit; pass --split to send it in parts"
            ) from None
        return build_content_messages(
            msgtype, body["content"],
            mentions=body.get("mentioned_list") or (),
            mobiles=body.get("mentioned_mobile_list") or (),
            split=True, markers=markers,
        )  # fmt: skip


class MediaKind(StrEnum):
    """The two kinds of upload."""

    FILE = "file"
    VOICE = "voice"


def upload_command(
    ctx: typer.Context,
    path: MediaPath,
    media_type: Annotated[
        MediaKind,
        typer.Option("--type", "-t", help="file (<= 20 MiB) or voice (AMR, <= 2 MiB)."),
    ] = MediaKind.FILE,
    *,
    opts: SendOptions,
) -> None:
    with _scope(ctx, opts) as out:
        kind: Literal["file", "voice"] = "voice" if media_type is MediaKind.VOICE else "file"
        _upload_and_send(out, opts, path, kind, send=False)


def register(app: typer.Typer) -> None:
    """Add the ``send`` group and the ``upload`` command to the ``wecom-bot`` app."""
    app.add_typer(send_app, name="send")
    app.command(
        "upload",
        help=_help(
            "Upload a file or an AMR voice clip and print its media_id (valid 3 days, for "
            "this robot only).",
            "wecom-bot upload report.pdf --type file",
        ),
        epilog=_EPILOG,
    )(_with_send_options(upload_command))
