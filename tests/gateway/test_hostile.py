"""Hostile alert content cannot mention anyone, colour text, link, or change a message's shape.

Besides direct checks on the rendered text, each hostile rendering is drawn with the project's
preview (its model of the WeCom client) and compared with a *benign twin*: the same notification
with every printable non-space character of the payload replaced by ``a``. The HTML skeletons
(tags and classes) must be identical: whatever the values are, they only ever become text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic
from wecom_bot.gateway.model import Alert, Notification
from wecom_bot.gateway.templates.escaping import (
    escape,
    escape_markdown,
    escape_markdown_v2,
    escape_text,
    safe_url,
    sanitize,
)
from wecom_bot.gateway.templates.renderer import Renderer
from wecom_bot.messages import parse_message
from wecom_bot.preview import render_message_html

NOW = datetime(2024, 5, 1, 4, 20, tzinfo=UTC)
MSGTYPES = ("markdown", "markdown_v2", "text")
RENDERER = Renderer(clock=lambda: NOW)  # built-in templates compile once for the module

HOSTILE = [
    "@all",
    "<@all>",
    "<@alice> please",
    "@all\n@alice",
    '<font color="warning">FAKE</font>',
    "<font color='info'>x",
    "</font>",
    "[click](http://evil.example/steal)",
    "![img](http://evil.example/p.png)",
    "[x]: http://evil.example/ref",
    "<http://evil.example/auto>",
    "# Heading\n## Another",
    "> quoted\n>> nested",
    "- item\n* star\n+ plus\n1. one\n2) two",
    "```\ncode\n```",
    "~~~\nfence",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "**bold** __bold__ *it* _it_",
    "title\n===\nsub\n---",
    "\\[escaped](http://evil.example)\\",
    "&lt;@all&gt; &#64;all &#x3C;font&#x3E;",
    "`inline` code",
    "line\r\nwith\rbreaks\u2028and\u2029separators\x85nel",
    "bidi \u202eevil\u202c \u2066iso\u2069 \ufeffbom \x00nul \x1bescape",
    "    indented code",
    "emoji 👨\u200d👩\u200d👧 and 中文，标点。",
    "http://raw.example/url?x=1&y=<@all>",
    "lone \ud800 surrogate",
    "a" * 300 + "<@all>",
]


# --------------------------------------------------------------------------- escaping units


@pytest.mark.parametrize(
    ("syntax", "value", "expected"),
    [
        ("text", "hi @all <@bob> [x](y)", "hi ＠all ＜＠bob＞ ［x］(y)"),
        ("text", "# not a heading *", "# not a heading *"),
        ("markdown", "<@all>", "＜＠all＞"),
        ("markdown", '<font color="info">x</font>', '＜font color="info"＞x＜/font＞'),
        ("markdown", "[a](http://e)", "［a］(http://e)"),
        ("markdown", "# h\n> q", "＃ h\n＞ q"),
        ("markdown", "**b** `c`", "＊＊b＊＊ ｀c｀"),
        ("markdown", "- a\n  1. b", "－ a\n  1． b"),
        ("markdown", "a-b 1.5 x+y", "a-b 1.5 x+y"),  # only at a line start
        ("markdown", "-5\n1.5\n+1", "-5\n1.5\n+1"),  # and only where it makes a list
        ("markdown", "&lt;@all&gt; &amp; R&D", "＆lt;＠all＆gt; ＆amp; R&D"),
        ("markdown_v2", "| a | b |", "｜ a ｜ b ｜"),
        ("markdown_v2", "~~~\n```", "～～～\n｀｀｀"),
        ("markdown_v2", "node_exporter __init__ _x_", "node_exporter ＿＿init＿＿ ＿x＿"),
        ("markdown_v2", "\\*not\\* C:\\dir", "＼＊not＼＊ C:\\dir"),
        ("markdown_v2", "a\n===\n---", "a\n＝==\n－--"),
        ("markdown_v2", "  \tcode", "\u00a0" * 4 + "code"),  # a tab stops at column 4
        ("markdown_v2", "2) two", "2） two"),
    ],
)
def test_escape_examples(syntax: Any, value: str, expected: str) -> None:
    assert escape(value, syntax) == expected


def test_sanitize_normalises_breaks_and_drops_invisible_controls() -> None:
    assert sanitize("a\r\nb\rc\u2028d\u2029e\x85f") == "a\nb\nc\nd\ne\nf"
    assert sanitize("x\u202ey\u2066z\u2069\ufeff\x00\x1b\x7f\u200e") == "xyz"
    assert sanitize("tab\tkept, zwj 👨\u200d👩 kept") == "tab\tkept, zwj 👨\u200d👩 kept"
    assert sanitize("lone \ud800") == "lone \ufffd"
    with pytest.raises(ValueError, match="unknown syntax"):
        escape("x", "html")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://prom:9090/graph?g0.expr=up&g0.tab=1",
            "http://prom:9090/graph?g0.expr=up&g0.tab=1",
        ),
        ("HTTPS://Grafana.example.com/d/x#panel", "HTTPS://Grafana.example.com/d/x#panel"),
        ("http://x/a)[b](http://evil)", "http://x/a%29%5Bb%5D%28http://evil%29"),
        ("http://x/<@all>*`|\\", "http://x/%3C%40all%3E%2A%60%7C%5C"),
        ("http://x/a b\nc", "http://x/a%20b%0Ac"),
        ("http://x/%20ok/%zz/100%", "http://x/%20ok/%25zz/100%25"),
        ("http://x/中文", "http://x/%E4%B8%AD%E6%96%87"),
        ("  http://x/trimmed  ", "http://x/trimmed"),
        ("javascript:alert(1)", ""),
        ("data:text/html,<script>", ""),
        ("//evil.example/x", ""),
        ("ftp://files.example/x", ""),
        ("http://user@evil.example/", ""),
        ("http://", ""),
        ("", ""),
    ],
)
def test_safe_url(url: str, expected: str) -> None:
    assert safe_url(url) == expected


@given(st.text())
def test_safe_url_is_always_harmless(url: str) -> None:
    out = safe_url(url)
    assert out == "" or re.match(r"(?i)https?://", out)
    assert not re.search(r"[\s()\[\]<>@*`|\\\"']", out)
    assert out.isascii()


@given(st.text(), st.sampled_from(MSGTYPES))
def test_escaped_text_has_no_markup_characters(value: str, syntax: Any) -> None:
    out = escape(value, syntax)
    for forbidden in ("@", "<", ">", "[", "]"):
        assert forbidden not in out
    if syntax != "text":
        for forbidden in ("`", "*", "#"):
            assert forbidden not in out
    if syntax == "markdown_v2":
        assert "|" not in out and "~" not in out
        assert not re.search(r"(?m)^[ \t]*(?:[-+=](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$))", out)
        assert not re.search(r"(?m)^[ \t]*(?:=+|-+)[ \t]*$", out)  # no setext underline
        assert not re.search(r"(?m)^[ \t]", out)  # no indented code
    out.encode("utf-8")  # always valid UTF-8


# --------------------------------------------------------------------------- rendering helpers


def hostile_notification(
    value: str, *, key: str = "note", status: str = "firing", url: str = "http://prom/graph"
) -> Notification:
    """Every payload string of a notification set to (or containing) ``value``."""
    alert = Alert(
        status,  # type: ignore[arg-type]
        {"alertname": value, "severity": value, "instance": value, key: value},
        {"summary": value, "description": value, "runbook_url": url, key: value},
        NOW - timedelta(minutes=5),
        ends_at=NOW if status == "resolved" else None,
        generator_url=url,
        fingerprint=value,
        value_string=value,
        silence_url=url,
        dashboard_url=url,
        panel_url=url,
        image_url=url,
    )
    return Notification(
        "alertmanager",
        status,  # type: ignore[arg-type]
        receiver=value,
        alerts=(alert,),
        group_labels={"alertname": value},
        common_labels={"alertname": value, key: value},
        common_annotations={"summary": value},
        external_url=url,
        group_key=value,
        title=value,
        message=value,
    )


def twin(value: str) -> str:
    """Same line structure, whitespace and invisible characters; every other character is 'a'."""
    return "".join(c if (c.isspace() or not c.isprintable()) else "a" for c in value)


_TAG = re.compile(r'<(/?)([a-z0-9]+)(?:[^>]*?\bclass="([^"]*)")?[^>]*>')


def skeleton(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The tags and classes of the preview of ``payload``, without any text or URL."""
    return [m.groups("") for m in _TAG.finditer(render_message_html(payload))]


