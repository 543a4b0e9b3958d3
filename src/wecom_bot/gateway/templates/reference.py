"""What a template can use, as a page built from the renderer itself (``docs/templates.md``).

The names come from the code: the variables from the context the renderer builds for a
sample notification, the fields from :class:`~.templates.AlertView` and
:class:`~.templates.NotificationView`, the filters from the renderer's environment, and the
escaping table from running the escapers on each markup character. The descriptions live
here, and the tests fail when a name has none, when a description names nothing, or when
``docs/templates.md`` differs from :func:`render_reference`. After changing either, run::

    python -m wecom_bot.gateway.templates.reference > docs/templates.md
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

import jinja2.filters

from ..samples import sample_notification
from .escaping import escape_markdown, escape_markdown_v2, escape_text
from .filters import ESCAPER_KEY, TEXT_FILTERS
from .renderer import AlertView, NotificationView, Renderer, TemplateError
from .sandbox import unmetered

__all__ = [
    "ALERT_FIELDS",
    "FILTERS",
    "NOTIFICATION_FIELDS",
    "VARIABLES",
    "alert_field_names",
    "filter_names",
    "notification_field_names",
    "render_reference",
    "variable_names",
]

VARIABLES: Mapping[str, str] = {
    "notification": "the whole notification (its fields below)",
    "alerts": "the alerts to list: firing first, at most `max_alerts_per_message` (see "
    "[per alert or summary](#per-alert-or-summary))",
    "all_alerts": "every alert, firing first",
    "firing_alerts": "the firing alerts",
    "resolved_alerts": "the resolved alerts",
    "more": "how many alerts are not listed (including those the sender truncated)",
    "total": "how many alerts the notification has (including truncated ones)",
    "cut_alerts": "how many alerts the gateway left out of a payload too large to keep (in `more`)",
    "cut_values": "how many values the gateway cut short (each ends `…(N bytes more)`)",
    "firing_count": "how many alerts fire",
    "resolved_count": "how many alerts are resolved",
    "status": '`"firing"` or `"resolved"`',
    "firing": "whether the notification fires (a bool)",
    "title": "the common `alertname`, else the group labels, else the alert names (escaped)",
    "receiver": "the sender's receiver name (escaped)",
    "source": '`"alertmanager"`, `"grafana"` or `"generic"`',
    "group_labels": "the labels the sender grouped by (a mapping)",
    "common_labels": "the labels every alert shares (a mapping)",
    "common_annotations": "the annotations every alert shares (a mapping)",
    "external_url": "the sender's own URL (Alertmanager's `externalURL`)",
    "raw": "a generic webhook's JSON, every string escaped",
    "name": "a generic webhook's name",
    "msgtype": '`"markdown"`, `"markdown_v2"` or `"text"`: what is being rendered',
    "now": "the time of rendering (an aware datetime; format it with `|localtime`)",
    "timezone": "the gateway's `timezone` setting",
    "actions": "the action links of a firing Alertmanager group (`actions.ack`, `actions.silence`, "
    "`actions.silence_1h` / `_4h` / `_24h`, `actions.details`); none without `external_url`, "
    "see [actions.md](actions.md)",
}
"""The names a template sees at the top level."""

ALERT_FIELDS: Mapping[str, str] = {
    "status": '`"firing"` or `"resolved"`',
    "firing": "whether it fires",
    "labels": "its labels (`alert.labels.team`, `alert.labels['team']`)",
    "annotations": "its annotations",
    "name": "the `alertname` label",
    "severity": "the `severity` label",
    "summary": "the `summary` annotation",
    "description": "the `description` annotation",
    "runbook_url": "the `runbook_url` annotation (as text; `runbook_link` for a link)",
    "starts_at": "when it started (an aware datetime; `|localtime`)",
    "ends_at": "when it ended (`None` while firing)",
    "duration": 'how long it fired, until now while firing, e.g. `"2h 5m"`',
    "generator_url": "the payload's `generatorURL` (as text)",
    "fingerprint": "the sender's identity for its label set",
    "values": "Grafana's `values` (a mapping)",
    "value_string": "Grafana's `valueString`",
    "silence_url": "Grafana's `silenceURL` (as text)",
    "dashboard_url": "Grafana's `dashboardURL` (as text)",
    "panel_url": "Grafana's `panelURL` (as text)",
    "image_url": "Grafana's `imageURL` (as text)",
    "source_link": '`generatorURL` as a safe link target, or `""`',
    "silence_link": "Grafana's `silenceURL`, or a new-silence link on Alertmanager's "
    '`externalURL` for a firing alert, or `""`',
    "runbook_link": 'the `runbook_url` annotation as a safe link target, or `""`',
    "dashboard_link": 'Grafana\'s `dashboardURL` as a safe link target, or `""`',
    "panel_link": 'Grafana\'s `panelURL` as a safe link target, or `""`',
    "image_link": 'Grafana\'s `imageURL` as a safe link target, or `""`',
}
"""The fields of each alert (``alert.name``) in ``alerts`` and the other lists."""

NOTIFICATION_FIELDS: Mapping[str, str] = {
    "source": "as the top-level `source`",
    "status": "as the top-level `status`",
    "receiver": "as the top-level `receiver`",
    "alerts": "every alert, in the sender's order",
    "group_labels": "as the top-level `group_labels`",
    "common_labels": "as the top-level `common_labels`",
    "common_annotations": "as the top-level `common_annotations`",
    "external_url": "as the top-level `external_url`",
    "group_key": "Alertmanager's `groupKey`",
    "truncated_alerts": "alerts the sender left out of the payload (its `max_alerts`)",
    "title": "Grafana's `title`, or a generic payload's",
    "message": "Grafana's `message`",
    "org_id": "Grafana's `orgId`",
    "state": "Grafana's `state`",
    "raw": "as the top-level `raw`",
}
"""The fields of ``notification``."""

FILTERS: Mapping[str, str] = {
    "localtime": '`{{ alert.starts_at|localtime("%H:%M") }}`: a datetime in the gateway\'s '
    "`timezone` (default format `%Y-%m-%d %H:%M:%S`)",
    "duration": "`{{ alert|duration }}`: how long an alert fired; also takes a timedelta "
    "or seconds",
    "url": "a URL as a safe link target: only http(s) passes, percent-encoded so that it "
    'cannot close the link; anything else gives `""`',
    "urlencode": "percent-encode for a URL component (a mapping or pairs become `a=1&b=2`)",
    "oneline": "collapse every run of whitespace (newlines too) into one space",
    "quoted": "continue a `> ` quote over every line of a multi-line value",
    "labels_inline": '`{{ alert.labels|labels_inline(exclude=["alertname"]) }}`: `name=value, ...`',
    "tojson": "pretty JSON (`indent`, default 2), every line's text escaped",
    "unescaped": "the raw text of a payload value: only for payloads you trust",
    "escape": "escape a value for the message's syntax (payload values already are)",
    "e": "the same as `escape`",
}
"""The renderer's own filters (Jinja's text filters also work and keep values escaped)."""

_PROBES = (
    "@all", "<font>", "[a](b)", "`code`", "*bold*", "# title", "a|b", "~~a~~", "_a_",
    "node_exporter", "\\*", "&amp;", "- item", "+ item", "===", "1. item", "1) item",
    "  indented",
)  # fmt: skip
"""A payload value per markup character the escapers handle, for the escaping table."""


@functools.cache
def _views() -> tuple[dict[str, object], AlertView, NotificationView]:
    renderer = Renderer(timezone="UTC")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    context = renderer._context(sample_notification("grafana_firing", now), "markdown")
    alert = context["alerts"][0]
    notification = context["notification"]
    assert isinstance(alert, AlertView) and isinstance(notification, NotificationView)
    return context, alert, notification


def _public(view: object) -> set[str]:
    names = {n for n in vars(view) if not n.startswith("_")}
    names |= {
        n
        for n, member in vars(type(view)).items()
        if isinstance(member, functools.cached_property | property) and not n.startswith("_")
    }
    return names


def variable_names() -> set[str]:
    """The names of the context the renderer builds (what a template sees at the top)."""
    return {n for n in _views()[0] if n != ESCAPER_KEY}


def alert_field_names() -> set[str]:
    """The public fields of an :class:`AlertView`."""
    return _public(_views()[1])


def notification_field_names() -> set[str]:
    """The public fields of a :class:`NotificationView`."""
    return _public(_views()[2])


def filter_names() -> set[str]:
    """The renderer's own filters: added, or replacing Jinja's (its text filters excepted)."""
    filters = Renderer(timezone="UTC")._env.filters
    builtin = jinja2.filters.FILTERS
    return {
        name
        for name, func in filters.items()
        if name not in builtin
        or (unmetered(func) is not builtin[name] and name not in TEXT_FILTERS)
    }


def _form_section() -> list[str]:
    return [
        "## Per alert or summary",
        "",
        "A notification of several alerts is written with the route's template when that "
        "rendering fits one message: the msgtype's byte limit, the mention line included "
        "(markdown's `<@userid>` line, markdown_v2's `cc:` line; text carries its mentions "
        "outside the content). Otherwise it is written as a storm summary (the `summary` "
        "template, see [gateway.md](gateway.md#storms)). The switch is by bytes, not by "
        "count: two alerts with long descriptions become a summary, fifteen one-line alerts "
        "of a terse template stay as written, and a storm never takes three messages where "
        "one would do. One alert, and a generic webhook's document, always use the route's "
        "template.",
        "",
        "`max_alerts_per_message` (default 20) is the most alerts the route's template is "
        "tried with: a notification with more is summarised without rendering the route's "
        "template first (and `alerts` never holds more than that). `null` turns summaries "
        "off: every notification is rendered by its route's template, split into as many "
        "messages as `max_messages_per_notification` allows. `gateway check`, the console's "
        "playground and the gateway itself make the same choice for the same notification.",
        "",
    ]


_WHITESPACE_EXAMPLES = (
    (
        "A block tag at the end of a text line takes that line's newline with it:",
        "**{{ title }}**{% if firing %} 🔥{% endif %}\n状态：{{ status }}",
    ),
    (
        "`+%}` keeps the newline after the tag:",
        "**{{ title }}**{% if firing %} 🔥{% endif +%}\n状态：{{ status }}",
    ),
    (
        "A tag alone on its line (indented or not) leaves no trace, so loops and conditions "
        "can be laid out freely:",
        "告警：\n{% for a in alerts %}\n  {% if a.firing %}\n- {{ a.labels.zone }}\n"
        "  {% endif %}\n{% endfor %}\n共 {{ total }} 条",
    ),
    (
        "`-%}` and `{%-` remove every space and newline after or before the tag (here, to "
        "keep a loop on one line):",
        "区域：\n{%- for a in alerts %} {{ a.labels.zone }}{% endfor %}",
    ),
    (
        "`{%+` keeps the spaces before a tag that starts a line:",
        "状态：\n  {%+ if firing %}告警中{% endif %}",
    ),
)
"""(what it shows, a template) for the whitespace section; each is rendered for the page."""


def _whitespace_section() -> list[str]:
    renderer = Renderer(
        {f"ws{i}": source for i, (_, source) in enumerate(_WHITESPACE_EXAMPLES)},
        timezone="UTC",
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    env = renderer._env
    notification = sample_notification("grafana_firing", datetime(2026, 1, 1, tzinfo=UTC))
    lines = [
        "## Whitespace",
        "",
        f"The sandbox's Jinja environment sets `trim_blocks` ({env.trim_blocks}) and "
        f"`lstrip_blocks` ({env.lstrip_blocks}), and `keep_trailing_newline` "
        f"({env.keep_trailing_newline}). `trim_blocks` removes the first newline after a "
        "block tag (`{% ... %}`, not `{{ ... }}`); `lstrip_blocks` removes the spaces and "
        "tabs before a block tag that starts a line. A tag alone on its line thus vanishes "
        "with its line, but a tag at the *end* of a text line, like `{% endif %}`, takes that "
        "line's newline with it and the next line is glued on. Write `{% endif +%}` to keep "
        "the newline, `{%+ if %}` to keep the indentation before a tag, and `{%- ... %}` / "
        "`{% ... -%}` to remove all whitespace (newlines included) before / after a tag. After "
        "rendering, spaces at the end of lines are removed, runs of blank lines become one "
        "blank line, and the message's leading and trailing newlines are dropped.",
        "",
        "Rendered for the Grafana sample (two firing alerts, zones `us-1` and `eu-1`):",
        "",
    ]
    for i, (what, source) in enumerate(_WHITESPACE_EXAMPLES):
        output = renderer.render_check(f"ws{i}", notification, msgtype="text").content
        lines += [what, "", "```jinja", source, "```", "", "gives", "", "```", output, "```", ""]
    return lines


_MISSPELT = "{% for alert in alerts %}\n**{{ alert.name }}**\n{{ alert.lables.team }}\n{% endfor %}"


def _mistakes_section() -> list[str]:
    renderer = Renderer({"mine": _MISSPELT}, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    notification = sample_notification("grafana_firing", datetime(2026, 1, 1, tzinfo=UTC))
    try:
        renderer.render_check("mine", notification)
    except TemplateError as exc:
        said = exc.in_words
    else:  # pragma: no cover - the reference test fails on this text
        said = "(no error: the renderer accepted a misspelt attribute)"
    return [
        "## Misspelt names",
        "",
        "The alert, the notification and the summary's groups, sections and lines have a "
        "fixed set of attributes (the tables above). Using one they do not have is a mistake "
        "in the template, never an alert without that field, so it fails the render instead "
        "of printing nothing: `gateway check` and the console's playground show it against "
        "the samples, and a notification that meets it becomes a dead letter with the same "
        "words (fix the template, reload, re-send it from the console). `is defined` and "
        "`|default(...)` still test for one quietly. A missing *label* or *annotation* "
        "(`alert.labels.team` on an alert without `team`) is data, not a mistake: it prints "
        "nothing. A name that is not a variable at all (`{{ alrets }}`) prints nothing too, "
        "and fails when one of its attributes is read (`alrets.x`). For example:",
        "",
        "```jinja",
        _MISSPELT,
        "```",
        "",
        "gives",
        "",
        "```",
        said,
        "```",
        "",
    ]


def _cell(text: str) -> str:
    shown = text.replace("\u00a0", "⍽").replace("|", "\\|")
    return f"`{shown}`" if "`" not in shown else f"`` {shown} ``"


def _table(rows: Mapping[str, str], prefix: str = "") -> list[str]:
    out = ["| name | what it is |", "|---|---|"]
    out += [f"| `{prefix}{name}` | {rows[name]} |" for name in rows]
    return out


def render_reference() -> str:
    """The text of ``docs/templates.md``."""
    lines = [
        "# What a template can use",
        "",
        "<!-- Generated by `python -m wecom_bot.gateway.templates.reference > docs/templates.md`"
        " from the renderer's code; a test keeps it in step. Do not edit by hand. -->",
        "",
        "Templates are Jinja2, run in a sandbox (see [gateway.md](gateway.md#templates)). Every "
        "string that came from a payload (labels, annotations, URLs, Grafana's title and "
        "message, any generic JSON string, label names too) is escaped for the message's "
        "syntax when it is written out: a template cannot forget to escape it. `|unescaped` "
        "is the explicit way out, for payloads you trust. Comparisons work on the raw text "
        '(`alert.labels.severity == "critical"`). The template\'s own text is trusted: '
        "markup belongs there.",
        "",
        "## Variables",
        "",
        *_table(VARIABLES),
        "",
        "## Each alert",
        "",
        "In `alerts`, `all_alerts`, `firing_alerts`, `resolved_alerts` and `notification.alerts`:",
        "",
        *_table(ALERT_FIELDS, "alert."),
        "",
        "## The notification",
        "",
        *_table(NOTIFICATION_FIELDS, "notification."),
        "",
        "## Filters",
        "",
        *_table(FILTERS),
        "",
        "Jinja's text filters (" + ", ".join(f"`{n}`" for n in TEXT_FILTERS) + ") work on "
        "payload values and keep them escaped. `safe`, `urlize`, `xmlattr` and `forceescape` "
        "are removed.",
        "",
        *_form_section(),
        *_whitespace_section(),
        *_mistakes_section(),
        "## Escaping",
        "",
        "Payload text is made harmless by substitution with full-width look-alike characters, "
        "not backslashes: WeCom's legacy markdown has no escape syntax. A look-alike keeps the "
        "text readable and can never turn back into markup. What each syntax makes of a "
        "payload value (`⍽` marks a no-break space):",
        "",
        "| payload value | text | markdown | markdown_v2 |",
        "|---|---|---|---|",
        *(
            f"| {_cell(probe)} | {_cell(escape_text(probe))} | {_cell(escape_markdown(probe))} | "
            f"{_cell(escape_markdown_v2(probe))} |"
            for probe in _PROBES
        ),
        "",
        "Every syntax also turns `\\r\\n`, `\\r`, U+2028, U+2029 and NEL into `\\n`; removes "
        "other control characters, bidirectional overrides and isolates, and the byte order "
        "mark; and replaces unpaired surrogates with U+FFFD. See "
        "`wecom_bot/gateway/templates/escaping.py` for the reasons.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_reference())
