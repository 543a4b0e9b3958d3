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
    A notification with more alerts than ``max_alerts`` renders the ``summary`` template
    (``summary_v2``, ``summary_text``) instead of the route's, listing every alert compactly;
    the dispatcher renders it too when it folds a backlog. Its variables are described in
    :mod:`.summaries`.

Mentions never come from a template's values; see :class:`~.routing.Mentions` for how each
msgtype carries them. Over-long content is split with :func:`wecom_bot.split.split_content`
(parts numbered ``(i/n)``), and every payload is validated with
:func:`wecom_bot.messages.parse_message`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from .. import limits
from ..errors import ConfigError
from ..messages import parse_message
from ..split import split_content
from ..storm import AlertBrief
from .escaping import escape_markdown, escape_markdown_v2, escape_text, safe_url
from .model import Alert, Notification
from .routing import Mentions
from .summaries import briefs_of_notification, summary_context

__all__ = [
    "BUILTIN_TEMPLATES",
    "AlertView",
    "MsgType",
    "NotificationView",
    "RenderReport",
    "RenderedPart",
    "Renderer",
    "TemplateError",
    "TemplateRenderError",
    "Untrusted",
]

MsgType = Literal["markdown", "markdown_v2", "text"]

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


class TemplateError(ConfigError):
    """A template is unusable: unknown, or a syntax error (the message names it and the line).

    Attributes:
        template: the template's name.
        line: the line of the problem, if known.
    """

    def __init__(self, message: str, *, template: str, line: int | None = None) -> None:
        super().__init__(message)
        self.template = template
        self.line = line


class TemplateRenderError(TemplateError):
    """A template failed while rendering a notification (or rendered nothing)."""


# --------------------------------------------------------------------------- untrusted values


def _raw(value: Any) -> Any:
    return value._raw if isinstance(value, Untrusted) else value