TEMPLATE_FONTS = re.compile(r'<font color="(?:warning|info|comment)">')
LINK_LABELS = {"查看来源", "Runbook", "仪表盘", "面板", "截图", "静默", "来源"}


def assert_harmless(payloads: list[dict[str, Any]], msgtype: str) -> None:
    for payload in payloads:
        assert parse_message(payload).to_payload() == payload
        text = payload[msgtype]["content"]
        assert "@" not in text  # no mention of any kind, no @all
        assert "<@" not in text
        fonts = re.findall(r"<font[^>]*>", text, re.IGNORECASE)
        assert all(TEMPLATE_FONTS.fullmatch(f) for f in fonts)
        if msgtype != "markdown":
            assert not fonts
        for label in re.findall(r"\[([^\]]*)\]\(", text):
            assert label in LINK_LABELS
        if msgtype == "text":
            assert "](" not in text
            assert "mentioned_list" not in payload["text"]


# --------------------------------------------------------------------------- fixed hostile corpus


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("status", ["firing", "resolved"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_through_builtin_templates(value: str, status: str, msgtype: Any) -> None:
    renderer = RENDERER
    hostile_n = hostile_notification(value, status=status)
    hostile = renderer.render("default", hostile_n, msgtype=msgtype)
    benign = renderer.render(
        "default", hostile_notification(twin(value), status=status), msgtype=msgtype
    )
    assert_harmless(hostile, msgtype)
    assert [skeleton(p) for p in hostile] == [skeleton(p) for p in benign]
    if msgtype == "markdown_v2":
        rows = [ln for ln in hostile[0]["markdown_v2"]["content"].splitlines() if "|" in ln]
        assert len(rows) == 3 and all(row.count("|") == 9 for row in rows)


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_label_names_and_urls(value: str, msgtype: Any) -> None:
    renderer = RENDERER
    n = hostile_notification("v", key=value, url=f"javascript:{value}")
    payloads = renderer.render("default", n, msgtype=msgtype)
    assert_harmless(payloads, msgtype)
    text = payloads[0][msgtype]["content"]
    assert "javascript" not in text.lower() or msgtype != "markdown"  # no link to it
    assert not re.search(r"\]\((?!https?://)", text)


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_generic_payload(value: str, msgtype: Any) -> None:
    renderer = RENDERER
    payload = {"title": value, "message": value, value: [value, {"k": value}], "status": value}
    hostile = renderer.render("generic", parse_generic("hooks", payload), msgtype=msgtype)
    benign_payload = {
        "title": twin(value),
        "message": twin(value),
        twin(value): [twin(value), {"k": twin(value)}],
        "status": twin(value),
    }
    benign = renderer.render("generic", parse_generic("hooks", benign_payload), msgtype=msgtype)
    assert_harmless(hostile, msgtype)
    if len(hostile) == len(benign) == 1:
        assert skeleton(hostile[0]) == skeleton(benign[0])


def test_alertmanager_payload_end_to_end() -> None:
    """From raw JSON through the parser and the renderer, like the gateway does."""
    payload = {
        "receiver": "<@all>",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "[pwn](http://evil)", "severity": "<@all>"},
                "annotations": {"summary": '<font color="info">ok</font>', "description": "# x"},
                "startsAt": "2024-05-01T04:00:00Z",
                "generatorURL": "javascript:alert(1)",
            }
        ],
        "commonLabels": {"alertname": "[pwn](http://evil)"},
        "externalURL": "http://am/<@all>",
    }
    n = parse_alertmanager(payload)
    for msgtype in MSGTYPES:
        payloads = RENDERER.render("default", n, msgtype=msgtype)
        assert_harmless(payloads, msgtype)  # type: ignore[arg-type]
        html = render_message_html(payloads[0])
        assert "wb-mention" not in html and "wb-msg--at-all" not in html
        hrefs = re.findall(r'href="([^"]*)"', html)
        # Only the silence link on the Alertmanager (the label values percent-encoded inside its
        # filter); no link to the javascript: generator URL, none to the value's own URL.
        assert all(h.startswith("http://am/%3C%40all%3E/#/silences/new?filter=") for h in hrefs)
        assert len(hrefs) == (1 if msgtype != "text" else 0)


