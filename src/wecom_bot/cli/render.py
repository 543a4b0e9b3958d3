"""``wecom-bot render TEMPLATE --data payload.json``: render a template and show its sizes.

TEMPLATE is a gateway template — a built-in name (``default``, ``default_v2``, ``default_text``,
``generic`` ...) or a Jinja2 file — and the data an Alertmanager, Grafana or any JSON payload:
the command renders it exactly as the gateway would (:func:`gateway_render`: the same
sandbox, filters and escaping of untrusted values). ``--plain`` renders a file as a plain
sandboxed Jinja2 template with the JSON as its variables instead (:func:`render_template`).
Everything after rendering — sizes, limit, split plan — is :func:`size_report`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from .. import limits
from ..split import plan_split
from .errors import EXIT_CODES_HELP, CliUsageError
from .output import Output, Streams, command_scope

__all__ = [
    "RENDERER",
    "Renderer",
    "SizeReport",
    "gateway_render",
    "register",
    "render_template",
    "size_report",
]

Renderer = Callable[[Path, Any], str]
"""Renders the template file at the path with the given context into message content."""


def gateway_render(template: str, payload: Any, msgtype: str) -> str:
    """Render ``payload`` with a gateway template, as the gateway would for ``msgtype``.

    Args:
        template: a built-in template name, or the path of a Jinja2 file.
        payload: an Alertmanager or Grafana webhook payload, or any JSON (generic).
        msgtype: ``text``, ``markdown`` or ``markdown_v2``.

    Raises:
        CliUsageError: the template is unknown or fails, or the payload is malformed.
    """
    from ..errors import ConfigError
    from ..gateway.intake.sources import (
        PayloadError,
        parse_alertmanager,
        parse_generic,
        parse_grafana,
    )
    from ..gateway.templates.renderer import Renderer as GatewayRenderer

    path = Path(template)
    templates: dict[str, str] = {}
    name = template
    if path.is_file():
        name = path.stem
        try:
            templates[name] = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliUsageError(f"TEMPLATE: cannot read {path}: {exc}") from None
    try:
        renderer = GatewayRenderer(templates)
        if name not in renderer.template_names():
            known = ", ".join(renderer.template_names())
            raise CliUsageError(f"TEMPLATE: no file or built-in template {template!r} ({known})")
        if isinstance(payload, dict) and "alerts" in payload and "orgId" in payload:
            notification = parse_grafana(payload)
        elif isinstance(payload, dict) and "alerts" in payload:
            notification = parse_alertmanager(payload)
        else:
            notification = parse_generic("cli", payload)
        report = renderer.render_check(name, notification, msgtype=msgtype)  # type: ignore[arg-type]
    except PayloadError as exc:
        raise CliUsageError(f"--data: {exc}") from None
    except ConfigError as exc:
        raise CliUsageError(str(exc)) from None
    return report.content


ContentType = Literal["text", "markdown", "markdown_v2"]


def render_template(template_path: Path, context: Any) -> str:
    """Render one Jinja2 template file in a sandbox, with ``context`` as its variables.

    The environment is Jinja2's ``SandboxedEnvironment`` (templates cannot reach Python
    internals) with ``StrictUndefined`` (a misspelt variable is an error, not empty text).
    Templates may include or extend files in the same directory.

    Args:
        template_path: the template file.
        context: the data; a JSON object's keys become variables, anything else is ``data``.
            The whole document is also available as ``data``.

    Returns:
        The rendered text.

    Raises:
        CliUsageError: the template cannot be read, has a syntax error, uses an undefined
            variable or breaks the sandbox.
    """
    from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(template_path.parent)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )
    variables = dict(context) if isinstance(context, dict) else {}
    variables.setdefault("data", context)
    try:
        template = env.get_template(template_path.name)
        return template.render(variables)
    except TemplateSyntaxError as exc:
        raise CliUsageError(
            f"{template_path}: template syntax error at line {exc.lineno}: {exc.message}"
        ) from None
    except TemplateError as exc:
        raise CliUsageError(f"{template_path}: {type(exc).__name__}: {exc}") from None


RENDERER: Renderer = render_template
"""The renderer ``wecom-bot render`` uses; the gateway replaces it with its own."""


@dataclass(frozen=True)
class SizeReport:
    """The rendered content measured against its message type's limit.

    Attributes:
        msgtype: ``text``, ``markdown`` or ``markdown_v2``.
        bytes: the content's size in UTF-8 bytes.
        limit: the type's content limit in bytes.
        over_by: bytes over the limit (0 when it fits).
        parts: the UTF-8 size of each part ``--split`` would send (one entry when it fits).
    """

    msgtype: str
    bytes: int
    limit: int
    over_by: int
    parts: list[int]

    @property
    def fits(self) -> bool:
        """Whether the content fits in one message."""
        return self.over_by == 0


def size_report(content: str, msgtype: ContentType) -> SizeReport:
    """Measure ``content`` for ``msgtype`` and plan how it would be split.

    Args:
        content: the rendered content.
        msgtype: the message type it would be sent as.

    Returns:
        The sizes, the limit and the split plan.
    """
    limit = limits.CONTENT_LIMITS[msgtype]
    size = limits.utf8_len(content)
    parts = [limits.utf8_len(p.text) for p in plan_split(content, limit, syntax=msgtype)]
    return SizeReport(msgtype, size, limit, max(size - limit, 0), parts)


def _load_data(streams: Streams, path: str) -> Any:
    import yaml

    try:
        text = streams.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliUsageError(f"--data: cannot read {path}: {exc}") from None
    if path.lower().endswith((".yaml", ".yml")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise CliUsageError(f"--data: {path} is not valid YAML") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliUsageError(
            f"--data: {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _show(out: Output, content: str, report: SizeReport) -> None:
    if out.json_mode:
        out.json({"ok": True, "content": content, **asdict(report), "fits": report.fits})
        return
    out.line(content)
    out.line("─" * 40)
    state = "fits" if report.fits else f"over by {report.over_by} bytes"
    out.line(f"{report.msgtype}: {report.bytes} of {report.limit} bytes (UTF-8), {state}")
    if not report.fits:
        sizes = " + ".join(str(p) for p in report.parts)
        out.line(f"--split would send {len(report.parts)} messages: {sizes} bytes")


class ContentKind(StrEnum):
    """The message types whose content a template renders."""

    TEXT = "text"
    MARKDOWN = "markdown"
    MARKDOWN_V2 = "markdown_v2"


_CONTENT_TYPES: dict[ContentKind, ContentType] = {
    ContentKind.TEXT: "text",
    ContentKind.MARKDOWN: "markdown",
    ContentKind.MARKDOWN_V2: "markdown_v2",
}


def render_command(
    ctx: typer.Context,
    template: Annotated[
        str,
        typer.Argument(
            metavar="TEMPLATE",
            help="A gateway template: a built-in name (default, default_v2, default_text, "
            "generic ...) or a Jinja2 file.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "-d",
            metavar="FILE",
            help="JSON (or YAML) context for the template; '-' reads stdin.",
        ),
    ],
    msgtype: Annotated[
        ContentKind,
        typer.Option(
            "--msgtype",
            "-t",
            help="The message type the content is for: its limit and split rules.",
        ),
    ] = ContentKind.MARKDOWN,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 2 when the content is over the limit.")
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            help="Render the file as plain sandboxed Jinja2 with the JSON as its variables "
            "(no gateway escaping).",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Render a message template with JSON data and show its size against the limit."""
    with command_scope(ctx, json_mode=json_output) as out:
        context = _load_data(out.streams, data)
        kind = _CONTENT_TYPES[msgtype]
        if plain:
            path = Path(template)
            if not path.is_file():
                raise CliUsageError(f"TEMPLATE: --plain needs a template file; {path} is not one")
            content = RENDERER(path, context)
        else:
            content = gateway_render(template, context, kind)
        report = size_report(content, kind)
        _show(out, content, report)
        if check and not report.fits:
            raise CliUsageError(
                f"{kind} content is {report.over_by} bytes over the {report.limit}-byte limit"
            )


def register(app: typer.Typer) -> None:
    """Add the ``render`` command to the ``wecom-bot`` app."""
    app.command(
        "render",
        help=(
            "Render a message template (sandboxed Jinja2) with JSON data; show the content's "
            "UTF-8 size against the message type's limit and how --split would cut it.\n\n"
            "Example:\n\n"
            "  wecom-bot render default --data alertmanager.json\n\n"
            "  wecom-bot render my-alert.j2 --data grafana.json --msgtype markdown_v2"
        ),
        epilog=EXIT_CODES_HELP,
    )(render_command)
