"""Storm summaries from the built-in ``summary`` templates: within every byte limit, and every
alert identifiable (its alertname, status and the labels that tell it apart)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.gateway.model import Alert, Notification
from wecom_bot.gateway.templates.escaping import escape_markdown, escape_markdown_v2, escape_text
from wecom_bot.gateway.templates.renderer import Renderer
from wecom_bot.limits import CONTENT_LIMITS, utf8_len
from wecom_bot.messages import parse_message
from wecom_bot.storm import AlertBrief, expand, read_entries, read_message

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ESCAPERS = {"markdown": escape_markdown, "markdown_v2": escape_markdown_v2, "text": escape_text}
MSGTYPES = ("markdown", "markdown_v2", "text")

# Label values a storm really has (counters, addresses), hostile ones (markup, mentions) and
# ones a reader could misread (empty, spaces, quotes, the "-" of a missing label, non-ASCII
# digits, the private-use characters ranges use internally).
values = st.one_of(
    st.from_regex(r"\A(host|db|10\.0\.[0-9])-?[0-9]{1,4}(:9100)?\Z"),
    st.from_regex(r"\A[a-z]{1,8}\Z"),
    st.sampled_from(["<@all>", "[x](http://e)", "**b**", "`c`", "# h", "<font>", "a|b", "@all"]),
    st.sampled_from(["", " ", "a b", "a\nb", '"q"', "-", "－", "host-٣", "\ue000[1]\ue001"]),
)
pods = st.from_regex(r"\A(checkout|node-exporter)-([a-z0-9]{9}-)?[a-z0-9]{5}\Z")
labels = st.fixed_dictionaries(
    {"alertname": st.sampled_from(["HighLatency", "DiskFull", "<@all>", "Svc*Down"])},
    optional={
        "instance": values,
        "job": values,
        "namespace": st.sampled_from(["shop-prod", "shop-canary", "", "a b"]),
        "cluster": st.sampled_from(["eu", "us", "-"]),
        "container": st.sampled_from(["app", "istio-proxy"]),
        "pod": pods,
        "severity": st.sampled_from(["critical", "info", "", "<@all>"]),
        "<@all>": values,  # label names are as untrusted as values
        "**b** c": values,
    },
)
briefs = st.lists(
    st.builds(AlertBrief, labels, st.sampled_from(["firing", "resolved"]), st.just(1.7e9)),
    min_size=1,
    max_size=300,
)


# A word: a JSON string ("disk C", "") is part of one, spaces and all.
WORD = re.compile(r'(?:"(?:[^"\\\n]|\\.)*"|\S)+')


def readable(text: str) -> set[str]:
    """Every word of ``text`` as a reader reads it (ranges expanded, JSON strings read), with
    and without the comma that ends a list item."""
    words = set()
    for word in WORD.findall(text):
        words.update(expand(word))
        if word.endswith(","):
            words.update(expand(word[:-1]))
    return words


class Owners:
    """Finds the alerts a read entry names: those with every label it gives, as written (a
    label it gives as None: one the alert does not have)."""

    def __init__(self, alerts: list[AlertBrief], esc: Callable[[str], str]) -> None:
        self.written = [
            ({esc(k): esc(v) for k, v in a.labels.items()}, a.status, a) for a in alerts
        ]
        self.index: dict[tuple[str, ...], dict[tuple[object, ...], list[AlertBrief]]] = {}

    def __call__(self, entry: dict[str, str | None]) -> list[AlertBrief]:
        names = tuple(sorted(k for k in entry if k != "status"))
        if names not in self.index:
            table: dict[tuple[object, ...], list[AlertBrief]] = {}
            for labels, status, alert in self.written:
                table.setdefault((status, *[labels.get(n) for n in names]), []).append(alert)
            self.index[names] = table
        return self.index[names].get((entry["status"], *[entry[n] for n in names]), [])


@given(briefs, st.sampled_from(MSGTYPES), st.integers(min_value=1, max_value=5))
@settings(max_examples=80, deadline=None)
def test_any_storm_fits_every_limit_and_every_message_names_its_alerts(
    alerts: list[AlertBrief], msgtype: str, max_messages: int
) -> None:
    report = Renderer().render_summary(alerts, msgtype=msgtype, max_messages=max_messages)  # type: ignore[arg-type]
    esc = ESCAPERS[msgtype]
    distinct = list({a.key: a for a in alerts}.values())
    owners_of = Owners(distinct, esc)
    found: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for payload in report.payloads:
        parse_message(payload)  # valid, within every limit of its msgtype
        content = payload[msgtype]["content"]
        assert utf8_len(content) <= CONTENT_LIMITS[msgtype]
        assert "@" not in content  # no mention out of a name or a value
        for entry in read_entries(content):  # read one message alone
            # its alertname, status, severity and every label of its line: one alert exactly
            assert "severity" in entry and "alertname" in entry
            owners = owners_of(entry)
            assert len(owners) == 1, (entry, content)
            found.add(owners[0].key)
    assert found == {a.key for a in distinct}, "\n---\n".join(
        p[msgtype]["content"] for p in report.payloads
    )


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_a_thousand_hosts_fit_one_message_with_each_severity_listed(msgtype: str) -> None:
    alerts = [
        AlertBrief(
            {"alertname": "HighLatency", "instance": f"host-{i}", "job": "api",
             "severity": "critical" if i < 40 else "warning" if i < 400 else "info"},
            "firing", NOW.timestamp(), "p99 above 2 s",
        )  # fmt: skip
        for i in range(1000)
    ]
    (payload,) = Renderer().render_summary(alerts, msgtype=msgtype).payloads  # type: ignore[arg-type]
    content = payload[msgtype]["content"]
    assert "job=api" in content and content.count("job=api") == 1  # shared, said once
    lines = [line for line in content.splitlines() if "级别" in line or "host-" in line]
    # critical first, each severity with its own hosts
    assert [re.sub(r"<[^>]+>|[`* ]|^[>-]", "", line) for line in lines] == [
        "级别critical×40·instance", "host-[0-39]",
        "级别warning×360·instance", "host-[40-399]",
        "级别info×600·instance", "host-[400-999]",
    ]  # fmt: skip
    assert "FIRING · 1000" in content and "p99 above 2 s" in content
    assert len(read_message(content)) == 1000


def test_values_with_newlines_stay_on_their_line() -> None:
    alerts = [
        AlertBrief({"alertname": "X", "instance": f"a-{i}\n## heading\n> quote"}, "firing")
        for i in range(3)
    ]
    content = Renderer().render_summary(alerts).payloads[0]["markdown"]["content"]
    entry_lines = [line for line in content.splitlines() if "a-0" in line]
    assert len(entry_lines) == 1 and entry_lines[0].startswith('> "a-0\\n')
    assert "## heading" not in content and "\n> quote" not in content
    assert {e["instance"] for e in read_message(content)} == {
        f"a-{i}\n＃＃ heading\n＞ quote" for i in range(3)
    }


def test_an_empty_value_a_missing_label_and_a_dash_stay_apart() -> None:
    alerts = [
        AlertBrief({"alertname": "X", "instance": value, "job": "api"}, "firing")
        for value in ("", "-", "disk C", "host-1", "host-2")
    ]
    alerts.append(AlertBrief({"alertname": "X", "job": "api"}, "firing"))
    for msgtype, missing in (("markdown", "－"), ("markdown_v2", "－"), ("text", "-")):
        (payload,) = Renderer().render_summary(alerts, msgtype=msgtype).payloads  # type: ignore[arg-type]
        line = f'"", "{missing}", "disk C", host-[1-2], {missing}'
        assert line in payload[msgtype]["content"]
        assert {"", missing, "disk C", "host-1", "host-2"} <= readable(line)
        read = [e.get("instance") for e in read_entries(payload[msgtype]["content"])]
        assert read == ["", missing, "disk C", "host-1", "host-2", None]


def test_a_long_value_takes_no_more_than_its_share() -> None:
    huge = "v" * 10_000
    alerts = [AlertBrief({"alertname": "X", "instance": f"host-{i}"}, "firing") for i in range(10)]
    alerts.append(AlertBrief({"alertname": "X", "instance": huge}, "firing"))
    report = Renderer().render_summary(alerts, max_messages=1)
    content = report.payloads[0]["markdown"]["content"]
    assert len(report.payloads) == 1 and utf8_len(content) < 1000
    assert "bytes more)" in content and "host-[0-9]" in content


def test_a_notification_with_more_alerts_than_a_message_lists_renders_the_summary() -> None:
    alerts = tuple(
        Alert("firing", {"alertname": "HighLatency", "instance": f"host-{i}"}, {}, NOW)
        for i in range(50)
    )
    notification = Notification("alertmanager", "firing", alerts=alerts)
    renderer = Renderer(max_alerts=20, clock=lambda: NOW)
    for msgtype in MSGTYPES:
        report = renderer.render_check("default", notification, msgtype=msgtype)  # type: ignore[arg-type]
        assert report.used_template.startswith("summary")
        assert "host-[0-49]" in report.content
    # below the threshold the route's own template renders every alert in full
    few = Notification("alertmanager", "firing", alerts=alerts[:5])
    assert renderer.render_check("default", few).used_template == "default"


def test_the_summary_template_can_be_overridden() -> None:
    source = "{% for g in groups %}{{ g.name }}: {{ g.entries | join(' ') }}{% endfor %}"
    alerts = [AlertBrief({"alertname": "<@all>", "instance": f"h{i}"}, "firing") for i in range(4)]
    report = Renderer({"summary": source}).render_summary(alerts)
    assert report.payloads[0]["markdown"]["content"] == "＜＠all＞: h[0-3]"


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
@pytest.mark.parametrize("resolved", [0, 2])
def test_the_heading_count_stands_alone_on_its_line(msgtype: str, resolved: int) -> None:
    # 600 firing alerts folded from 4 notifications once read "FIRING · 6004 条通知合并": the
    # heading's line break was eaten by the block that ends it.
    alerts = [AlertBrief({"alertname": "X", "instance": f"h-{i}"}, "firing") for i in range(600)]
    alerts += [
        AlertBrief({"alertname": "X", "instance": f"r-{i}"}, "resolved") for i in range(resolved)
    ]
    report = Renderer().render_summary(alerts, msgtype=msgtype, notifications=4)  # type: ignore[arg-type]
    lines = report.payloads[0][msgtype]["content"].splitlines()
    heading = next(line for line in lines if "FIRING · 600" in line)
    assert "条通知合并" not in heading and re.search(r"FIRING · 600\b", heading)
    assert any(re.match(r'(<font color="comment">)?4 条通知合并', line) for line in lines)


# --------------------------------------------------------------------------- storms users have

POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes generates pod suffixes from


def pod_storm(count: int = 1000) -> list[AlertBrief]:
    """kube-prometheus ``KubePodCrashLooping`` over 10 namespaces, 3 severities."""
    rng = random.Random(25)

    def suffix(n: int) -> str:
        return "".join(rng.choice(POD_ALPHABET) for _ in range(n))

    namespaces = ["shop-prod", "shop-canary", "payments-prod", "payments-staging", "search",
                  "auth", "billing", "media", "ingest", "monitoring"]  # fmt: skip
    workloads = ["checkout", "cart", "api-gateway", "worker", "web"]
    hashes = {w: [suffix(10), suffix(9)] for w in workloads}
    alerts = []
    for i in range(count):
        workload = workloads[i % 5]
        severity = "critical" if i % 100 < 19 else "warning" if i % 100 < 70 else "info"
        labels = {
            "alertname": "KubePodCrashLooping", "namespace": namespaces[(i // 5) % 10],
            "pod": f"{workload}-{hashes[workload][i % 2]}-{suffix(5)}", "container": "app",
            "job": "kube-state-metrics", "severity": severity, "cluster": "prod-eu",
        }  # fmt: skip
        alerts.append(AlertBrief(labels, "firing", NOW.timestamp(), f"{labels['pod']} restarts"))
    return alerts


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2"])
def test_a_thousand_pods_fit_ten_messages_each_read_alone_with_severity_and_namespace(
    msgtype: str,
) -> None:
    alerts = pod_storm()
    report = Renderer(clock=lambda: NOW).render_summary(alerts, msgtype=msgtype)  # type: ignore[arg-type]
    assert len(report.payloads) <= 10 and not report.warnings  # nothing cut, nothing left out
    esc = ESCAPERS[msgtype]
    owners_of = Owners(alerts, esc)
    found = set()
    for i, payload in enumerate(report.payloads, 1):
        content = payload[msgtype]["content"]
        heading = content.splitlines()[0]
        assert "FIRING · 1000" in heading and f"({i}/{len(report.payloads)})" in heading
        for entry in read_entries(content):
            assert {"severity", "namespace", "pod", "alertname"} <= entry.keys()
            (owner,) = owners_of(entry)
            found.add(owner.key)
    assert len(found) == 1000  # every pod, each in a message that names it whole
    first = report.payloads[0][msgtype]["content"]
    # a ReplicaSet's pods: its name once, then each pod's own five characters
    assert re.search(r"> \S+ / checkout-[a-z0-9]{10}-\* \(\d+\): [a-z0-9]{5}, ", first)


def test_a_thousand_pods_in_one_message_each_name_their_severity_first_critical() -> None:
    content = "\n".join(
        p["markdown"]["content"] for p in Renderer().render_summary(pod_storm()).payloads
    )
    levels = re.findall(r"级别 `(\w+)` × (\d+)(（续）)?", re.sub(r"<[^>]+>", "", content))
    firsts = [(level, int(n)) for level, n, more in levels if not more]
    assert firsts == [("critical", 190), ("warning", 510), ("info", 300)]
    assert '<font color="warning">级别 `critical`' in content  # the alert colour, like a badge


def test_probe_urls_compress_to_one_range_before_anything_is_cut() -> None:
    urls = [
        AlertBrief({"alertname": "ProbeFailed", "job": "blackbox", "severity": "critical",
                    "instance": f"https://edge-gw-eu.example-corp.internal/tenants/tenant-{i:04d}"
                                "/healthz?deep=true"}, "firing")  # fmt: skip
        for i in range(250)
    ]
    (payload,) = Renderer().render_summary(urls, max_messages=1).payloads
    content = payload["markdown"]["content"]
    line = "> https://edge-gw-eu.example-corp.internal/tenants/tenant-[0000-0249]/healthz?deep=true"
    assert line in content.splitlines()
    assert "bytes more" not in content
    assert len(read_message(content)) == 250


def test_a_cut_never_makes_two_alerts_read_alike() -> None:
    base = "x" * 300
    alerts = [AlertBrief({"alertname": "X", "instance": f"{base}-{c}"}, "firing") for c in "ab"]
    alerts += [AlertBrief({"alertname": "X", "instance": f"{c}{base}"}, "firing") for c in "cd"]
    report = Renderer().render_summary(alerts * 1, max_messages=1)
    entries = [e["instance"] for e in read_message(report.payloads[0]["markdown"]["content"])]
    assert len(entries) == len(set(entries)) == 4


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_each_part_of_a_split_summary_names_what_it_continues(msgtype: str) -> None:
    rng = random.Random(7)
    hosts = [
        AlertBrief({"alertname": "NodeDown", "instance": f"node-{rng.getrandbits(64):x}.internal",
                    "severity": "critical"}, "firing")  # fmt: skip
        for _ in range(134)
    ]
    report = Renderer().render_summary(hosts, msgtype=msgtype)  # type: ignore[arg-type]
    assert len(report.payloads) >= 2
    for i, payload in enumerate(report.payloads[1:], 2):
        content = payload[msgtype]["content"]
        assert f"({i}/{len(report.payloads)})" in content.splitlines()[0]
        assert "NodeDown × 134" in re.sub(r"\*\*|<[^>]+>", "", content) and "（续）" in content
        assert "critical" in content and read_message(content)