# --------------------------------------------------------------------------- cannot forget


EXPRESSIONS = [
    "{{ v }}",
    "{{ v | upper }}",
    "{{ v | lower | title }}",
    "{{ v.upper() }}",
    "{{ v.replace('x', 'y') }}",
    "{{ v.split(' ') | join('+') }}",
    "{{ v[1:] }}",
    "{{ v[0] ~ v[1:] }}",
    "{{ v ~ '!' }}",
    "{{ v + '!' }}",
    "{{ '%s' % v }}",
    "{{ '{}'.format(v) }}",
    "{{ '%s' | format(v) }}",
    "{{ [v, v] | join }}",
    "{{ v | list | join }}",
    "{{ v | truncate(12) }}",
    "{{ v | wordwrap(5) }}",
    "{{ v | indent(2, true) }}",
    "{{ v | center(60) }}",
    "{{ v | trim }}",
    "{{ v | reverse }}",
    "{{ v | striptags }}",
    "{{ v | string }}",
    "{{ v | e }}",
    "{{ v | pprint }}",
    "{{ v | tojson }}",
    "{{ v | oneline }}",
    "{{ v | quoted }}",
    "{{ v | urlencode }}",
    "{{ v | default('x') }}",
    "{{ alert.labels | dictsort | join(',') }}",
    "{{ alert.labels.values() | sort | join(',') }}",
    "{{ alert.labels | labels_inline }}",
    "{{ alert.labels | tojson }}",
    "{{ alert.labels }}",
    "{{ notification.raw }}",
    "{% for k, x in alert.labels.items() %}{{ k }}={{ x }};{% endfor %}",
    "{% set s %}**{{ v }}**{% endset %}{{ s }}",
    "{% macro m(x) %}<b>{{ x }}</b>{% endmacro %}{{ m(v) }}",
    "{% macro m(x) %}**{{ x }}**{% endmacro %}{{ m(v) ~ v }}",
    "{% filter upper %}{{ v }}{% endfilter %}",
    "{{ v if v else 'none' }}",
    "{{ (v ~ '') | replace('＠', '@') }}",  # undoing the escaping takes a deliberate act
]


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_escaping_survives_every_way_of_using_a_value(expression: str, msgtype: Any) -> None:
    value = '<@all> @all [x](http://evil) <font color="info">f</font>'
    source = "{% set alert = alerts[0] %}{% set v = alert.labels.v %}" + expression
    renderer = Renderer({"t": source}, clock=lambda: NOW)
    n = hostile_notification("h", key="v")
    n = Notification(
        "alertmanager",
        "firing",
        alerts=(
            Alert("firing", {"alertname": "A", "v": value}, {}, NOW, generator_url="http://x"),
        ),
        raw={"v": value},
    )
    text = renderer.render_check("t", n, msgtype=msgtype).content
    if "replace('＠', '@')" in expression:
        assert "@" in text and "<@" not in text  # only the one character the author restored
        return
    assert "@" not in text, text
    assert "<font" not in text and "<@" not in text and "](" not in text, text