def _wrap_result(value: Any, esc: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return Untrusted(value, esc)
    if isinstance(value, list | tuple):
        return [Untrusted(v, esc) if isinstance(v, str) else v for v in value]
    return value


_STR_METHODS = frozenset(
    """capitalize casefold center count endswith expandtabs find index isalnum isalpha isascii
    isdecimal isdigit islower isnumeric isspace istitle isupper join ljust lower lstrip
    partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip
    split splitlines startswith strip swapcase title upper zfill""".split()
)


class Untrusted:
    """Text from a payload: ``str()`` gives it escaped for the message being rendered.

    It behaves like a string in templates (comparison, ``in``, ``len``, slicing, iteration,
    string methods, ``+``) and every such operation that yields text yields :class:`Untrusted`
    text again, so escaping cannot be lost on the way to the output.
    """

    __slots__ = ("_esc", "_raw")

    def __init__(self, raw: str, esc: Callable[[str], str]) -> None:
        self._raw = raw
        self._esc = esc

    def __str__(self) -> str:
        return self._esc(self._raw)

    def __repr__(self) -> str:
        return repr(str(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __len__(self) -> int:
        return len(self._raw)

    def __bool__(self) -> bool:
        return bool(self._raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    def __eq__(self, other: object) -> bool:
        return bool(self._raw == _raw(other))

    def __ne__(self, other: object) -> bool:
        return bool(self._raw != _raw(other))

    def __lt__(self, other: Any) -> bool:
        return bool(self._raw < _raw(other))

    def __le__(self, other: Any) -> bool:
        return bool(self._raw <= _raw(other))

    def __gt__(self, other: Any) -> bool:
        return bool(self._raw > _raw(other))

    def __ge__(self, other: Any) -> bool:
        return bool(self._raw >= _raw(other))

    def __contains__(self, item: Any) -> bool:
        return str(_raw(item)) in self._raw

    def __getitem__(self, key: int | slice) -> Untrusted:
        return Untrusted(self._raw[key], self._esc)

    def __iter__(self) -> Iterator[Untrusted]:
        return (Untrusted(ch, self._esc) for ch in self._raw)

    def __add__(self, other: Any) -> Untrusted:
        return Untrusted(self._raw + str(_raw(other)), self._esc)

    def __radd__(self, other: Any) -> Untrusted:
        return Untrusted(str(_raw(other)) + self._raw, self._esc)

    def __int__(self) -> int:
        return int(self._raw)

    def __float__(self) -> float:
        return float(self._raw)

    def __getattr__(self, name: str) -> Any:
        if name not in _STR_METHODS:
            raise AttributeError(name)
        method = getattr(self._raw, name)
        esc = self._esc

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(_unwrap(a) for a in args)
            kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
            return _wrap_result(method(*args, **kwargs), esc)

        return call


class UntrustedMap(Mapping[Any, Any]):
    """A read-only mapping (labels, annotations, JSON objects) whose keys and values are wrapped.

    Look-ups take plain strings (``labels.team``, ``labels["team"]``).
    """

    __slots__ = ("_data", "_esc")

    def __init__(self, data: Mapping[str, Any], esc: Callable[[str], str]) -> None:
        self._data = data
        self._esc = esc

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._data[_raw(key)], self._esc)

    def __iter__(self) -> Iterator[Any]:
        return (Untrusted(k, self._esc) if isinstance(k, str) else k for k in self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __str__(self) -> str:
        return repr(self)


def _wrap(value: Any, esc: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return Untrusted(value, esc)
    if isinstance(value, Mapping):
        return UntrustedMap(value, esc)
    if isinstance(value, list | tuple):
        return [_wrap(v, esc) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, Untrusted):
        return value._raw
    if isinstance(value, UntrustedMap):
        return {_unwrap(k): _unwrap(v) for k, v in value._data.items()}
    if isinstance(value, Mapping):
        return {_unwrap(k): _unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap(v) for v in value]
    return value


# --------------------------------------------------------------------------- views


def _format_duration(delta: timedelta) -> str:
    """``45s``, ``3m 20s``, ``42m``, ``2h 5m``, ``3d 4h``: seconds only while they matter."""
    seconds = max(int(delta.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes >= 10 or (minutes and not seconds):
        return f"{minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _alertmanager_silence_url(external_url: str, labels: Mapping[str, str]) -> str:
    if not external_url or not labels:
        return ""
    matchers = ",".join(
        f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in sorted(labels.items())
    )
    base = external_url.rstrip("/")
    return safe_url(f"{base}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}")


class AlertView:
    """An alert as a template sees it (payload strings are :class:`Untrusted`).

    Attributes:
        status: ``"firing"`` or ``"resolved"``.
        firing: whether it fires.
        labels: label mapping. annotations: annotation mapping.
        name: the ``alertname`` label. severity: the ``severity`` label.
        summary, description, runbook_url: those annotations.
        starts_at, ends_at: aware datetimes (``ends_at`` ``None`` when not ended); format
            them with ``|localtime``.
        duration: how long it fired (until now for a firing alert), e.g. ``"2h 5m"``.
        generator_url, fingerprint, values, value_string, silence_url, dashboard_url,
        panel_url, image_url: the payload's fields.
        source_link, silence_link, runbook_link, dashboard_link, panel_link, image_link:
            safe http(s) URLs for link targets, or ``""``. ``silence_link`` is Grafana's
            ``silenceURL`` or, for Alertmanager, a new-silence link on its ``externalURL``.
    """

    def __init__(
        self, alert: Alert, notification: Notification, esc: Callable[[str], str], now: datetime
    ) -> None:
        self.status = alert.status
        self.firing = alert.firing
        self.labels = UntrustedMap(alert.labels, esc)
        self.annotations = UntrustedMap(alert.annotations, esc)
        self.name = Untrusted(alert.labels.get("alertname", ""), esc)
        self.severity = Untrusted(alert.labels.get("severity", ""), esc)
        self.summary = Untrusted(alert.annotations.get("summary", ""), esc)
        self.description = Untrusted(alert.annotations.get("description", ""), esc)
        self.runbook_url = Untrusted(alert.annotations.get("runbook_url", ""), esc)
        self.starts_at = alert.starts_at
        self.ends_at = alert.ends_at
        end = alert.ends_at if (not alert.firing and alert.ends_at is not None) else now
        self.duration = _format_duration(end - alert.starts_at)
        self.generator_url = Untrusted(alert.generator_url, esc)
        self.fingerprint = Untrusted(alert.fingerprint, esc)
        self.values = UntrustedMap(alert.values, esc)
        self.value_string = Untrusted(alert.value_string, esc)
        self.silence_url = Untrusted(alert.silence_url, esc)
        self.dashboard_url = Untrusted(alert.dashboard_url, esc)
        self.panel_url = Untrusted(alert.panel_url, esc)
        self.image_url = Untrusted(alert.image_url, esc)
        self._alert = alert
        self._notification = notification

    @cached_property
    def source_link(self) -> str:
        """``generatorURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.generator_url)

    @cached_property
    def silence_link(self) -> str:
        """Grafana's ``silenceURL``, or a new-silence link on Alertmanager's ``externalURL``."""
        alert, notification = self._alert, self._notification
        if alert.silence_url:
            return safe_url(alert.silence_url)
        if notification.source == "alertmanager" and alert.firing:
            return _alertmanager_silence_url(notification.external_url, alert.labels)
        return ""

    @cached_property
    def runbook_link(self) -> str:
        """The ``runbook_url`` annotation as a safe link target, or ``""``."""
        return safe_url(self._alert.annotations.get("runbook_url", ""))

    @cached_property
    def dashboard_link(self) -> str:
        """Grafana's ``dashboardURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.dashboard_url)

    @cached_property
    def panel_link(self) -> str:
        """Grafana's ``panelURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.panel_url)

    @cached_property
    def image_link(self) -> str:
        """Grafana's ``imageURL`` as a safe link target, or ``""``."""
        return safe_url(self._alert.image_url)


class NotificationView:
    """A notification as a template sees it: every field of :class:`~.model.Notification`,
    payload strings as :class:`Untrusted`, ``alerts`` as :class:`AlertView` (all of them)."""

    def __init__(
        self, notification: Notification, alerts: list[AlertView], esc: Callable[[str], str]
    ) -> None:
        self.source = notification.source
        self.status = notification.status
        self.receiver = Untrusted(notification.receiver, esc)
        self.alerts = alerts
        self.group_labels = UntrustedMap(notification.group_labels, esc)
        self.common_labels = UntrustedMap(notification.common_labels, esc)
        self.common_annotations = UntrustedMap(notification.common_annotations, esc)
        self.external_url = Untrusted(notification.external_url, esc)
        self.group_key = Untrusted(notification.group_key, esc)
        self.truncated_alerts = notification.truncated_alerts
        self.title = Untrusted(notification.title, esc)
        self.message = Untrusted(notification.message, esc)
        self.org_id = notification.org_id
        self.state = Untrusted(notification.state, esc)
        self.raw = _wrap(notification.raw, esc)


def _title(notification: Notification) -> str:
    if notification.source == "generic":
        return notification.title or notification.receiver
    alertname = notification.common_labels.get("alertname")
    if alertname:
        return alertname
    if notification.group_labels:
        return " ".join(notification.group_labels.values())
    names = dict.fromkeys(a.labels.get("alertname", "") for a in notification.alerts)
    names.pop("", None)
    if names:
        return ", ".join(list(names)[:3]) + (" ..." if len(names) > 3 else "")
    return notification.title or notification.receiver or "alert"


_VIEWS = (AlertView, NotificationView)


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


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with a fast path for the gateway's own view objects.

    :class:`AlertView` and :class:`NotificationView` hold plain data (strings, numbers, dates,
    mappings of wrapped values) and no callables, so their public attributes need none of the
    sandbox's per-access checks; private ones stay unreachable. Everything else goes through
    the full sandbox.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) in _VIEWS and not attribute.startswith("_"):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def _utc_now() -> datetime:
    return datetime.now(UTC)


_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_TEMPLATE_FILE = "<template {}>"
# Not a valid Jinja identifier, so no template can shadow it with {% set %}.
_ESCAPER_KEY = "wecom-bot:escaper"


def _line_of(exc: BaseException) -> int | None:
    """The template line a runtime error came from (Jinja rewrites tracebacks to show it)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<template "):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Renderer:
    """Renders notifications into API payloads with built-in and configured templates.

    Args:
        templates: configured templates, name -> Jinja2 source; a name of a built-in
            overrides it. Compiled now: a syntax error fails here.
        timezone: IANA time zone for times in messages.
        max_alerts: list at most this many alerts per message ("and N more" for the rest);
            ``None``: all.
        clock: returns the current aware time (durations of firing alerts, ``now``).
        max_output_bytes: rendered content beyond this is cut, with a note.
        actions: writes a notification's action links (``actions`` in templates, ``None``
            when it has none); without it no message carries action links.

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
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"timezone: unknown time zone {timezone!r} (use an IANA name like Asia/Shanghai)"
            ) from None
        if max_alerts is not None and max_alerts < 1:
            raise ConfigError(f"max_alerts: must be at least 1, not {max_alerts}")
        self.timezone = timezone
        self.max_alerts = max_alerts
        self.clock = clock
        self.max_output_bytes = max_output_bytes
        self.actions = actions
        self._user: dict[str, str] = {}
        for name, source in (templates or {}).items():
            if not isinstance(name, str) or not name:
                raise ConfigError("templates: a template name must be a non-empty string")
            if not isinstance(source, str):
                raise ConfigError(f"templates.{name}: must be the template text")
            self._user[name] = source
        self._env = self._environment()
        for name in self._user:
            self._compile(name)

    # -- environment -----------------------------------------------------------------

    def _load(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        if name in self._user:
            return self._user[name], _TEMPLATE_FILE.format(name), lambda: True
        if name in BUILTIN_TEMPLATES:
            text = (resources.files(__package__) / "templates" / f"{name}.j2").read_text("utf-8")
            return text, _TEMPLATE_FILE.format(name), lambda: True
        return None

    def _environment(self) -> SandboxedEnvironment:
        env = _Sandbox(
            loader=jinja2.FunctionLoader(self._load),
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            extensions=["jinja2.ext.loopcontrols"],
        )
        for unsafe in ("safe", "urlize", "xmlattr", "forceescape"):
            env.filters.pop(unsafe, None)
        for name in _TEXT_FILTERS:
            env.filters[name] = _on_raw(env.filters[name])
        env.filters.update(
            localtime=self._localtime,
            duration=self._duration,
            url=_url_filter,
            oneline=_oneline,
            quoted=_quoted,
            labels_inline=_labels_inline,
            tojson=_tojson,
            urlencode=_urlencode,
            unescaped=_unescaped,
            escape=_escape_filter,
            e=_escape_filter,
        )
        return env

    def _compile(self, name: str) -> jinja2.Template:
        try:
            return self._env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.name or name
            raise TemplateError(
                f"template {where!r}, line {exc.lineno}: {exc.message}",
                template=where,
                line=exc.lineno,
            ) from None
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"unknown template {name!r} (known: {', '.join(self.template_names())})",
                template=name,
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

    # -- filters -------------------------------------------------------------------------

    def _localtime(self, value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if not isinstance(value, datetime):
            return ""
        return value.astimezone(self.tz).strftime(str(fmt))

    def _duration(self, value: Any) -> str:
        if isinstance(value, AlertView):
            return value.duration
        if isinstance(value, timedelta):
            return _format_duration(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _format_duration(timedelta(seconds=value))
        return ""

    # -- rendering ---------------------------------------------------------------------

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
            "title": Untrusted(_title(notification), esc),
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
            "actions": self.actions(notification) if self.actions else None,
            _ESCAPER_KEY: esc,
        }

    def _summary_context(
        self,
        briefs: Sequence[AlertBrief],
        msgtype: MsgType,
        *,
        max_messages: int | None = None,
        notifications: int = 1,
        cut_alerts: int = 0,
    ) -> dict[str, Any]:
        context = summary_context(
            briefs,
            msgtype=msgtype,
            esc=_ESCAPERS[msgtype],
            max_messages=max_messages,
            notifications=notifications,
            cut_alerts=cut_alerts,
        )
        context.update(now=self.clock(), timezone=self.timezone)
        context[_ESCAPER_KEY] = _ESCAPERS[msgtype]
        return context

    def summarizes(self, notification: Notification) -> bool:
        """Whether ``notification`` is written as a summary: it has more alerts than a message
        lists (``max_alerts``)."""
        return (
            self.max_alerts is not None
            and notification.source != "generic"
            and len(notification.alerts) > self.max_alerts
        )

    def _run(self, name: str, context: dict[str, Any]) -> tuple[str, bool]:
        template = self._compile(name)
        chunks: list[str] = []
        chars = 0
        cut = False
        try:
            for chunk in template.generate(context):
                chunks.append(chunk)
                chars += len(chunk)
                # A character is at least one byte: past the budget in characters, the bytes
                # are past it too. The exact cut happens once, below.
                if chars > self.max_output_bytes:
                    cut = True
                    break
        except TemplateError:
            raise
        except jinja2.TemplateSyntaxError as exc:  # an included template
            where = exc.name or name
            raise TemplateError(
                f"template {where!r}, line {exc.lineno}: {exc.message}",
                template=where,
                line=exc.lineno,
            ) from None
        except Exception as exc:
            line = _line_of(exc)
            at = f", line {line}" if line else ""
            kind = type(exc).__name__
            raise TemplateRenderError(
                f"template {name!r}{at} failed: {kind}: {exc}", template=name, line=line
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
    ) -> RenderReport:
        """Render ``notification`` and report each payload with its size against the limit.

        Args:
            template: a template name (built-in or configured).
            notification: what to render.
            msgtype: ``"markdown"``, ``"markdown_v2"`` or ``"text"``.
            mentions: who to mention (from the route's configuration only).

        Returns:
            The report; ``report.payloads`` are what :meth:`render` returns.

        Raises:
            TemplateError: the template is unknown or does not compile.
            TemplateRenderError: the template failed at run time, or rendered nothing.
        """
        if msgtype not in _ESCAPERS:
            raise ConfigError(f"msgtype: must be markdown, markdown_v2 or text, not {msgtype!r}")
        if self.summarizes(notification) or _is_summary(template):
            used = self.resolve(template if _is_summary(template) else SUMMARY_TEMPLATE, msgtype)
            context = self._summary_context(
                briefs_of_notification(notification),
                msgtype,
                cut_alerts=notification.truncated_alerts + notification.cut_alerts,
            )
            # One notification is one alert group: its links hold (a fold of several has none).
            context["actions"] = self.actions(notification) if self.actions else None
        else:
            used = self.resolve(template, msgtype)
            context = self._context(notification, msgtype)
        return self._report(template, used, msgtype, self._run(used, context), mentions)

    def render_summary(
        self,
        briefs: Sequence[AlertBrief],
        *,
        msgtype: MsgType = "markdown",
        max_messages: int | None = None,
        notifications: int = 1,
    ) -> RenderReport:
        """Write ``briefs`` as a storm summary with the ``summary`` template (or its sibling
        for ``msgtype``), split to fit.

        Args:
            briefs: the alerts, in arrival order.
            msgtype: ``"markdown"``, ``"markdown_v2"`` or ``"text"``.
            max_messages: the messages it may take; each label value gets its share.
            notifications: how many notifications the alerts came in (a digest folds several).

        Raises:
            TemplateError / TemplateRenderError: a configured ``summary`` template failed.
        """
        used = self.resolve(SUMMARY_TEMPLATE, msgtype)
        context = self._summary_context(
            briefs, msgtype, max_messages=max_messages, notifications=notifications
        )
        return self._report(SUMMARY_TEMPLATE, used, msgtype, self._run(used, context), None)

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
        body = _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("\n", body)).strip("\n")
        warnings: list[str] = []
        if cut:
            body += f"\n\n… (cut: the template rendered more than {self.max_output_bytes} bytes)"
            warnings.append(f"output cut at {self.max_output_bytes} bytes")
        if not body.strip():
            raise TemplateRenderError(
                f"template {used!r} rendered no content for this notification", template=used
            )
        limit = limits.CONTENT_LIMITS[msgtype]
        suffix = ""
        if msgtype == "markdown":
            tags = [f"<@{u[1:] if u == '@all' else u}>" for u in mentions.userids]
            suffix = _mention_line("\n\n", tags, "", limit, warnings)
            if mentions.mobiles:
                warnings.append(
                    f"markdown cannot mention mobile numbers: {len(mentions.mobiles)} left out"
                )
        elif msgtype == "markdown_v2" and mentions:
            names = [escape_markdown_v2(u.lstrip("@")) for u in mentions.userids]
            suffix = _mention_line("\n\ncc: ", names, ", ", limit, warnings)
            warnings.append("markdown_v2 cannot mention anyone: userids written plainly")
        content = body + suffix
        pieces = (
            split_content(body, limit - limits.utf8_len(suffix), syntax=msgtype, markers=True)
            if limits.utf8_len(content) > limit
            else [body]
        )
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
            warnings.append(f"mention line full: {len(items) - count} of {len(items)} left out")
            return line if count else ""
        line = candidate
    return line


# --------------------------------------------------------------------------- filters

# Jinja's own text filters, applied to the raw text of an Untrusted value (so that the escaping
# of the result sees whole lines, e.g. after wordwrap or indent) and wrapped again.
_TEXT_FILTERS = (
    "capitalize",
    "center",
    "indent",
    "lower",
    "replace",
    "reverse",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "wordcount",
    "wordwrap",
)


def _on_raw(func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = getattr(func, "jinja_pass_arg", None)
    index = 0 if pass_arg is None else 1

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = args[index] if len(args) > index else None
        if isinstance(value, Untrusted):
            args = (*args[:index], value._raw, *args[index + 1 :])
            return _wrap_result(func(*args, **kwargs), value._esc)
        return func(*args, **kwargs)

    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapper


def _urlencode(value: Any) -> str:
    """Percent-encode for a URL component; the result holds only ``A-Z a-z 0-9 _ . - %``."""
    pairs: Iterable[Any]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, list | tuple):
        pairs = value
    else:
        return quote(str(_raw(value)), safe="").replace("~", "%7E")
    return "&".join(f"{_urlencode(k)}={_urlencode(v)}" for k, v in pairs)


def _url_filter(value: Any) -> str:
    return safe_url(str(_raw(value))) if value is not None else ""


def _oneline(value: Any) -> Any:
    if isinstance(value, Untrusted):
        return Untrusted(" ".join(value._raw.split()), value._esc)
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def _quoted(value: Any) -> str:
    """Continue a ``> `` quote over every line of a multi-line value."""
    if isinstance(value, Untrusted):
        return "\n> ".join(str(Untrusted(line, value._esc)) for line in value._raw.split("\n"))
    return "\n> ".join(str(value).split("\n"))


def _labels_inline(value: Any, exclude: Sequence[str] = ()) -> Any:
    if not isinstance(value, UntrustedMap):
        return ""
    skip = {str(_raw(x)) for x in exclude}
    text = ", ".join(f"{k}={v}" for k, v in value._data.items() if k not in skip)
    return Untrusted(text, value._esc)


def _context_escaper(context: Context) -> Callable[[str], str]:
    escaper = context.get(_ESCAPER_KEY)
    return escaper if callable(escaper) else escape_markdown_v2


@pass_context
def _tojson(context: Context, value: Any, indent: int | None = 2) -> str:
    """Pretty JSON: the indentation is json's own (trusted), every line's text is escaped."""
    text = json.dumps(_unwrap(value), ensure_ascii=False, indent=indent, default=str)
    esc = _context_escaper(context)
    lines = []
    for line in text.split("\n"):  # json escapes newlines in strings: these are its own
        body = line.lstrip(" ")
        lines.append(line[: len(line) - len(body)] + esc(body))
    return "\n".join(lines)


def _unescaped(value: Any) -> Any:
    """The raw text of a payload value: only for payloads you trust."""
    return _raw(value)


@pass_context
def _escape_filter(context: Context, value: Any) -> str:
    if isinstance(value, Untrusted):
        return str(value)
    return _context_escaper(context)(str(value))
