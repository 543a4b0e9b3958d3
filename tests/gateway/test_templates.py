"""Rendering built-in and configured templates into validated, split WeCom payloads."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wecom_bot.errors import ConfigError
from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic, parse_grafana
from wecom_bot.gateway.model import Alert, Notification
from wecom_bot.gateway.routing import Mentions
from wecom_bot.gateway.samples import sample_notifications
from wecom_bot.gateway.templates.renderer import (
    BUILTIN_TEMPLATES,
    Renderer,
    TemplateError,
    TemplateRenderError,
)
from wecom_bot.limits import utf8_len
from wecom_bot.messages import parse_message

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2024, 5, 1, 4, 20, tzinfo=UTC)  # 12:20 in Asia/Shanghai


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return data


def content(payload: dict[str, Any]) -> str:
    text: str = payload[payload["msgtype"]]["content"]
    return text


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(clock=lambda: NOW)


@pytest.fixture
def am_firing() -> Notification:
    return parse_alertmanager(load("alertmanager_firing"))


@pytest.fixture
def am_resolved() -> Notification:
    return parse_alertmanager(load("alertmanager_resolved"))


def many_alerts(count: int, *, description: str = "", truncated: int = 0) -> Notification:
    alerts = tuple(
        Alert(
            "firing",
            {"alertname": "DiskFull", "instance": f"node-{i:03d}", "severity": "warning"},
            {"summary": f"disk of node-{i:03d} is full", "description": description},
            NOW - timedelta(minutes=i),
            generator_url=f"http://prometheus:9090/graph?g0.expr=disk{i}",
            fingerprint=f"{i:016x}",
        )
        for i in range(count)
    )
    return Notification(
        "alertmanager",
        "firing",
        receiver="wecom",
        alerts=alerts,
        common_labels={"alertname": "DiskFull", "severity": "warning"},
        external_url="http://alertmanager:9093",
        truncated_alerts=truncated,
    )


# --------------------------------------------------------------------------- markdown


def test_default_markdown_firing(renderer: Renderer, am_firing: Notification) -> None:
    [payload] = renderer.render("default", am_firing, msgtype="markdown")
    assert payload["msgtype"] == "markdown"
    text = content(payload)
    lines = text.splitlines()
    assert lines[0] == ('## <font color="warning">🔥 告警 FIRING · 2</font> PostgresReplicationLag')
    assert '<font color="comment">其中 1 条已恢复</font>' in text
    # Firing alerts are listed first, with their severity and local start time and duration.
    assert text.index("pg-2:9187") < text.index("pg-3:9187") < text.index("pg-4:9187")
    assert '<font color="warning">**PostgresReplicationLag**</font> 级别 `critical`' in text
    assert "> 摘要：Replica pg-2 is 312s behind" in text
    assert "> 详情：Replication lag on pg-2 has exceeded 300s for 5 minutes.\n> Check WAL" in text
    assert "> 开始：2024-05-01 11:48:00（已持续 31m）" in text
    # The resolved alert of the group says how long it lasted and when it ended.
    assert '<font color="info">**PostgresReplicationLag** 已恢复</font>' in text
    assert "> 开始：2024-05-01 11:30:00（持续 28m）\n> 结束：2024-05-01 11:58:00" in text
    assert "[查看来源](http://prometheus-0:9090/graph?g0.expr=pg_replication_lag_seconds" in text
    assert "[Runbook](https://runbooks.example.com/pg/replication-lag)" in text
    silence = re.search(r"\[静默\]\((http[^)]+)\)", text)
    assert silence is not None
    assert silence.group(1).startswith("http://alertmanager-0:9093/#/silences/new?filter=%7B")
    assert "instance%3D%22pg-2%3A9187%22" in silence.group(1)
    assert "标签：cluster=pg-main, instance=pg-2:9187, job=postgres, team=db" in text
    assert "and" not in text.split("\n")[-1]  # no "and N more" when everything is listed
    assert parse_message(payload).to_payload() == payload


def test_default_markdown_resolved(renderer: Renderer, am_resolved: Notification) -> None:
    [payload] = renderer.render("default", am_resolved, msgtype="markdown")
    text = content(payload)
    assert text.startswith('## <font color="info">✅ 已恢复 RESOLVED · 2</font>')
    assert '<font color="warning">' not in text
    assert "> 开始：2024-05-01 11:48:00（持续 45m）\n> 结束：2024-05-01 12:33:20" in text
    assert "[静默]" not in text  # nothing to silence once resolved
    # Two alerts were truncated by Alertmanager: they are counted.
    assert "另有 2 条告警未列出 (and 2 more)" in text


def test_time_zone_is_configurable(am_firing: Notification) -> None:
    utc = Renderer(timezone="UTC", clock=lambda: NOW)
    text = content(utc.render("default", am_firing)[0])
    assert "> 开始：2024-05-01 03:48:00（已持续 31m）" in text
    ny = Renderer(timezone="America/New_York", clock=lambda: NOW)
    assert "> 开始：2024-04-30 23:48:00" in content(ny.render("default", am_firing)[0])
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        Renderer(timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="max_alerts"):
        Renderer(max_alerts=0)


def test_duration_follows_the_clock(am_firing: Notification) -> None:
    later = Renderer(clock=lambda: NOW + timedelta(days=2, hours=3))
    assert "已持续 2d 3h" in content(later.render("default", am_firing)[0])


# --------------------------------------------------------------------------- markdown_v2


def test_default_v2_is_a_table(renderer: Renderer, am_firing: Notification) -> None:
    report = renderer.render_check("default", am_firing, msgtype="markdown_v2")
    assert report.used_template == "default_v2"
    [payload] = report.payloads
    assert payload["msgtype"] == "markdown_v2"
    text = content(payload)
    assert text.startswith("## 🔥 告警 FIRING · PostgresReplicationLag")
    assert "**2** 条告警，**1** 条已恢复" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows[0].startswith("| 状态 | 告警 | 级别 | 实例 |")
    assert len(rows) == 2 + 3
    assert all(row.count("|") == 9 for row in rows)
    assert rows[2].startswith("| 🔥 | PostgresReplicationLag | critical | pg-2:9187 |")
    assert "| 05-01 11:48 | 31m |" in rows[2]
    assert rows[4].startswith("| ✅ |")
    assert "<font" not in text


def test_default_v2_resolved(renderer: Renderer, am_resolved: Notification) -> None:
    text = content(renderer.render("default_v2", am_resolved, msgtype="markdown_v2")[0])
    assert text.startswith("## ✅ 已恢复 RESOLVED · PostgresReplicationLag")
    assert "**2** 条已恢复" in text
    assert "…… 另有 2 条告警未列出 (and 2 more)" in text


# --------------------------------------------------------------------------- text


def test_default_text_has_no_markup_and_carries_mentions(
    renderer: Renderer, am_firing: Notification
) -> None:
    mentions = Mentions(("alice", "@all"), ("13800000000",))
    [payload] = renderer.render("default", am_firing, msgtype="text", mentions=mentions)
    body = payload["text"]
    assert body["mentioned_list"] == ["alice", "@all"]
    assert body["mentioned_mobile_list"] == ["13800000000"]
    text = body["content"]
    assert text.startswith(
        "【告警 FIRING · 2】PostgresReplicationLag\n\n1. 🔥 PostgresReplicationLag"
    )
    for markup in ("<font", "**", "](", "<@", "> "):
        assert markup not in text
    assert "来源：http://prometheus-0:9090/graph?" in text
    assert "开始：2024-05-01 11:48:00（已持续 31m）" in text


# --------------------------------------------------------------------------- Grafana


def test_grafana_notifications_use_the_same_templates(renderer: Renderer) -> None:
    n = parse_grafana(load("grafana_firing"))
    text = content(renderer.render("default", n)[0])
    assert text.startswith('## <font color="warning">🔥 告警 FIRING · 2</font> Checkout latency')
    assert "> 数值：［ var='A' labels={service=checkout} value=2.4137 ］" in text
    assert "[仪表盘](https://grafana.example.com/d/web01?orgId=1)" in text
    assert "[面板](https://grafana.example.com/d/web01?orgId=1&viewPanel=4)" in text
    assert "[截图](https://grafana.example.com/public/img/attachments/a1b2c3.png)" in text
    # Grafana's own silence link is used as is.
    assert "[静默](https://grafana.example.com/alerting/silence/new?alertmanager=grafana" in text
    assert "> 开始：2024-05-01 12:02:10（已持续 17m）" in text
    v2 = content(renderer.render("default", n, msgtype="markdown_v2")[0])
    assert "[面板](https://grafana.example.com/d/web01?orgId=1&viewPanel=4)" in v2
    resolved = content(renderer.render("default", parse_grafana(load("grafana_resolved")))[0])
    assert resolved.startswith('## <font color="info">✅ 已恢复 RESOLVED · 1</font>')
    assert "> 结束：2024-05-01 12:40:10" in resolved


# --------------------------------------------------------------------------- generic


def test_generic_templates_pretty_print_the_json(renderer: Renderer) -> None:
    n = parse_generic("deploys", {"title": "Deployed", "service": "api", "nested": {"n": 1}})
    v2 = content(renderer.render("generic", n, msgtype="markdown_v2")[0])
    assert v2.startswith("## 📨 Deployed\n\n```json\n{\n")
    assert '  "service": "api",\n  "nested": {\n    "n": 1\n  }' in v2
    assert v2.endswith("}\n```")
    md = content(renderer.render("generic", n)[0])
    assert md.startswith('## <font color="warning">📨 Deployed</font>')
    text = content(renderer.render("generic", n, msgtype="text")[0])
    assert json.loads(text.split("\n", 2)[2]) == n.raw  # text keeps the JSON intact
    untitled = parse_generic("deploys", [1, 2])
    assert content(renderer.render("generic_text", untitled, msgtype="text")[0]).startswith(
        "【deploys】"
    )


# --------------------------------------------------------------------------- choosing templates


@pytest.mark.parametrize(
    ("asked", "msgtype", "used"),
    [
        ("default", "markdown", "default"),
        ("default", "markdown_v2", "default_v2"),
        ("default", "text", "default_text"),
        ("default_v2", "markdown", "default"),
        ("default_text", "markdown_v2", "default_v2"),
        ("generic", "text", "generic_text"),
        ("generic_v2", "markdown_v2", "generic_v2"),
    ],
)
def test_builtin_families_follow_the_msgtype(
    renderer: Renderer, asked: str, msgtype: Any, used: str
) -> None:
    assert renderer.resolve(asked, msgtype) == used


def test_user_templates_override_and_are_used_as_written(am_firing: Notification) -> None:
    r = Renderer(
        {
            "default": "custom: {{ title }} ({{ total }})",
            "short": "{{ status }} {{ alerts | map(attribute='labels.instance') | join(', ') }}",
        },
        clock=lambda: NOW,
    )
    for msgtype in ("markdown", "markdown_v2", "text"):
        report = r.render_check("default", am_firing, msgtype=msgtype)  # type: ignore[arg-type]
        assert report.used_template == "default"
        assert report.content == "custom: PostgresReplicationLag (3)"
    # Siblings that were not overridden keep their own name.
    assert r.resolve("default_v2", "markdown_v2") == "default_v2"
    assert content(r.render("short", am_firing)[0]) == "firing pg-2:9187, pg-3:9187, pg-4:9187"
    assert "short" in r.template_names() and "default_text" in r.template_names()


def test_user_templates_can_include_each_other(am_firing: Notification) -> None:
    r = Renderer(
        {
            "head": "{% macro head(a) %}**{{ a.name }}** on {{ a.labels.instance }}{% endmacro %}",
            "main": '{% from "head" import head %}{% for a in alerts %}{{ head(a) }}\n{% endfor %}',
        },
        clock=lambda: NOW,
    )
    assert content(r.render("main", am_firing)[0]).splitlines() == [
        f"**PostgresReplicationLag** on pg-{i}:9187" for i in (2, 3, 4)
    ]


def test_template_syntax_error_names_template_and_line() -> None:
    with pytest.raises(TemplateError) as info:
        Renderer({"ok": "fine", "broken": "line one\n{{ title }}\n{% if firing %}\nno endif"})
    error = info.value
    assert isinstance(error, ConfigError)
    assert error.template == "broken" and error.line == 4
    assert str(error).startswith("template 'broken', line 4:")
    with pytest.raises(TemplateError, match=r"template 'bad', line 1: .*"):
        Renderer({"bad": "{{ title | }}"})


def test_template_runtime_error_is_clear(am_firing: Notification) -> None:
    r = Renderer({"div": "a\nb\n{{ 1 // (total - total) }}"}, clock=lambda: NOW)
    with pytest.raises(TemplateRenderError) as info:
        r.render("div", am_firing)
    assert info.value.line == 3
    assert str(info.value) == (
        "template 'div', line 3 failed: ZeroDivisionError: integer division or modulo by zero"
    )
    assert isinstance(info.value, ConfigError)


# What a template's author must not be shown: exception classes, module paths, view classes.
CLASS_NAME = re.compile(r"[A-Z]\w*(?:Error|Exception|NotFound)\b|\w+\.\w+\.|\w*View\b|Untrusted")


@pytest.mark.parametrize(
    ("source", "line", "column", "reason"),
    [
        ("## t\n{% for a in alerts %}\n{% if %}\n{% endfor %}", 3, 7,
         "Expected an expression, got 'end of statement block'"),
        ("x\n{{ a b }}", 2, 6, "expected token 'end of print statement', got 'b'"),
        ("hello {{ a ! b }}", 1, 12, "unexpected character '!'"),
        ("a\r\nb {{ c ! }}", 2, 8, "unexpected character '!'"),
        # Jinja gives no position for these: no column rather than a guessed one.
        ("{{ title | nofilter }}", 1, None, "No filter named 'nofilter'."),
        ("x {{ a.b(1, }}", 1, None, "unexpected '}', expected ')'"),
        ("{% for a in alerts %}\n{{ a }}", 2, None, "Unexpected end of template. Jinja was "
         "looking for the following tags: 'endfor' or 'else'. The innermost block that needs "
         "to be closed is 'for'."),
    ],
)  # fmt: skip
def test_syntax_errors_give_line_column_and_plain_reason(
    source: str, line: int, column: int | None, reason: str
) -> None:
    with pytest.raises(TemplateError) as info:
        Renderer({"t": source})
    error = info.value
    assert (error.template, error.line, error.column, error.reason) == ("t", line, column, reason)
    assert str(error).startswith(f"template 't', line {line}: ")


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("a\n{{ alerts[0].nope.more }}", 2, "unknown variable 'alert.nope'"),
        ("{{ notification.zzz() }}", 1, "unknown variable 'notification.zzz'"),
        # A view's attributes are fixed: a misspelt one fails (it printed nothing before).
        ("a\nb\n{% for alert in alerts %}{{ alert.lables }}{% endfor %}", 3,
         "unknown variable 'alert.lables' (did you mean 'labels'?)"),
        ("{{ alerts[0].lables.team }}", 1,
         "unknown variable 'alert.lables' (did you mean 'labels'?)"),
        ("{% if notification.titel %}x{% endif %}", 1,
         "unknown variable 'notification.titel' (did you mean 'title'?)"),
        ("{{ title.nope() }}", 1, "a text has no attribute 'nope'"),
        ('{{ alerts[0].labels["nope"] + 1 }}', 1, "a mapping has no key 'nope'"),
        ("{{ alerts[99].x }}", 1, "a list has no element 99"),
        ("{{ x.y }}", 1, "unknown variable 'x'"),
        ("a\nb\n{{ 1 // (total - total) }}", 3, "integer division or modulo by zero"),
        ("{{ alerts[0].__class__.__mro__ }}", 1,
         "access to attribute '__class__' of an alert is unsafe."),
        ('{% include "ghost" %}', 1, "no template named 'ghost'"),
        ("{{ 1 + 'a' }}", 1, "cannot use + between a number and a text"),
        ("{{ 'a' + 1 }}", 1, "cannot add a number to a text (join texts with ~)"),
        ("{% for x in 5 %}{% endfor %}", 1, "a number is not iterable"),
        ("{{ title() }}", 1, "a text is not callable"),
        ("{% if false %}x{% endif %}", None,
         "the template rendered no content for this notification"),
    ],
)  # fmt: skip
def test_render_errors_give_line_and_plain_reason(
    am_firing: Notification, source: str, line: int | None, reason: str
) -> None:
    with pytest.raises(TemplateRenderError) as info:
        Renderer({"t": source}, clock=lambda: NOW).render("t", am_firing)
    error = info.value
    assert (error.line, error.column, error.reason) == (line, None, reason)
    assert CLASS_NAME.search(error.reason) is None


def test_the_plain_reason_hides_what_the_log_message_keeps(am_firing: Notification) -> None:
    with pytest.raises(TemplateRenderError) as info:
        Renderer({"t": "a\n{{ title.nope() }}"}).render("t", am_firing)
    assert "UndefinedError" in str(info.value) and "Untrusted" in str(info.value)
    assert CLASS_NAME.search(info.value.reason) is None
    # What check and dead letters say: the template, the reason, the line.
    assert info.value.in_words == "template 't': a text has no attribute 'nope' at line 2"


def test_unknown_template_and_empty_output(renderer: Renderer, am_firing: Notification) -> None:
    with pytest.raises(TemplateError, match=r"unknown template 'nope' \(known: default, "):
        renderer.render("nope", am_firing)
    quiet = Renderer({"quiet": "{% if false %}x{% endif %}\n  \n"})
    with pytest.raises(TemplateRenderError, match="'quiet' rendered no content"):
        quiet.render("quiet", am_firing)
    missing = Renderer({"inc": '{% include "ghost" %}'})
    with pytest.raises(TemplateRenderError, match="TemplateNotFound: ghost"):
        missing.render("inc", am_firing)


def test_sandbox_blocks_python_internals(am_firing: Notification) -> None:
    for source in (
        "{{ alerts[0].__class__.__mro__ }}",
        "{{ title.__init__.__globals__ }}",
        "{{ ''.__class__.__subclasses__() }}",
    ):
        r = Renderer({"t": source})
        with pytest.raises(TemplateRenderError, match="SecurityError: access to attribute"):
            r.render("t", am_firing)
    # Private attributes (the raw text of an untrusted value) read as undefined.
    hidden = Renderer(
        {
            "t": "[{{ title._raw }}|{{ alerts[0].labels.team._esc }}|{{ title | attr('_raw') }}"
            "|{{ alerts[0]._alert }}|{{ notification._data }}]"
        }
    )
    assert content(hidden.render("t", am_firing)[0]) == "[||||]"


def test_an_unknown_view_attribute_can_still_be_tested_quietly(am_firing: Notification) -> None:
    source = (
        "{% for alert in alerts[:1] %}{{ alert.lables is defined }}|"
        "{{ alert.lables | default('none') }}|{{ alert.name }}{% endfor %}"
    )
    rendered = content(Renderer({"t": source}).render("t", am_firing)[0])
    assert rendered == "False|none|PostgresReplicationLag"


def test_comparisons_work_on_raw_values(am_firing: Notification) -> None:
    source = (
        "{% for a in alerts %}"
        '{% if a.severity == "critical" and "pg-2" in a.labels.instance %}page {% endif %}'
        '{% if a.labels.instance in ["pg-3:9187"] %}three {% endif %}'
        "{% endfor %}"
        "{{ alerts | map(attribute='labels.instance') | sort(reverse=true) | first }}"
    )
    assert content(Renderer({"t": source}).render("t", am_firing)[0]) == "page three pg-4:9187"


# --------------------------------------------------------------------------- caps and splitting


def test_more_alerts_than_a_message_lists_become_a_summary_of_every_one(
    renderer: Renderer,
) -> None:
    capped = Renderer(max_alerts=3, clock=lambda: NOW)
    n = many_alerts(7, truncated=5)
    for msgtype in ("markdown", "markdown_v2", "text"):
        report = capped.render_check("default", n, msgtype=msgtype)  # type: ignore[arg-type]
        assert report.used_template == capped.resolve("summary", msgtype)  # type: ignore[arg-type]
        text = report.content
        assert " · instance" in text and "node-[000-006]" in text  # the line and its legend
        assert "DiskFull" in text and "× 7" in text and "FIRING · 7" in text
        assert "另有 5 条告警未列出" in text  # what the sender left out is reported
    full = renderer.render_check("default", n).content
    assert full.count("disk of node-") == 7 and "and 5 more" in full


def test_huge_notification_is_split_into_valid_parts(renderer: Renderer) -> None:
    n = many_alerts(60, description="a long explanation of the trouble " * 4)
    mentions = Mentions(("alice",))
    wide = Renderer.from_settings(replace(renderer.settings, max_parts=20), clock=renderer.clock)
    for msgtype in ("markdown", "markdown_v2", "text"):
        report = wide.render_check(
            "default",
            n,
            msgtype=msgtype,  # type: ignore[arg-type]
            mentions=mentions,
        )
        assert not report.fits and report.size > report.limit
        parts = report.parts
        assert len(parts) >= 2
        total = len(parts)
        for i, part in enumerate(parts, start=1):
            assert part.size == utf8_len(content(part.payload)) <= part.limit
            assert parse_message(part.payload).to_payload() == part.payload
            assert f"({i}/{total})" in content(part.payload)
        joined = "".join(content(p.payload) for p in parts)
        for i in range(60):  # every alert made it into some part
            assert f"disk of node-{i:03d} is full" in joined
        first, rest = parts[0].payload, [p.payload for p in parts[1:]]
        if msgtype == "text":
            assert first["text"]["mentioned_list"] == ["alice"]
            assert all("mentioned_list" not in p["text"] for p in rest)
        elif msgtype == "markdown":
            assert content(first).endswith("<@alice>")
            assert all("<@alice>" not in content(p) for p in rest)
        else:
            assert content(first).endswith("cc: alice")
        if msgtype == "markdown_v2":
            # Every part that continues the table repeats its header.
            assert all(content(p).count("| 状态 | 告警 |") == 1 for p in rest)


def test_runaway_template_output_is_cut(am_firing: Notification) -> None:
    r = Renderer(
        {"loop": "{% for i in range(100000) %}line {{ i }}\n{% endfor %}"},
        max_output_bytes=20_000,
    )
    report = r.render_check("loop", am_firing, msgtype="markdown")
    assert report.warnings == [
        "output cut at 20000 bytes", "cut to 3 messages (20055 bytes rendered)"
    ]
    assert report.content.endswith("(cut: the template rendered more than 20000 bytes)")
    assert len(report.parts) == 3  # max_messages_per_notification
    assert all(p.size <= 4096 for p in report.parts)


# --------------------------------------------------------------------------- mentions per msgtype


def test_mentions_per_msgtype(renderer: Renderer, am_firing: Notification) -> None:
    mentions = Mentions(("alice", "@all"), ("13800000000",))
    md = renderer.render_check("default", am_firing, msgtype="markdown", mentions=mentions)
    assert md.content.endswith("\n\n<@alice><@all>")
    assert md.warnings == ["markdown cannot mention mobile numbers: 1 left out"]
    v2 = renderer.render_check("default", am_firing, msgtype="markdown_v2", mentions=mentions)
    assert v2.content.endswith("\n\ncc: alice, all")
    assert "<@" not in v2.content
    assert v2.warnings == ["markdown_v2 cannot mention anyone: userids written plainly"]
    plain = renderer.render_check("default", am_firing, msgtype="markdown")
    assert "<@" not in plain.content and plain.warnings == []


def test_a_huge_mention_list_is_capped(renderer: Renderer, am_firing: Notification) -> None:
    many = Mentions(tuple(f"user{i:03d}-{'x' * 50}" for i in range(200)))
    for msgtype in ("markdown", "markdown_v2"):
        report = renderer.render_check(
            "default",
            am_firing,
            msgtype=msgtype,  # type: ignore[arg-type]
            mentions=many,
        )
        tail = report.content.rsplit("\n\n", 1)[1]
        assert 0 < utf8_len(tail) <= 1024
        assert "user000-" in tail and "user199-" not in tail
        assert any(w.startswith("mention line full:") for w in report.warnings)
    text = renderer.render("default", am_firing, msgtype="text", mentions=many)[0]
    assert len(text["text"]["mentioned_list"]) == 200  # lists are not content: all of them


# --------------------------------------------------------------------------- reports and check


def test_render_check_reports_sizes(renderer: Renderer, am_firing: Notification) -> None:
    report = renderer.render_check("default", am_firing, msgtype="text")
    assert report.template == "default" and report.used_template == "default_text"
    assert report.limit == 2048 and report.fits
    assert report.size == utf8_len(report.content)
    [part] = report.parts
    assert (part.size, part.limit) == (report.size, 2048)
    assert report.payloads == [part.payload]


def test_check_renders_every_template_against_the_samples() -> None:
    r = Renderer({"mine": "{{ title }}: {{ total }}"}, clock=lambda: NOW)
    reports = r.check(sample_notifications(NOW))
    used = {(rep.used_template, rep.msgtype) for rep in reports}
    for name, (msgtype, _) in BUILTIN_TEMPLATES.items():
        assert (name, msgtype) in used
    assert {rep.msgtype for rep in reports if rep.used_template == "mine"} == {
        "markdown",
        "markdown_v2",
        "text",
    }
    assert all(rep.parts for rep in reports)


@pytest.mark.parametrize("template", ["default", "default_text"])
def test_a_label_value_with_newlines_stays_on_the_labels_line(
    renderer: Renderer, template: str
) -> None:
    alert = Alert(
        "firing",
        {"alertname": "X", "job": "api\n## 假标题\n> quote", "zone": "a"},
        {},
        NOW,
    )
    notification = Notification("alertmanager", "firing", receiver="wecom", alerts=(alert,))
    msgtype = "text" if template.endswith("text") else "markdown"
    (payload,) = renderer.render(template, notification, msgtype=msgtype)  # type: ignore[arg-type]
    lines = content(payload).splitlines()
    (label_line,) = [line for line in lines if "job=" in line]
    assert "zone=a" in label_line and "假标题" in label_line and "quote" in label_line
    assert not any(line.lstrip().startswith(("#", "＃")) for line in lines if "假标题" in line)


def test_one_notification_never_becomes_more_than_max_parts_messages(renderer: Renderer) -> None:
    # The review's notification: 254 group labels of 16 KiB each (4 MiB of labels).
    payload = load("alertmanager_firing")
    labels = {f"label_{i:03d}": f"v{i}-" + "x" * 16 * 1024 for i in range(254)}
    payload["groupLabels"] = {"alertname": "Huge", **labels}
    payload["commonLabels"] = {"alertname": "Huge", **labels}
    for alert in payload["alerts"]:
        alert["labels"] = {**alert["labels"], "alertname": "Huge", **labels}
    notification = parse_alertmanager(payload)
    assert renderer.max_parts == 3
    for msgtype in ("markdown", "markdown_v2", "text"):
        report = renderer.render_check("default", notification, msgtype=msgtype)  # type: ignore[arg-type]
        assert 1 <= len(report.parts) <= 3, (msgtype, len(report.parts))
        for part in report.parts:
            assert part.size <= part.limit
            assert parse_message(part.payload).to_payload() == part.payload
        last = content(report.parts[-1].payload)
        if len(report.parts) == 3:
            assert "bytes more, past 3 messages" in last
            assert any("cut to 3 messages" in w for w in report.warnings)