def test_unescaped_is_the_one_explicit_way_out() -> None:
    renderer = Renderer({"t": "{{ alerts[0].labels.v | unescaped }}"})
    n = Notification("alertmanager", "firing", alerts=(Alert("firing", {"v": "<@all>"}, {}, NOW),))
    assert renderer.render_check("t", n).content == "<@all>"
    assert "safe" not in renderer._env.filters  # |safe would suggest escaping can be skipped


def test_escape_functions_agree_with_the_renderer() -> None:
    value = "[a](b) <@c> #d"
    n = Notification("alertmanager", "firing", alerts=(Alert("firing", {"v": value}, {}, NOW),))
    r = Renderer({"t": "{{ alerts[0].labels.v }}"})
    assert r.render_check("t", n, msgtype="markdown").content == escape_markdown(value)
    assert r.render_check("t", n, msgtype="markdown_v2").content == escape_markdown_v2(value)
    assert r.render_check("t", n, msgtype="text").content == escape_text(value)


# --------------------------------------------------------------------------- properties

MARKUP = st.sampled_from(list("@<>[]()!*#`~_|\\-+=.&;:/ \n\t\r0123456789aflnot") + ["\u2028"])
VALUES = st.one_of(
    st.text(alphabet=st.one_of(MARKUP, st.characters()), max_size=30),
    st.sampled_from(HOSTILE).map(lambda s: s[:40]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=VALUES,
    other=VALUES,
    msgtype=st.sampled_from(MSGTYPES),
    status=st.sampled_from(["firing", "resolved"]),
)
def test_property_any_label_value_renders_harmlessly(
    value: str, other: str, msgtype: Any, status: str
) -> None:
    renderer = RENDERER
    n = hostile_notification(value, status=status)
    alert = n.alerts[0]
    labels = {**alert.labels, "team": other}
    annotations = {**alert.annotations, "description": other}
    second = Alert(status, labels, annotations, alert.starts_at, alert.ends_at)  # type: ignore[arg-type]
    n = Notification(n.source, n.status, alerts=(alert, second), common_labels=n.common_labels)
    benign_first = hostile_notification(twin(value), status=status).alerts[0]
    benign_second = Alert(
        status,  # type: ignore[arg-type]
        {k: twin(v) for k, v in labels.items()},
        {k: v if k == "runbook_url" else twin(v) for k, v in annotations.items()},
        alert.starts_at,
        alert.ends_at,
    )
    benign = Notification(
        n.source,
        n.status,
        alerts=(benign_first, benign_second),
        common_labels={k: twin(v) for k, v in n.common_labels.items()},
    )
    hostile_payloads = renderer.render("default", n, msgtype=msgtype)
    benign_payloads = renderer.render("default", benign, msgtype=msgtype)
    assert_harmless(hostile_payloads, msgtype)
    assert len(hostile_payloads) == len(benign_payloads) == 1
    assert skeleton(hostile_payloads[0]) == skeleton(benign_payloads[0])


@settings(max_examples=100, deadline=None)
@given(value=VALUES, msgtype=st.sampled_from(MSGTYPES))
def test_property_user_template_with_string_operations(value: str, msgtype: Any) -> None:
    source = (
        "{% set v = alerts[0].labels.v %}**{{ v }}** {{ v | upper }} {{ v[1:] }} "
        "{{ v ~ v }} {{ v | truncate(10) }} {{ v.split() | join(' ') }} {{ v | wordwrap(7) }}"
    )
    n = Notification("alertmanager", "firing", alerts=(Alert("firing", {"v": value}, {}, NOW),))
    report = Renderer({"t": source}).render_check("t", n, msgtype=msgtype)
    text = report.content
    assert "@" not in text and "<@" not in text and "<font" not in text
    assert "](" not in text
    for payload in report.payloads:
        parse_message(payload)
