"""Rendering notifications into WeCom messages with sandboxed Jinja2 templates.

Untrusted values are escaped by construction
    A template never sees a payload string as a ``str``. Every string that came from the
    sender (labels, annotations, URLs, Grafana's title and message, any generic JSON string,
    label *names* too) reaches the template as an :class:`Untrusted` value whose ``str()`` is
    the text escaped for the message's syntax (see :mod:`.escaping`). Everything that turns a
    value into text (``{{ x }}``, ``~``, ``|join``, ``|format``, ``"{}".format(x)``, ``|upper``
    ...) goes through ``str()``, so there is no way to *forget* escaping; string methods and
    slicing on an :class:`Untrusted` value give :class:`Untrusted` values again. Only
    the explicit filter ``|unescaped`` gives the raw text, for payloads you trust. The template's
    own text is trusted and written as is: markup belongs there (``<font color="warning">``,
    ``**``, ``[link]({{ alert.source_link }})``). Comparisons work on the raw text
    (``alert.labels.severity == "critical"``); note that ``x is string`` is false for them.

    URLs go in link targets through ``|url`` (or the ready-made ``alert.source_link``,
    ``alert.silence_link`` ...): only http(s) URLs pass, percent-encoded so that they cannot
    close the link or start markup.

Built-in templates
    ``default`` (markdown), ``default_v2`` (markdown_v2, a table of alerts), ``default_text``
    (text); ``generic``, ``generic_v2``, ``generic_text`` (a generic webhook's JSON, pretty
    printed). They serve Alertmanager and Grafana notifications alike (Grafana's values,
    dashboard and panel links appear when present). A built-in name asked for with another
    msgtype renders its sibling for that msgtype (``default`` as text is ``default_text``),
    unless the configuration overrides that name: a configured template is always used as
    written, with the escaping of the msgtype asked for.

What a template sees (``docs/templates.md`` describes each, see :mod:`.template_reference`)
    ``notification`` (every field, as :class:`NotificationView`), ``alerts`` (the alerts to list:
    firing first, at most ``max_alerts``), ``all_alerts``, ``firing_alerts``,
    ``resolved_alerts``, ``more`` (alerts not listed, including those the sender truncated),
    ``total``, ``firing_count``, ``resolved_count``, ``status``, ``firing`` (bool), ``title``,
    ``receiver``, ``source``, ``group_labels``, ``common_labels``, ``common_annotations``,
    ``external_url``, ``raw`` (generic payload), ``name`` (generic webhook name), ``msgtype``,
    ``now``, ``timezone`` and ``actions`` (the action links of a firing Alertmanager group:
    ``actions.ack``, ``actions.silence``, ``actions.silence_1h`` / ``_4h`` / ``_24h``,
    ``actions.details``; ``None`` without ``external_url``, see ``docs/actions.md``).
    Filters: ``localtime(fmt)``, ``duration``, ``url``, ``oneline``, ``quoted``,
    ``labels_inline(exclude=[...])``, ``tojson(indent)``, ``unescaped``.

Storm summaries
    A notification of several alerts is written with the route's template when that rendering
    fits one message (mention line included); otherwise, and without trying when it has more
    alerts than ``max_alerts``, it renders the ``summary`` template (``summary_v2``,
    ``summary_text``) instead, listing every alert compactly. The switch is by bytes, so there
    is no cliff at a fixed count (``max_alerts`` only bounds the cost of trying). The
    dispatcher renders the summary too when it folds a backlog. Its variables are described
    in :mod:`.summaries`.

Mentions never come from a template's values; see :class:`~.routing.Mentions` for how each
msgtype carries them. Over-long content is split with :func:`wecom_bot.split.split_content`
(parts numbered ``(i/n)``), and every payload is validated with
:func:`wecom_bot.messages.parse_message`.

This module renders; the parts it uses live beside it: the sandbox and its bounds in
:mod:`.sandbox`, the filters in :mod:`.template_filters`, what a template sees in
:mod:`.template_views` and :mod:`.untrusted`, the errors in :mod:`.template_errors`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import jinja2.lexer
import jinja2.parser

from ... import limits
from ...errors import ConfigError
from ...messages import parse_message
from ...split import split_content
from ...storm import DEFAULT_CONTEXT_LABELS, AlertBrief, EntryLine
from ..model import Notification
from ..routing import Mentions
from .errors import (
    TemplateError,
    TemplateLimitError,
    TemplateRenderError,
    line_of,
    plain_reason,
    syntax_error,
)
from .escaping import escape_markdown, escape_markdown_v2, escape_text
from .filters import ESCAPER_KEY, install_filters
from .sandbox import RenderLimitError, RenderLimits, Sandbox, ViewSandbox
from .summaries import GroupView, SectionView, briefs_of_notification, summary_pages
from .untrusted import Untrusted
from .views import AlertView, NotificationView, title_of_notification

__all__ = [
    "BUILTIN_TEMPLATES",
    "AlertView",
    "Form",
    "MsgType",
    "NotificationView",
    "RenderLimits",
    "RenderReport",
    "RenderedPart",
    "Renderer",
    "RendererSettings",
    "TemplateError",
    "TemplateLimitError",
    "TemplateRenderError",
    "Untrusted",
]

MsgType = Literal["markdown", "markdown_v2", "text"]

Form = Literal["alerts", "summary", "fit"]
"""How a notification is written (see :meth:`Renderer.form_of`)."""

_ESCAPERS: dict[str, Callable[[str], str]] = {
    "text": escape_text,
    "markdown": escape_markdown,
    "markdown_v2": escape_markdown_v2,
}

BUILTIN_TEMPLATES: Mapping[str, tuple[MsgType, str]] = {
    "default": ("markdown", "default"),
    "default_v2": ("markdown_v2", "default"),
    "default_text": ("text", "default"),
    "generic": ("markdown", "generic"),
    "generic_v2": ("markdown_v2", "generic"),
    "generic_text": ("text", "generic"),
    "summary": ("markdown", "summary"),
    "summary_v2": ("markdown_v2", "summary"),
    "summary_text": ("text", "summary"),
}
"""Built-in template name -> (its msgtype, its family)."""

SUMMARY_TEMPLATE = "summary"
"""The template a storm summary renders with (configure one of this name to override it)."""

DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024
"""Rendered content beyond this is cut (64 markdown messages: over three minutes of a robot's
rate); a template that loops without end cannot exhaust memory."""

DEFAULT_MAX_PARTS = 3
"""The most messages one notification becomes for one bot (``max_messages_per_notification``)."""

DEFAULT_MAX_SUMMARY_PARTS = 10
"""The most messages one storm summary becomes for one bot (``max_messages_per_summary``)."""


_VIEWS = (AlertView, NotificationView, GroupView, SectionView, EntryLine)
_OPTIONS: dict[str, Any] = {
    "fast_types": _VIEWS,
    "autoescape": False,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
    "extensions": ["jinja2.ext.loopcontrols"],
}


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class RenderedPart:
    """One payload of a rendered notification.

    Attributes:
        payload: the API payload, validated.
        size: its content in UTF-8 bytes.
        limit: the content limit of its msgtype.
    """

    payload: dict[str, Any]
    size: int
    limit: int


class CodedWarning(str):
    """A warning of a render: its English text (what ``gateway check`` prints and logs read),
    with ``code`` and ``params`` naming what it says, for the console to say it in its
    language (the catalogue's ``console.server.<code>``). It is a ``str`` everywhere else."""

    code: str
    params: dict[str, Any]

    def __new__(cls, text: str, code: str, **params: Any) -> CodedWarning:
        made = super().__new__(cls, text)
        made.code, made.params = code, params
        return made

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the render pool's process boundary
        return (_coded_warning, (str(self), self.code, self.params))


def _coded_warning(text: str, code: str, params: dict[str, Any]) -> CodedWarning:
    return CodedWarning(text, code, **params)


@dataclass(frozen=True)
class RenderReport:
    """A rendering with its sizes, for ``gateway check``, the CLI and the console playground.

    Attributes:
        template: the template name asked for.
        used_template: the template that rendered (a built-in's sibling for another msgtype).
        msgtype: the msgtype rendered.
        content: the whole content before splitting (mention line included).
        size: ``content`` in UTF-8 bytes.
        limit: the content limit of ``msgtype``.
        parts: the payloads to send, in order (several when ``content`` was too long).
        warnings: what could not be honoured (mobiles in markdown, output cut ...).
    """

    template: str
    used_template: str
    msgtype: MsgType
    content: str
    size: int
    limit: int
    parts: list[RenderedPart]
    warnings: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """Whether the content fits one message."""
        return self.size <= self.limit

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The API payloads, in sending order."""
        return [p.payload for p in self.parts]


# --------------------------------------------------------------------------- renderer


@dataclass(frozen=True)
class RendererSettings:
    """Everything a :class:`Renderer` is built from but its clock (hashable, picklable: a
    render worker builds the same renderer from it).

    Attributes:
        templates: configured templates, (name, source) pairs.
        timezone, max_alerts, max_output_bytes, limits, console_url, max_parts,
            max_summary_parts, context_labels: see :class:`Renderer`.
    """

    templates: tuple[tuple[str, str], ...] = ()
    timezone: str = "Asia/Shanghai"
    max_alerts: int | None = None
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    limits: RenderLimits = field(default_factory=RenderLimits)
    console_url: str | None = None
    max_parts: int = DEFAULT_MAX_PARTS
    max_summary_parts: int = DEFAULT_MAX_SUMMARY_PARTS
    context_labels: tuple[str, ...] = DEFAULT_CONTEXT_LABELS


def _utc_now() -> datetime:
    return datetime.now(UTC)


_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_TEMPLATE_FILE = "<template {}>"


class Renderer:
    """Renders notifications into API payloads with built-in and configured templates.

    Args:
        templates: configured templates, name -> Jinja2 source; a name of a built-in
            overrides it. Compiled now: a syntax error fails here.
        timezone: IANA time zone for times in messages.
        max_alerts: the most alerts a per-alert rendering lists: a notification with more
            is written as a summary without trying the route's template (see
            :meth:`form_of`); ``None``: no summary, every alert rendered by the route's template.
        clock: returns the current aware time (durations of firing alerts, ``now``).
        max_output_bytes: rendered content beyond this is cut, with a note.
        actions: writes a notification's action links (``actions`` in templates, ``None``
            when it has none); without it no message carries action links.
        console_url: the console as people reach it (``external_url`` + ``/ui/``): storm
            summaries link to its history, where every alert is whole.
        limits: the bounds of one render (time, sizes, steps); a render past one fails with
            :class:`TemplateLimitError`.
        max_parts: the most messages one rendering becomes for one bot, whatever its content:
            past them the content is cut (and says so), the rest is in the history.
        max_summary_parts: the most messages one storm summary becomes for one bot: it lists
            every alert whole when that fits, cuts values when it must, and past them says how
            many alerts it could not list.
        context_labels: labels a summary's every line shows when they vary (where an alert
            is: namespace, cluster ...), even when other labels tell the alerts apart.

    Raises:
        TemplateError: a configured template has a syntax error (message: name and line).
        ConfigError: an unknown time zone, or ``max_alerts`` below 1.
    """

    def __init__(
        self,
        templates: Mapping[str, str] | None = None,
        *,
        timezone: str = "Asia/Shanghai",
        max_alerts: int | None = None,
        clock: Callable[[], datetime] = _utc_now,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        actions: Callable[[Notification], Any] | None = None,
        console_url: str | None = None,
        limits: RenderLimits | None = None,
        max_parts: int = DEFAULT_MAX_PARTS,
        max_summary_parts: int = DEFAULT_MAX_SUMMARY_PARTS,
        context_labels: Sequence[str] = DEFAULT_CONTEXT_LABELS,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"timezone: unknown time zone {timezone!r} (use an IANA name like Asia/Shanghai)"
            ) from None
        if max_alerts is not None and max_alerts < 1:
            raise ConfigError(f"max_alerts: must be at least 1, not {max_alerts}")
        if max_parts < 1:
            raise ConfigError(f"max_messages_per_notification: must be at least 1, not {max_parts}")
        if max_summary_parts < 1:
            raise ConfigError(
                f"max_messages_per_summary: must be at least 1, not {max_summary_parts}"
            )
        self.max_parts = max_parts
        self.max_summary_parts = max_summary_parts
        self.context_labels = tuple(context_labels)
        self.timezone = timezone
        self.max_alerts = max_alerts
        self.clock = clock
        self.max_output_bytes = max_output_bytes
        self.actions = actions
        self.console_url = console_url
        self.limits = limits or RenderLimits()
        self._user: dict[str, str] = {}
        for name, source in (templates or {}).items():
            if not isinstance(name, str) or not name:
                raise ConfigError("templates: a template name must be a non-empty string")
            if not isinstance(source, str):
                raise ConfigError(f"templates.{name}: must be the template text")
            self._user[name] = source
        self._env = self._environment()
        self._builtin_env = self._builtin_environment()
        for name in self._user:
            self._compile(name)

    @classmethod
    def from_settings(
        cls, settings: RendererSettings, *, clock: Callable[[], datetime] = _utc_now
    ) -> Renderer:
        """The renderer ``settings`` describe.

        Raises:
            TemplateError, ConfigError: as the constructor.
        """
        return cls(
            dict(settings.templates),
            timezone=settings.timezone,
            max_alerts=settings.max_alerts,
            clock=clock,
            max_output_bytes=settings.max_output_bytes,
            limits=settings.limits,
            console_url=settings.console_url,
            max_parts=settings.max_parts,
            max_summary_parts=settings.max_summary_parts,
            context_labels=settings.context_labels,
        )

    @property
    def settings(self) -> RendererSettings:
        """What this renderer was built from (to build it again elsewhere)."""
        return RendererSettings(
            tuple(self._user.items()),
            self.timezone,
            self.max_alerts,
            self.max_output_bytes,
            self.limits,
            self.console_url,
            self.max_parts,
            self.max_summary_parts,
            self.context_labels,
        )

    def with_actions(self, actions: Callable[[Notification], Any] | None) -> Renderer:
        """This renderer with another writer of action links (its templates, compiled once,
        are shared)."""
        other = copy.copy(self)
        other.actions = actions
        return other

    def is_configured(self, template: str, msgtype: MsgType) -> bool:
        """Whether ``template`` as ``msgtype`` renders a configured template (not a built-in)."""
        return self.resolve(template, msgtype) in self._user

    # -- environment -----------------------------------------------------------------

    def _load(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        if name in self._user:
            return self._user[name], _TEMPLATE_FILE.format(name), lambda: True
        if name in BUILTIN_TEMPLATES:
            text = (resources.files(__package__) / f"{name}.j2").read_text("utf-8")
            return text, _TEMPLATE_FILE.format(name), lambda: True
        return None

    def _environment(self) -> Sandbox:
        """Where configured templates run (and what they include), bounded."""
        env = Sandbox(limits=self.limits, loader=jinja2.FunctionLoader(self._load), **_OPTIONS)
        install_filters(env, tz=self.tz)
        env.bound_filters()
        return env

    def _builtin_environment(self) -> ViewSandbox:
        """Where the built-in templates run when rendered by name (see :class:`ViewSandbox`)."""
        loader = jinja2.FunctionLoader(lambda n: None if n in self._user else self._load(n))
        env = ViewSandbox(loader=loader, **_OPTIONS)
        install_filters(env, tz=self.tz)
        return env

    def _env_for(self, name: str) -> ViewSandbox:
        return self._env if name in self._user else self._builtin_env

    def _compile(self, name: str) -> jinja2.Template:
        env = self._env_for(name)
        try:
            return env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            exc.name = exc.name or name
            raise syntax_error(exc, env) from None
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"unknown template {name!r} (known: {', '.join(self.template_names())})",
                template=name,
                reason=f"no such template (known: {', '.join(self.template_names())})",
            ) from None

    def template_names(self) -> list[str]:
        """Every template name that can be rendered (built-in and configured), sorted."""
        return sorted(set(BUILTIN_TEMPLATES) | set(self._user))

    def resolve(self, template: str, msgtype: MsgType) -> str:
        """The template that renders ``template`` as ``msgtype`` (see the module docs)."""
        if template in self._user or template not in BUILTIN_TEMPLATES:
            return template
        family = BUILTIN_TEMPLATES[template][1]
        for name, (kind, fam) in BUILTIN_TEMPLATES.items():
            if fam == family and kind == msgtype and name not in self._user:
                return name
        return template

    # -- rendering ---------------------------------------------------------------------

    def action_links(self, notification: Notification) -> Any:
        """The action links of ``notification`` (``None`` without ``actions`` or when it has
        none)."""
        return self.actions(notification) if self.actions else None

    def _context(self, notification: Notification, msgtype: MsgType) -> dict[str, Any]:
        esc = _ESCAPERS[msgtype]
        now = self.clock()
        views = [AlertView(a, notification, esc, now) for a in notification.alerts]
        ordered = [v for v in views if v.firing] + [v for v in views if not v.firing]
        listed = ordered if self.max_alerts is None else ordered[: self.max_alerts]
        firing = [v for v in views if v.firing]
        resolved = [v for v in views if not v.firing]
        view = NotificationView(notification, views, esc)
        return {
            "notification": view,
            "alerts": listed,
            "all_alerts": ordered,
            "firing_alerts": firing,
            "resolved_alerts": resolved,
            "more": notification.total_alerts - len(listed),
            "total": notification.total_alerts,
            "cut_alerts": notification.cut_alerts,
            "cut_values": notification.cut_values,
            "firing_count": len(firing),
            "resolved_count": len(resolved),
            "status": notification.status,
            "firing": notification.status == "firing",
            "title": Untrusted(title_of_notification(notification), esc),
            "receiver": view.receiver,
            "source": notification.source,
            "group_labels": view.group_labels,
            "common_labels": view.common_labels,
            "common_annotations": view.common_annotations,
            "external_url": view.external_url,
            "raw": view.raw,
            "name": view.receiver,
            "msgtype": msgtype,
            "now": now,
            "timezone": self.timezone,
            "actions": self.action_links(notification),
            ESCAPER_KEY: esc,
        }

    def _summary_report(
        self,
        template: str,
        used: str,
        briefs: Sequence[AlertBrief],
        msgtype: MsgType,
        *,
        max_messages: int | None = None,
        notifications: int = 1,
        cut_alerts: int = 0,
        running_total: Mapping[str, int] | None = None,
        actions: Any = None,
        mentions: Mentions | None = None,
    ) -> RenderReport:
        """``briefs`` written with the summary template ``used``, one page per message, each
        page standing alone (see :func:`~.summaries.summary_pages`)."""
        esc = _ESCAPERS[msgtype]
        limit = limits.CONTENT_LIMITS[msgtype]
        warnings: list[str] = []
        suffix = self._mention_suffix(msgtype, mentions or Mentions(), limit, warnings)
        extra = {"now": self.clock(), "timezone": self.timezone, "actions": actions}

        def render(context: dict[str, Any]) -> str:
            context.update(extra)
            context[ESCAPER_KEY] = esc
            return _tidy(self._run(used, context)[0])

        written = summary_pages(
            briefs,
            msgtype=msgtype,
            esc=esc,
            render=render,
            max_messages=max(max_messages or 1, self.max_summary_parts),
            first_reserve=limits.utf8_len(suffix),
            notifications=notifications,
            cut_alerts=cut_alerts,
            console_url=self.console_url,
            running_total=running_total,
            now=self.clock(),
            context_labels=self.context_labels,
        )
        if written.cut_values:
            warnings.append(
                CodedWarning("label values cut to fit the summary's messages", "render.values_cut")
            )
        if written.left_out:
            shown = len(written.pages)
            warnings.append(
                CodedWarning(
                    f"{written.left_out} alerts not listed: past {shown} messages",
                    "render.not_listed", count=written.left_out, shown=shown,
                )
            )  # fmt: skip
        pages: list[str] = []
        for i, page in enumerate(written.pages):
            if not page.strip():
                raise TemplateRenderError(
                    f"template {used!r} rendered no content for this summary",
                    template=used,
                    reason="the template rendered no content for this summary",
                )
            room = limit - (limits.utf8_len(suffix) if i == 0 else 0)
            if limits.utf8_len(page) <= room:
                pages.append(page)
            else:  # a configured template wrote more than a page holds: split it plainly
                pages.extend(split_content(page, room, syntax=msgtype, markers=True))
        content = "\n\n".join(pages) + suffix
        return self._finish(template, used, msgtype, content, pages, suffix, mentions, warnings)

    def form_of(self, notification: Notification) -> Form:
        """How ``notification`` is written, before anything is rendered.

        ``"summary"``: it has more alerts than a per-alert rendering may list
        (``max_alerts``): the summary is used without trying the route's template.
        ``"alerts"``: the route's template, whatever its size (one alert, a generic document,
        or ``max_alerts`` is ``None``). ``"fit"``: the route's template when its rendering
        fits one message (mention line included, see :meth:`fits_alone`), else the summary.
        """
        count = len(notification.alerts)
        if self.max_alerts is None or notification.source == "generic" or count <= 1:
            return "alerts"
        return "summary" if count > self.max_alerts else "fit"

    @staticmethod
    def fits_alone(report: RenderReport) -> bool:
        """Whether a per-alert rendering of a ``"fit"`` notification is sent as it is: its
        content (mention line included) fits one message of its msgtype. It lists every alert
        already: a ``"fit"`` notification has no more than ``max_alerts``."""
        return report.fits and len(report.parts) == 1

    def _run(self, name: str, context: dict[str, Any]) -> tuple[str, bool]:
        template = self._compile(name)
        chunks: list[str] = []
        chars = 0
        cut = False
        try:
            with self._env_for(name).metered():
                for chunk in template.generate(context):
                    chunks.append(chunk)
                    chars += len(chunk)
                    # A character is at least one byte: past the budget in characters, the
                    # bytes are past it too. The exact cut happens once, below.
                    if chars > self.max_output_bytes:
                        cut = True
                        break
        except TemplateError:
            raise
        except MemoryError:
            raise TemplateLimitError(
                f"template {name!r} stopped: ran out of memory (render limits)",
                template=name,
                reason="stopped: ran out of memory (render limits)",
            ) from None
        except RenderLimitError as exc:
            line = line_of(exc)
            at = f", line {line}" if line else ""
            raise TemplateLimitError(
                f"template {name!r}{at} stopped: {exc} (render limits)",
                template=name,
                line=line,
                reason=f"stopped: {exc} (render limits)",
            ) from None
        except jinja2.TemplateSyntaxError as exc:  # an included template
            exc.name = exc.name or name
            raise syntax_error(exc, self._env_for(name)) from None
        except Exception as exc:
            line = line_of(exc)
            at = f", line {line}" if line else ""
            kind = type(exc).__name__
            raise TemplateRenderError(
                f"template {name!r}{at} failed: {kind}: {exc}",
                template=name,
                line=line,
                reason=plain_reason(exc),
            ) from exc
        output = "".join(chunks)
        if cut or len(output) * 4 > self.max_output_bytes:
            fitted = limits.truncate_utf8(output, self.max_output_bytes)
            cut = cut or fitted != output
            output = fitted
        return output, cut

    def render_check(
        self,
        template: str,
        notification: Notification,
        *,
        msgtype: MsgType = "markdown",
        mentions: Mentions | None = None,
        links: Any = None,
        summarize: bool | None = None,
    ) -> RenderReport:
        """Render ``notification`` and report each payload with its size against the limit.

        A notification of several alerts is written with ``template`` when that fits one
        message, else as a storm summary (see :meth:`form_of`).

        Args:
            template: a template name (built-in or configured).
            notification: what to render.
            msgtype: ``"markdown"``, ``"markdown_v2"`` or ``"text"``.
            mentions: who to mention (from the route's configuration only).
            links: the notification's action links, when they were signed elsewhere (a render
                worker has no signing secret); ``None``: this renderer's ``actions`` writes them.
            summarize: ``True``: write the summary; ``False``: write ``template`` whatever its
                size; ``None``: decide as above (a caller that renders the two forms in
                different places decides itself, with :meth:`form_of` and :meth:`fits_alone`).

        Returns:
            The report; ``report.payloads`` are what :meth:`render` returns.

        Raises:
            TemplateError: the template is unknown or does not compile.
            TemplateRenderError: the template failed at run time, or rendered nothing.
        """
        if msgtype not in _ESCAPERS:
            raise ConfigError(f"msgtype: must be markdown, markdown_v2 or text, not {msgtype!r}")
        if summarize is None and not _is_summary(template):
            form = self.form_of(notification)
            if form == "fit":
                trial = self.render_check(
                    template, notification, msgtype=msgtype, mentions=mentions, links=links,
                    summarize=False,
                )  # fmt: skip
                if self.fits_alone(trial):
                    return trial
            summarize = form != "alerts"
        if summarize or _is_summary(template):
            used = self.resolve(template if _is_summary(template) else SUMMARY_TEMPLATE, msgtype)
            # One notification is one alert group: its links hold (a fold of several has none).
            return self._summary_report(
                template, used, briefs_of_notification(notification), msgtype,
                cut_alerts=notification.truncated_alerts + notification.cut_alerts,
                actions=links if links is not None else self.action_links(notification),
                mentions=mentions,
            )  # fmt: skip
        used = self.resolve(template, msgtype)
        context = self._context(notification, msgtype)
        if links is not None:
            context["actions"] = links
        return self._report(template, used, msgtype, self._run(used, context), mentions)

    def render_summary(
        self,
        briefs: Sequence[AlertBrief],
        *,
        msgtype: MsgType = "markdown",
        max_messages: int | None = None,
        notifications: int = 1,
        running_total: Mapping[str, int] | None = None,
    ) -> RenderReport:
        """Write ``briefs`` as a storm summary with the ``summary`` template (or its sibling
        for ``msgtype``): messages that each stand alone.

        Args:
            briefs: the alerts, in arrival order.
            msgtype: ``"markdown"``, ``"markdown_v2"`` or ``"text"``.
            max_messages: the messages it should take (at least ``max_summary_parts`` are
                allowed: every alert stays listed before values are cut).
            notifications: how many notifications the alerts came in (a digest folds several).
            running_total: a later part of a storm: the distinct alerts delivered since the
                storm began, per status (the template's ``running_total``).

        Raises:
            TemplateError / TemplateRenderError: a configured ``summary`` template failed.
        """
        used = self.resolve(SUMMARY_TEMPLATE, msgtype)
        return self._summary_report(
            SUMMARY_TEMPLATE, used, briefs, msgtype, max_messages=max_messages,
            notifications=notifications, running_total=running_total,
        )  # fmt: skip

    def compose(
        self,
        name: str,
        body: str,
        *,
        msgtype: MsgType,
        mentions: Mentions | None = None,
    ) -> RenderReport:
        """Payloads for content written in code (escalation and reminder messages), with the
        same mention line, splitting and validation as a rendered template's.

        Args:
            name: what wrote it (the report's template name).
            body: the content, every untrusted value already escaped for ``msgtype``.
            msgtype: ``"markdown"``, ``"markdown_v2"`` or ``"text"``.
            mentions: who to mention (from the configuration only).

        Raises:
            TemplateRenderError: ``body`` is empty.
        """
        return self._report(name, name, msgtype, (body, False), mentions)

    def _report(
        self,
        template: str,
        used: str,
        msgtype: MsgType,
        output: tuple[str, bool],
        mentions: Mentions | None,
    ) -> RenderReport:
        """Tidy a rendering, add the mention line, split it to fit and validate each part."""
        mentions = mentions or Mentions()
        body, cut = output
        body = _tidy(body)
        warnings: list[str] = []
        if cut:
            body += f"\n\n… (cut: the template rendered more than {self.max_output_bytes} bytes)"
            warnings.append(
                CodedWarning(
                    f"output cut at {self.max_output_bytes} bytes", "render.output_cut",
                    bytes=self.max_output_bytes,
                )
            )  # fmt: skip
        if not body.strip():
            raise TemplateRenderError(
                f"template {used!r} rendered no content for this notification",
                template=used,
                reason="the template rendered no content for this notification",
            )
        limit = limits.CONTENT_LIMITS[msgtype]
        suffix = self._mention_suffix(msgtype, mentions, limit, warnings)
        pieces = (
            self._pieces(body, limit - limits.utf8_len(suffix), msgtype, warnings)
            if limits.utf8_len(body + suffix) > limit
            else [body]
        )
        content = body + suffix
        return self._finish(template, used, msgtype, content, pieces, suffix, mentions, warnings)

    @staticmethod
    def _mention_suffix(
        msgtype: MsgType, mentions: Mentions, limit: int, warnings: list[str]
    ) -> str:
        """What the first message ends with to mention ``mentions`` in ``msgtype``."""
        if msgtype == "markdown":
            tags = [f"<@{u[1:] if u == '@all' else u}>" for u in mentions.userids]
            suffix = _mention_line("\n\n", tags, "", limit, warnings)
            if mentions.mobiles:
                warnings.append(
                    CodedWarning(
                        f"markdown cannot mention mobile numbers: {len(mentions.mobiles)} left out",
                        "render.no_mobiles", count=len(mentions.mobiles),
                    )
                )  # fmt: skip
            return suffix
        if msgtype == "markdown_v2" and mentions:
            names = [escape_markdown_v2(u.lstrip("@")) for u in mentions.userids]
            warnings.append(
                CodedWarning(
                    "markdown_v2 cannot mention anyone: userids written plainly",
                    "render.v2_no_mentions",
                )
            )
            return _mention_line("\n\ncc: ", names, ", ", limit, warnings)
        return ""

    def _finish(
        self,
        template: str,
        used: str,
        msgtype: MsgType,
        content: str,
        pieces: list[str],
        suffix: str,
        mentions: Mentions | None,
        warnings: list[str],
    ) -> RenderReport:
        """The report of ``content`` sent as ``pieces`` (the first with ``suffix``), each
        validated as a payload."""
        mentions = mentions or Mentions()
        limit = limits.CONTENT_LIMITS[msgtype]
        parts: list[RenderedPart] = []
        for i, piece in enumerate(pieces):
            text = piece + suffix if i == 0 else piece
            inner: dict[str, Any] = {"content": text}
            if msgtype == "text" and i == 0:
                if mentions.userids:
                    inner["mentioned_list"] = list(mentions.userids)
                if mentions.mobiles:
                    inner["mentioned_mobile_list"] = list(mentions.mobiles)
            payload = parse_message({"msgtype": msgtype, msgtype: inner}).to_payload()
            parts.append(RenderedPart(payload, limits.utf8_len(text), limit))
        return RenderReport(
            template=template,
            used_template=used,
            msgtype=msgtype,
            content=content,
            size=limits.utf8_len(content),
            limit=limit,
            parts=parts,
            warnings=warnings,
        )

    def _pieces(self, body: str, limit: int, msgtype: MsgType, warnings: list[str]) -> list[str]:
        """``body`` split into at most :attr:`max_parts` pieces of ``limit`` bytes: past them
        its end is cut, and the last piece says how much."""
        pieces = split_content(body, limit, syntax=msgtype, markers=True)
        if len(pieces) <= self.max_parts:
            return pieces
        size = limits.utf8_len(body)
        budget = self.max_parts * limit - _CUT_NOTE_RESERVE * self.max_parts
        while True:
            kept = limits.truncate_utf8(body, max(budget, 1))
            note = (
                f"\n\n… (cut: {size - limits.utf8_len(kept)} bytes more, past "
                f"{self.max_parts} messages; the whole notification is in the history)"
            )
            pieces = split_content(kept + note, limit, syntax=msgtype, markers=True)
            if len(pieces) <= self.max_parts:
                warnings.append(
                    CodedWarning(
                        f"cut to {self.max_parts} messages ({size} bytes rendered)",
                        "render.parts_cut", parts=self.max_parts, size=size,
                    )
                )  # fmt: skip
                return pieces
            budget -= limit // 4

    def render(
        self,
        template: str,
        notification: Notification,
        *,
        msgtype: MsgType = "markdown",
        mentions: Mentions | None = None,
    ) -> list[dict[str, Any]]:
        """Render ``notification`` into API payloads, split to fit, validated.

        Args:
            template: a template name (built-in or configured).
            notification: what to render.
            msgtype: ``"markdown"``, ``"markdown_v2"`` or ``"text"``.
            mentions: who to mention (from the route's configuration only); text puts them in
                the first payload's lists, markdown appends ``<@userid>`` to the first
                payload, markdown_v2 writes the userids plainly (it has no mentions).

        Returns:
            One payload, or several (numbered ``(i/n)``) when the content is too long.

        Raises:
            TemplateError: the template is unknown or does not compile.
            TemplateRenderError: the template failed at run time, or rendered nothing.
        """
        return self.render_check(
            template, notification, msgtype=msgtype, mentions=mentions
        ).payloads

    def check(self, samples: Sequence[Notification]) -> list[RenderReport]:
        """Render every template in every msgtype against ``samples`` (for ``gateway check``).

        Generic templates get the generic samples, the others the alert samples.

        Raises:
            TemplateError: the first template that fails.
        """
        reports: list[RenderReport] = []
        kinds: tuple[MsgType, ...] = ("markdown", "markdown_v2", "text")
        for name in self.template_names():
            family = BUILTIN_TEMPLATES.get(name, ("", ""))[1]
            for sample in samples:
                if (family == "generic") != (sample.source == "generic"):
                    continue
                if _is_summary(name) and not sample.alerts:
                    continue
                for msgtype in kinds:
                    if name in BUILTIN_TEMPLATES and name not in self._user:
                        if self.resolve(name, msgtype) != name:
                            continue
                    reports.append(self.render_check(name, sample, msgtype=msgtype))
        return reports


# Bytes a cut rendering keeps free in each piece for the split's markers and the cut note.
_CUT_NOTE_RESERVE = 200


def _tidy(body: str) -> str:
    """A rendering without trailing spaces, runs of blank lines and blank ends."""
    return _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("\n", body)).strip("\n")


def is_summary_template(template: str) -> bool:
    """Whether ``template`` writes storm summaries (``summary`` and its built-in siblings)."""
    return _is_summary(template)


def _is_summary(template: str) -> bool:
    if template in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[template][1] == SUMMARY_TEMPLATE
    return template == SUMMARY_TEMPLATE


def _mention_line(
    prefix: str, items: list[str], separator: str, limit: int, warnings: list[str]
) -> str:
    """The mention line, at most a quarter of the limit (the message is about the alert)."""
    if not items:
        return ""
    budget = limit // 4
    line = prefix
    for count, item in enumerate(items):
        candidate = line + (separator if count else "") + item
        if limits.utf8_len(candidate) > budget:
            warnings.append(
                CodedWarning(
                    f"mention line full: {len(items) - count} of {len(items)} left out",
                    "render.mentions_full", left=len(items) - count, total=len(items),
                )
            )  # fmt: skip
            return line if count else ""
        line = candidate
    return line
