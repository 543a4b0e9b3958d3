"""The built-in per-alert templates, rendered line by line.

Each built-in template (``default``, ``default_v2``, ``default_text``, ``generic``,
``generic_v2``, ``generic_text``) renders fixed notifications, with a fixed clock and time
zone, and every line of the message is compared, in order: a newline lost to ``trim_blocks``
(two lines glued into one) or a doubled one fails here. The storm summaries are rendered
line by line at the end (their contents are tested in ``test_summaries.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wecom_bot.gateway.actions.links import ActionLinks
from wecom_bot.gateway.intake.sources import parse_alertmanager, parse_generic, parse_grafana
from wecom_bot.gateway.model import Notification
from wecom_bot.gateway.templates.renderer import BUILTIN_TEMPLATES, Renderer
from wecom_bot.storm import AlertBrief

NOW = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)  # 12:30 in Asia/Shanghai
ZERO = "0001-01-01T00:00:00Z"
LINKS = ActionLinks(
    ack="https://gw.example.com/act/ack/t1",
    silence="https://gw.example.com/act/silence/t2",
    details="https://gw.example.com/act/details/t3",
)


def _alert(
    status: str,
    instance: str,
    severity: str,
    starts: str,
    ends: str = ZERO,
    *,
    summary: str,
    description: str = "",
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    annotations = {"summary": summary, "runbook_url": "https://runbooks.example.com/diskfull"}
    if description:
        annotations["description"] = description
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": instance, "severity": severity,
                   "team": "storage", **(extra or {})},
        "annotations": annotations,
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": f"http://prometheus:9090/graph?g0.expr=disk_free%7Bi%3D%22{instance}%22%7D",
        "fingerprint": instance,
    }  # fmt: skip


def _group(status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "4", "status": status, "receiver": "wecom",
        "groupKey": '{}:{alertname="DiskFull"}', "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "team": "storage"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0, "alerts": alerts,
    }  # fmt: skip


FIRING_1 = dict(
    summary="/var is 97% full on node-1",
    description="Free space below 3%.\nGrowing 2 GiB an hour.",
)
ALERTMANAGER: dict[str, dict[str, Any]] = {
    # two firing alerts: severity, summary, a two-line description, labels (one extra)
    "firing": _group("firing", [
        _alert("firing", "node-1:9100", "critical", "2026-03-02T03:50:00Z", **FIRING_1),
        _alert("firing", "node-2:9100", "warning", "2026-03-02T04:10:00Z",
               summary="/var is 91% full on node-2", description="Free space below 9%.",
               extra={"mountpoint": "/var"}),
    ]),
    "resolved": _group("resolved", [
        _alert("resolved", "node-1:9100", "critical", "2026-03-02T03:50:00Z",
               "2026-03-02T04:25:00Z", summary="/var is 97% full on node-1"),
    ]),
    # one firing, one resolved
    "mixed": _group("firing", [
        _alert("firing", "node-1:9100", "critical", "2026-03-02T03:50:00Z",
               summary="/var is 97% full on node-1"),
        _alert("resolved", "node-3:9100", "warning", "2026-03-02T02:00:00Z",
               "2026-03-02T04:00:00Z", summary="/var is 92% full on node-3"),
    ]),
}  # fmt: skip

GRAFANA: dict[str, Any] = {
    "receiver": "wecom", "status": "firing", "orgId": 1, "state": "alerting",
    "title": "[FIRING:1] High memory usage (blue)", "message": "**Firing**",
    "groupLabels": {"alertname": "High memory usage"},
    "commonLabels": {"alertname": "High memory usage", "team": "blue"},
    "commonAnnotations": {}, "externalURL": "https://grafana.example.com/", "version": "1",
    "groupKey": '{}:{alertname="High memory usage"}', "truncatedAlerts": 0,
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
        "annotations": {"summary": "Memory above 90% in us-1"},
        "startsAt": "2026-03-02T04:00:00Z", "endsAt": ZERO,
        "generatorURL": "https://grafana.example.com/alerting/grafana/aef1/view",
        "fingerprint": "c6eadffa33fcdf37",
        "silenceURL": "https://grafana.example.com/alerting/silence/new?matcher=zone%3Dus-1",
        "dashboardURL": "https://grafana.example.com/d/mem01?orgId=1",
        "panelURL": "https://grafana.example.com/d/mem01?orgId=1&viewPanel=2",
        "values": {"B": 93.4}, "valueString": "[ var='B' labels={zone=us-1} value=93.4 ]",
    }],
}  # fmt: skip

GENERIC: dict[str, dict[str, Any]] = {
    # a title, a message and a status of its own
    "titled": {"title": "Deploy finished", "message": "api v1.4.2 is live", "status": "resolved",
               "service": "api", "replicas": 3},
    # none of them: the webhook's name is the title
    "bare": {"event": "backup", "ok": False, "tags": ["nightly", "db"]},
}  # fmt: skip


def _notification(case: str) -> Notification:
    if case in ALERTMANAGER:
        return parse_alertmanager(ALERTMANAGER[case])
    if case == "grafana":
        return parse_grafana(GRAFANA)
    return parse_generic("deploy", GENERIC[case])


def render_case(template: str, case: str, links: bool) -> str:
    """The content ``template`` renders for ``case`` (with the action links when ``links``)."""
    renderer = Renderer(
        timezone="Asia/Shanghai",
        clock=lambda: NOW,
        actions=(lambda n: LINKS if n.status == "firing" else None) if links else None,
    )
    msgtype = BUILTIN_TEMPLATES[template][0]
    report = renderer.render_check(template, _notification(case), msgtype=msgtype)
    assert report.used_template == template and len(report.parts) == 1
    [payload] = report.payloads
    content: str = payload[msgtype]["content"]
    assert content == report.content
    return content


CASES = [
    *(
        (template, case, links)
        for template in ("default", "default_v2", "default_text")
        for case in ("firing", "resolved", "mixed", "grafana")
        for links in (False, True)
    ),
    *(
        (template, case, False)
        for template in ("generic", "generic_v2", "generic_text")
        for case in ("titled", "bare")
    ),
]

# The links in the messages, as rendered (targets escaped for their syntax).
ACK = "https://gw.example.com/act/ack/t1"
AM_SILENCE_1 = (
    "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%2Ci"
    "nstance%3D%22node-1%3A9100%22%2Cseverity%3D%22critical%22%2Cteam%3D%22storage%22"
    "%7D"
)
AM_SILENCE_2 = (
    "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%2Ci"
    "nstance%3D%22node-2%3A9100%22%2Cmountpoint%3D%22%2Fvar%22%2Cseverity%3D%22warnin"
    "g%22%2Cteam%3D%22storage%22%7D"
)
DETAILS = "https://gw.example.com/act/details/t3"
G_DASHBOARD = "https://grafana.example.com/d/mem01?orgId=1"
G_PANEL = "https://grafana.example.com/d/mem01?orgId=1&viewPanel=2"
G_SILENCE = "https://grafana.example.com/alerting/silence/new?matcher=zone%3Dus-1"
G_SOURCE = "https://grafana.example.com/alerting/grafana/aef1/view"
RUNBOOK = "https://runbooks.example.com/diskfull"
SILENCE = "https://gw.example.com/act/silence/t2"
SOURCE_1 = "http://prometheus:9090/graph?g0.expr=disk_free%7Bi%3D%22node-1:9100%22%7D"
SOURCE_2 = "http://prometheus:9090/graph?g0.expr=disk_free%7Bi%3D%22node-2:9100%22%7D"
SOURCE_3 = "http://prometheus:9090/graph?g0.expr=disk_free%7Bi%3D%22node-3:9100%22%7D"

EXPECTED: dict[tuple[str, str, bool], tuple[str, ...]] = {
    ("default", "firing", False): (
        '## <font color="warning">🔥 告警 FIRING · 2</font> DiskFull',
        "",
        '<font color="warning">**DiskFull**</font> 级别 `critical`',
        "> 摘要：/var is 97% full on node-1",
        "> 详情：Free space below 3%.",
        "> Growing 2 GiB an hour.",
        "> 标签：instance=node-1:9100, team=storage",
        "> 开始：2026-03-02 11:50:00（已持续 40m）",
        f"> [查看来源]({SOURCE_1}) · [Runbook]({RUNBOOK}) · [静默]({AM_SILENCE_1})",
        "",
        '<font color="warning">**DiskFull**</font> 级别 `warning`',
        "> 摘要：/var is 91% full on node-2",
        "> 详情：Free space below 9%.",
        "> 标签：instance=node-2:9100, team=storage, mountpoint=/var",
        "> 开始：2026-03-02 12:10:00（已持续 20m）",
        f"> [查看来源]({SOURCE_2}) · [Runbook]({RUNBOOK}) · [静默]({AM_SILENCE_2})",
    ),
    ("default", "firing", True): (
        '## <font color="warning">🔥 告警 FIRING · 2</font> DiskFull',
        f"> 👉 [认领]({ACK}) · [静默]({SILENCE}) · [详情]({DETAILS})",
        "",
        '<font color="warning">**DiskFull**</font> 级别 `critical`',
        "> 摘要：/var is 97% full on node-1",
        "> 详情：Free space below 3%.",
        "> Growing 2 GiB an hour.",
        "> 标签：instance=node-1:9100, team=storage",
        "> 开始：2026-03-02 11:50:00（已持续 40m）",
        f"> [查看来源]({SOURCE_1}) · [Runbook]({RUNBOOK}) · [静默]({AM_SILENCE_1})",
        "",
        '<font color="warning">**DiskFull**</font> 级别 `warning`',
        "> 摘要：/var is 91% full on node-2",
        "> 详情：Free space below 9%.",
        "> 标签：instance=node-2:9100, team=storage, mountpoint=/var",
        "> 开始：2026-03-02 12:10:00（已持续 20m）",
        f"> [查看来源]({SOURCE_2}) · [Runbook]({RUNBOOK}) · [静默]({AM_SILENCE_2})",
    ),
    ("default", "resolved", False): (
        '## <font color="info">✅ 已恢复 RESOLVED · 1</font> DiskFull',
        "",
        '<font color="info">**DiskFull** 已恢复</font> 级别 `critical`',
        "> 摘要：/var is 97% full on node-1",
        "> 标签：instance=node-1:9100, team=storage",
        "> 开始：2026-03-02 11:50:00（持续 35m）",
        "> 结束：2026-03-02 12:25:00",
        f"> [查看来源]({SOURCE_1}) · [Runbook]({RUNBOOK})",
    ),
    ("default", "resolved", True): (
        '## <font color="info">✅ 已恢复 RESOLVED · 1</font> DiskFull',
        "",
        '<font color="info">**DiskFull** 已恢复</font> 级别 `critical`',
        "> 摘要：/var is 97% full on node-1",
        "> 标签：instance=node-1:9100, team=storage",
        "> 开始：2026-03-02 11:50:00（持续 35m）",
        "> 结束：2026-03-02 12:25:00",
        f"> [查看来源]({SOURCE_1}) · [Runbook]({RUNBOOK})",
    ),
    ("default", "mixed", False): (
        '## <font color="warning">🔥 告警 FIRING · 1</font> DiskFull',
        '<font color="comment">其中 1 条已恢复</font>',
        "",
        '<font color="warning">**DiskFull**</font> 级别 `critical`',
        "> 摘要：/var is 97% full on node-1",
        "> 标签：instance=node-1:9100, team=storage",
        "> 开始：2026-03-02 11:50:00（已持续 40m）",
        f"> [查看来源]({SOURCE_1}) · [Runbook]({RUNBOOK}) · [静默]({AM_SILENCE_1})",
        "",
        '<font color="info">**DiskFull** 已恢复</font> 级别 `warning`',
        "> 摘要：/var is 92% full on node-3",
        "> 标签：instance=node-3:9100, team=storage",
        "> 开始：2026-03-02 10:00:00（持续 2h）",
        "> 结束：2026-03-02 12:00:00",
        f"> [查看来源]({SOURCE_3}) · [Runbook]({RUNBOOK})",
    ),
    ("default", "mixed", True): (
        '## <font color="warning">🔥 告警 FIRING · 1</font> DiskFull',
        f"> 👉 [认领]({ACK}) · [静默]({SILENCE}) · [详情]({DETAILS})",
        "",
        '<font color="comment">其中 1 条已恢复</font>',
        "",
        '<font color="warning">**DiskFull**</font> 级别 `critical`',
        "> 摘要：/var is 97% full on node-1",
        "> 标签：instance=node-1:9100, team=storage",
        "> 开始：2026-03-02 11:50:00（已持续 40m）",
        f"> [查看来源]({SOURCE_1}) · [Runbook]({RUNBOOK}) · [静默]({AM_SILENCE_1})",
        "",
        '<font color="info">**DiskFull** 已恢复</font> 级别 `warning`',
        "> 摘要：/var is 92% full on node-3",
        "> 标签：instance=node-3:9100, team=storage",
        "> 开始：2026-03-02 10:00:00（持续 2h）",
        "> 结束：2026-03-02 12:00:00",
        f"> [查看来源]({SOURCE_3}) · [Runbook]({RUNBOOK})",
    ),
    ("default", "grafana", False): (
        '## <font color="warning">🔥 告警 FIRING · 1</font> High memory usage',
        "",
        '<font color="warning">**High memory usage**</font>',
        "> 摘要：Memory above 90% in us-1",
        "> 数值：［ var='B' labels={zone=us-1} value=93.4 ］",
        "> 标签：team=blue, zone=us-1",
        "> 开始：2026-03-02 12:00:00（已持续 30m）",
        (
            f"> [查看来源]({G_SOURCE}) · [仪表盘]({G_DASHBOARD}) · "
            f"[面板]({G_PANEL}) · [静默]({G_SILENCE})"
        ),
    ),
    ("default", "grafana", True): (
        '## <font color="warning">🔥 告警 FIRING · 1</font> High memory usage',
        f"> 👉 [认领]({ACK}) · [静默]({SILENCE}) · [详情]({DETAILS})",
        "",
        '<font color="warning">**High memory usage**</font>',
        "> 摘要：Memory above 90% in us-1",
        "> 数值：［ var='B' labels={zone=us-1} value=93.4 ］",
        "> 标签：team=blue, zone=us-1",
        "> 开始：2026-03-02 12:00:00（已持续 30m）",
        (
            f"> [查看来源]({G_SOURCE}) · [仪表盘]({G_DASHBOARD}) · "
            f"[面板]({G_PANEL}) · [静默]({G_SILENCE})"
        ),
    ),
    ("default_v2", "firing", False): (
        "## 🔥 告警 FIRING · DiskFull",
        "",
        "**2** 条告警",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| 🔥 | DiskFull | critical | node-1:9100 | /var is 97% full on node-1 "
            f"| 03-02 11:50 | 40m | [来源]({SOURCE_1}) [Runbook]({RUNBOOK}) "
            f"[静默]({AM_SILENCE_1}) |"
        ),
        (
            "| 🔥 | DiskFull | warning | node-2:9100 | /var is 91% full on node-2 "
            f"| 03-02 12:10 | 20m | [来源]({SOURCE_2}) [Runbook]({RUNBOOK}) "
            f"[静默]({AM_SILENCE_2}) |"
        ),
    ),
    ("default_v2", "firing", True): (
        "## 🔥 告警 FIRING · DiskFull",
        "",
        "**2** 条告警",
        "",
        f"👉 [认领]({ACK}) · [静默]({SILENCE}) · [详情]({DETAILS})",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| 🔥 | DiskFull | critical | node-1:9100 | /var is 97% full on node-1 "
            f"| 03-02 11:50 | 40m | [来源]({SOURCE_1}) [Runbook]({RUNBOOK}) "
            f"[静默]({AM_SILENCE_1}) |"
        ),
        (
            "| 🔥 | DiskFull | warning | node-2:9100 | /var is 91% full on node-2 "
            f"| 03-02 12:10 | 20m | [来源]({SOURCE_2}) [Runbook]({RUNBOOK}) "
            f"[静默]({AM_SILENCE_2}) |"
        ),
    ),
    ("default_v2", "resolved", False): (
        "## ✅ 已恢复 RESOLVED · DiskFull",
        "",
        "**1** 条已恢复",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| ✅ | DiskFull | critical | node-1:9100 | /var is 97% full on node-1 "
            f"| 03-02 11:50 | 35m | [来源]({SOURCE_1}) [Runbook]({RUNBOOK}) |"
        ),
    ),
    ("default_v2", "resolved", True): (
        "## ✅ 已恢复 RESOLVED · DiskFull",
        "",
        "**1** 条已恢复",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| ✅ | DiskFull | critical | node-1:9100 | /var is 97% full on node-1 "
            f"| 03-02 11:50 | 35m | [来源]({SOURCE_1}) [Runbook]({RUNBOOK}) |"
        ),
    ),
    ("default_v2", "mixed", False): (
        "## 🔥 告警 FIRING · DiskFull",
        "",
        "**1** 条告警，**1** 条已恢复",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| 🔥 | DiskFull | critical | node-1:9100 | /var is 97% full on node-1 "
            f"| 03-02 11:50 | 40m | [来源]({SOURCE_1}) [Runbook]({RUNBOOK}) "
            f"[静默]({AM_SILENCE_1}) |"
        ),
        (
            "| ✅ | DiskFull | warning | node-3:9100 | /var is 92% full on node-3 "
            f"| 03-02 10:00 | 2h | [来源]({SOURCE_3}) [Runbook]({RUNBOOK}) |"
        ),
    ),
    ("default_v2", "mixed", True): (
        "## 🔥 告警 FIRING · DiskFull",
        "",
        "**1** 条告警，**1** 条已恢复",
        "",
        f"👉 [认领]({ACK}) · [静默]({SILENCE}) · [详情]({DETAILS})",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| 🔥 | DiskFull | critical | node-1:9100 | /var is 97% full on node-1 "
            f"| 03-02 11:50 | 40m | [来源]({SOURCE_1}) [Runbook]({RUNBOOK}) "
            f"[静默]({AM_SILENCE_1}) |"
        ),
        (
            "| ✅ | DiskFull | warning | node-3:9100 | /var is 92% full on node-3 "
            f"| 03-02 10:00 | 2h | [来源]({SOURCE_3}) [Runbook]({RUNBOOK}) |"
        ),
    ),
    ("default_v2", "grafana", False): (
        "## 🔥 告警 FIRING · High memory usage",
        "",
        "**1** 条告警",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| 🔥 | High memory usage |  |  | Memory above 90% in us-1 | 03-02 "
            f"12:00 | 30m | [来源]({G_SOURCE}) [面板]({G_PANEL}) "
            f"[静默]({G_SILENCE}) |"
        ),
    ),
    ("default_v2", "grafana", True): (
        "## 🔥 告警 FIRING · High memory usage",
        "",
        "**1** 条告警",
        "",
        f"👉 [认领]({ACK}) · [静默]({SILENCE}) · [详情]({DETAILS})",
        "",
        "| 状态 | 告警 | 级别 | 实例 | 摘要 | 开始 | 持续 | 链接 |",
        "| :-: | :-- | :-- | :-- | :-- | :-- | --: | :-- |",
        (
            "| 🔥 | High memory usage |  |  | Memory above 90% in us-1 | 03-02 "
            f"12:00 | 30m | [来源]({G_SOURCE}) [面板]({G_PANEL}) "
            f"[静默]({G_SILENCE}) |"
        ),
    ),
    ("default_text", "firing", False): (
        "【告警 FIRING · 2】DiskFull",
        "",
        "1. 🔥 DiskFull [critical]",
        "摘要：/var is 97% full on node-1",
        "详情：Free space below 3%.",
        "Growing 2 GiB an hour.",
        "标签：instance=node-1:9100, team=storage",
        "开始：2026-03-02 11:50:00（已持续 40m）",
        f"来源：{SOURCE_1}",
        f"Runbook：{RUNBOOK}",
        f"静默：{AM_SILENCE_1}",
        "",
        "2. 🔥 DiskFull [warning]",
        "摘要：/var is 91% full on node-2",
        "详情：Free space below 9%.",
        "标签：instance=node-2:9100, team=storage, mountpoint=/var",
        "开始：2026-03-02 12:10:00（已持续 20m）",
        f"来源：{SOURCE_2}",
        f"Runbook：{RUNBOOK}",
        f"静默：{AM_SILENCE_2}",
    ),
    ("default_text", "firing", True): (
        "【告警 FIRING · 2】DiskFull",
        f"认领：{ACK}",
        f"静默：{SILENCE}",
        f"详情：{DETAILS}",
        "",
        "1. 🔥 DiskFull [critical]",
        "摘要：/var is 97% full on node-1",
        "详情：Free space below 3%.",
        "Growing 2 GiB an hour.",
        "标签：instance=node-1:9100, team=storage",
        "开始：2026-03-02 11:50:00（已持续 40m）",
        f"来源：{SOURCE_1}",
        f"Runbook：{RUNBOOK}",
        f"静默：{AM_SILENCE_1}",
        "",
        "2. 🔥 DiskFull [warning]",
        "摘要：/var is 91% full on node-2",
        "详情：Free space below 9%.",
        "标签：instance=node-2:9100, team=storage, mountpoint=/var",
        "开始：2026-03-02 12:10:00（已持续 20m）",
        f"来源：{SOURCE_2}",
        f"Runbook：{RUNBOOK}",
        f"静默：{AM_SILENCE_2}",
    ),
    ("default_text", "resolved", False): (
        "【已恢复 RESOLVED · 1】DiskFull",
        "",
        "1. ✅ DiskFull [critical]",
        "摘要：/var is 97% full on node-1",
        "标签：instance=node-1:9100, team=storage",
        "开始：2026-03-02 11:50:00（持续 35m）",
        "结束：2026-03-02 12:25:00",
        f"来源：{SOURCE_1}",
        f"Runbook：{RUNBOOK}",
    ),
    ("default_text", "resolved", True): (
        "【已恢复 RESOLVED · 1】DiskFull",
        "",
        "1. ✅ DiskFull [critical]",
        "摘要：/var is 97% full on node-1",
        "标签：instance=node-1:9100, team=storage",
        "开始：2026-03-02 11:50:00（持续 35m）",
        "结束：2026-03-02 12:25:00",
        f"来源：{SOURCE_1}",
        f"Runbook：{RUNBOOK}",
    ),
    ("default_text", "mixed", False): (
        "【告警 FIRING · 1】DiskFull",
        "",
        "1. 🔥 DiskFull [critical]",
        "摘要：/var is 97% full on node-1",
        "标签：instance=node-1:9100, team=storage",
        "开始：2026-03-02 11:50:00（已持续 40m）",
        f"来源：{SOURCE_1}",
        f"Runbook：{RUNBOOK}",
        f"静默：{AM_SILENCE_1}",
        "",
        "2. ✅ DiskFull [warning]",
        "摘要：/var is 92% full on node-3",
        "标签：instance=node-3:9100, team=storage",
        "开始：2026-03-02 10:00:00（持续 2h）",
        "结束：2026-03-02 12:00:00",
        f"来源：{SOURCE_3}",
        f"Runbook：{RUNBOOK}",
    ),
    ("default_text", "mixed", True): (
        "【告警 FIRING · 1】DiskFull",
        f"认领：{ACK}",
        f"静默：{SILENCE}",
        f"详情：{DETAILS}",
        "",
        "1. 🔥 DiskFull [critical]",
        "摘要：/var is 97% full on node-1",
        "标签：instance=node-1:9100, team=storage",
        "开始：2026-03-02 11:50:00（已持续 40m）",
        f"来源：{SOURCE_1}",
        f"Runbook：{RUNBOOK}",
        f"静默：{AM_SILENCE_1}",
        "",
        "2. ✅ DiskFull [warning]",
        "摘要：/var is 92% full on node-3",
        "标签：instance=node-3:9100, team=storage",
        "开始：2026-03-02 10:00:00（持续 2h）",
        "结束：2026-03-02 12:00:00",
        f"来源：{SOURCE_3}",
        f"Runbook：{RUNBOOK}",
    ),
    ("default_text", "grafana", False): (
        "【告警 FIRING · 1】High memory usage",
        "",
        "1. 🔥 High memory usage",
        "摘要：Memory above 90% in us-1",
        "数值：［ var='B' labels={zone=us-1} value=93.4 ］",
        "标签：team=blue, zone=us-1",
        "开始：2026-03-02 12:00:00（已持续 30m）",
        f"来源：{G_SOURCE}",
        f"静默：{G_SILENCE}",
    ),
    ("default_text", "grafana", True): (
        "【告警 FIRING · 1】High memory usage",
        f"认领：{ACK}",
        f"静默：{SILENCE}",
        f"详情：{DETAILS}",
        "",
        "1. 🔥 High memory usage",
        "摘要：Memory above 90% in us-1",
        "数值：［ var='B' labels={zone=us-1} value=93.4 ］",
        "标签：team=blue, zone=us-1",
        "开始：2026-03-02 12:00:00（已持续 30m）",
        f"来源：{G_SOURCE}",
        f"静默：{G_SILENCE}",
    ),
    ("generic", "titled", False): (
        '## <font color="info">📨 Deploy finished</font>',
        "",
        "api v1.4.2 is live",
        "",
        "{",
        '  "title": "Deploy finished",',
        '  "message": "api v1.4.2 is live",',
        '  "status": "resolved",',
        '  "service": "api",',
        '  "replicas": 3',
        "}",
    ),
    ("generic", "bare", False): (
        '## <font color="warning">📨 deploy</font>',
        "",
        "{",
        '  "event": "backup",',
        '  "ok": false,',
        '  "tags": ［',
        '    "nightly",',
        '    "db"',
        "  ］",
        "}",
    ),
    ("generic_v2", "titled", False): (
        "## 📨 Deploy finished",
        "",
        "api v1.4.2 is live",
        "",
        "```json",
        "{",
        '  "title": "Deploy finished",',
        '  "message": "api v1.4.2 is live",',
        '  "status": "resolved",',
        '  "service": "api",',
        '  "replicas": 3',
        "}",
        "```",
    ),
    ("generic_v2", "bare", False): (
        "## 📨 deploy",
        "",
        "```json",
        "{",
        '  "event": "backup",',
        '  "ok": false,',
        '  "tags": ［',
        '    "nightly",',
        '    "db"',
        "  ］",
        "}",
        "```",
    ),
    ("generic_text", "titled", False): (
        "【Deploy finished】",
        "api v1.4.2 is live",
        "",
        "{",
        '  "title": "Deploy finished",',
        '  "message": "api v1.4.2 is live",',
        '  "status": "resolved",',
        '  "service": "api",',
        '  "replicas": 3',
        "}",
    ),
    ("generic_text", "bare", False): (
        "【deploy】",
        "",
        "{",
        '  "event": "backup",',
        '  "ok": false,',
        '  "tags": ［',
        '    "nightly",',
        '    "db"',
        "  ］",
        "}",
    ),
}


@pytest.mark.parametrize(("template", "case", "links"), CASES)
def test_every_line_in_order(template: str, case: str, links: bool) -> None:
    lines = tuple(render_case(template, case, links).split("\n"))
    assert lines == EXPECTED[(template, case, links)]


def test_every_builtin_per_alert_template_is_covered() -> None:
    per_alert = {name for name, (_, family) in BUILTIN_TEMPLATES.items() if family != "summary"}
    assert {template for template, _, _ in CASES} == per_alert
    assert set(EXPECTED) == set(CASES)


def test_links_change_only_firing_groups() -> None:
    for template in ("default", "default_v2", "default_text"):
        assert EXPECTED[(template, "resolved", True)] == EXPECTED[(template, "resolved", False)]
        for case in ("firing", "mixed"):
            with_links = EXPECTED[(template, case, True)]
            assert with_links != EXPECTED[(template, case, False)]
            assert sum("gw.example.com/act/" in line for line in with_links) in (1, 3)


# --------------------------------------------------------------------------- storm summaries

T = NOW.timestamp()


def _storm() -> list[AlertBrief]:
    """Three critical hosts, three pods in two namespaces, one resolved disk."""
    alerts = [
        AlertBrief({"alertname": "NodeDown", "instance": f"host-{i}", "job": "node",
                    "severity": "critical"}, "firing", T - 600, "node unreachable")
        for i in range(3)
    ]
    alerts += [
        AlertBrief({"alertname": "KubePodCrashLooping", "namespace": ns, "pod": pod,
                    "severity": "warning"}, "firing", T - 3900, f"{pod} restarts")
        for ns, pod in (("shop-prod", "cart-7d9f8c6b4x-abcde"),
                        ("shop-prod", "cart-7d9f8c6b4x-fghjk"), ("shop-canary", "web-0"))
    ]
    alerts.append(AlertBrief({"alertname": "DiskFull", "instance": "db-1", "mountpoint": "/data"},
                             "resolved", T - 7200))
    return alerts  # fmt: skip


SUMMARY_LINES = {
    "markdown": [
        "## <font color=\"warning\">🔥 告警汇总 FIRING · 6</font> <font color=\"info\">✅ 已恢复 1</font>",  # noqa: E501
        "<font color=\"comment\">2 条通知合并 · 本轮风暴累计告警 12 条</font>",
        "",
        "<font color=\"warning\">🔥 **NodeDown** × 3</font> · 自 03-02 12:20，已持续 10m",
        "> 标签：job=node",
        "> 摘要：node unreachable",
        "",
        "<font color=\"warning\">级别 `critical` × 3</font> · instance",
        "> host-[0-2]",
        "",
        "<font color=\"warning\">🔥 **KubePodCrashLooping** × 3</font> · 自 03-02 11:25，已持续 1h 5m",  # noqa: E501
        "> 摘要：cart-7d9f8c6b4x-abcde restarts（共 3 种，此为其一）",
        "",
        "级别 `warning` × 3 · namespace / pod",
        "> shop-canary / web-0",
        "> shop-prod / cart-* (2): 7d9f8c6b4x-abcde, 7d9f8c6b4x-fghjk",
        "",
        "<font color=\"info\">✅ **DiskFull** × 1 已恢复</font> · 自 03-02 10:30",
        "> 标签：instance=db-1, mountpoint=/data",
        "",
        "级别 `－` × 1",
    ],
    "markdown_v2": [
        "## 🔥 告警汇总 FIRING · 6 · ✅ 已恢复 1",
        "",
        "2 条通知合并 · 本轮风暴累计告警 12 条",
        "",
        "**🔥 NodeDown × 3** · 自 03-02 12:20，已持续 10m",
        "> 标签：job=node",
        "> 摘要：node unreachable",
        "",
        "**级别 `critical` × 3** · instance",
        "> host-[0-2]",
        "",
        "**🔥 KubePodCrashLooping × 3** · 自 03-02 11:25，已持续 1h 5m",
        "> 摘要：cart-7d9f8c6b4x-abcde restarts（共 3 种，此为其一）",
        "",
        "级别 `warning` × 3 · namespace / pod",
        "> shop-canary / web-0",
        "> shop-prod / cart-* (2): 7d9f8c6b4x-abcde, 7d9f8c6b4x-fghjk",
        "",
        "**✅ DiskFull × 1** 已恢复 · 自 03-02 10:30",
        "> 标签：instance=db-1, mountpoint=/data",
        "",
        "级别 `－` × 1",
    ],
    "text": [
        "【告警汇总 FIRING · 6 · 已恢复 1】",
        "2 条通知合并 · 本轮风暴累计告警 12 条",
        "",
        "🔥 NodeDown × 3 · 自 03-02 12:20，已持续 10m",
        "标签：job=node",
        "摘要：node unreachable",
        "级别 critical × 3 · instance",
        "- host-[0-2]",
        "",
        "🔥 KubePodCrashLooping × 3 · 自 03-02 11:25，已持续 1h 5m",
        "摘要：cart-7d9f8c6b4x-abcde restarts（共 3 种，此为其一）",
        "级别 warning × 3 · namespace / pod",
        "- shop-canary / web-0",
        "- shop-prod / cart-* (2): 7d9f8c6b4x-abcde, 7d9f8c6b4x-fghjk",
        "",
        "✅ DiskFull × 1 已恢复 · 自 03-02 10:30",
        "标签：instance=db-1, mountpoint=/data",
        "级别 - × 1",
    ],
}  # fmt: skip


@pytest.mark.parametrize("msgtype", sorted(SUMMARY_LINES))
def test_the_storm_summary_renders_line_by_line(msgtype: str) -> None:
    renderer = Renderer(clock=lambda: NOW)
    report = renderer.render_summary(
        _storm(), msgtype=msgtype, notifications=2, running_total={"firing": 12}  # type: ignore[arg-type]
    )
    (payload,) = report.payloads
    assert payload[msgtype]["content"].splitlines() == SUMMARY_LINES[msgtype]
