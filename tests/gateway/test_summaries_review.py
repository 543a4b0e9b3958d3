"""Attacks on the storm summary layout (issue 25 review): hostile values and names, cut values,
pagination edges. Each test reads the messages the way a person does, one at a time."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from wecom_bot.gateway.model import Alert, Notification
from wecom_bot.gateway.routing import Mentions
from wecom_bot.gateway.templates.escaping import escape_markdown
from wecom_bot.gateway.templates.renderer import Renderer
from wecom_bot.gateway.templates.summaries import summary_pages
from wecom_bot.limits import CONTENT_LIMITS, utf8_len
from wecom_bot.messages import parse_message
from wecom_bot.storm import AlertBrief, read_entries

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
MSGTYPES = ("markdown", "markdown_v2", "text")


def contents(report: object, msgtype: str) -> list[str]:
    payloads = report.payloads  # type: ignore[attr-defined]
    for payload in payloads:
        parse_message(payload)
    return [p[msgtype]["content"] for p in payloads]


def identities(texts: list[str]) -> list[tuple[tuple[str, str | None], ...]]:
    """Every entry the messages give, each as the sorted labels a reader reads for it."""
    return [tuple(sorted(e.items())) for text in texts for e in read_entries(text)]


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_cut_context_values_never_make_two_alerts_read_alike(msgtype: str) -> None:
    # 13 namespaces alike but for their last character, too long to be written whole: cut to
    # the same prefix, the 13 pods "web-1" would read as one alert 13 times
    long = "tenant-" + "n" * 400
    alerts = [
        AlertBrief({"alertname": "X", "namespace": long + c, "instance": "web-1"}, "firing")
        for c in "abcdefghijklm"
    ]
    alerts += [
        AlertBrief({"alertname": "X", "namespace": long + "a", "instance": f"h-{i}"}, "firing")
        for i in range(3)
    ]
    report = Renderer(max_summary_parts=1).render_summary(alerts, msgtype=msgtype)  # type: ignore[arg-type]
    read = identities(contents(report, msgtype))
    assert not [i for i, n in Counter(read).items() if n > 1]
    # what is not listed is counted, never silently merged
    left = sum(int(n) for n in re.findall(r"另有 (\d+) 条", "\n".join(contents(report, msgtype))))
    assert len(read) + left == len(alerts)


def test_cut_alertnames_never_make_two_groups_read_alike() -> None:
    long = "Alert" + "N" * 400
    alerts = [
        AlertBrief({"alertname": long + c, "instance": "web-1"}, "firing") for c in "abcdefghijklm"
    ]
    report = Renderer(max_summary_parts=1).render_summary(alerts)
    text = contents(report, "markdown")[0]
    names = re.findall(r"🔥 \*\*(.+?)\*\* ×", text)
    assert names and len(names) == len(set(names)), names


def test_long_severities_never_read_as_one() -> None:
    long = "sev" + "s" * 100
    alerts = [
        AlertBrief({"alertname": "X", "severity": long + c, "instance": "web-1"}, "firing")
        for c in "ab"
    ]
    text = contents(Renderer().render_summary(alerts), "markdown")[0]
    levels = re.findall(r"级别 `(.+?)`", text)
    assert len(levels) == len(set(levels)) == 2, text


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_a_value_with_a_comma_does_not_read_as_two_alerts(msgtype: str) -> None:
    # entries are listed "a, b": an unquoted "host-1,host-2" reads as the two hosts it names
    alerts = [
        AlertBrief({"alertname": "X", "instance": v}, "firing")
        for v in ("host-1,host-2", "host-3", "a,")
    ]
    (text,) = contents(Renderer().render_summary(alerts, msgtype=msgtype), msgtype)  # type: ignore[arg-type]
    assert '"host-1,host-2"' in text and '"a,"' in text
    assert sorted(e["instance"] for e in read_entries(text)) == ["a,", "host-1,host-2", "host-3"]


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_a_line_longer_than_a_message_stays_within_the_parts_and_each_stands_alone(
    msgtype: str,
) -> None:
    # every context label set, each value 400 bytes: one entry line is longer than a message
    context = ("cluster", "namespace", "job", "service", "container", "mountpoint", "pod")
    alerts = [
        AlertBrief(
            {
                "alertname": "X",
                "severity": "critical",
                **{k: f"{k}-" + "v" * 400 + f"-{i}" for k in context},
            },
            "firing",
        )  # fmt: skip
        for i in range(6)
    ]
    report = Renderer(max_summary_parts=3).render_summary(alerts, msgtype=msgtype)  # type: ignore[arg-type]
    texts = contents(report, msgtype)
    assert 1 <= len(texts) <= 3
    for i, text in enumerate(texts, 1):
        assert utf8_len(text) <= CONTENT_LIMITS[msgtype]
        heading = text.splitlines()[0]
        assert "FIRING · 6" in heading
        if len(texts) > 1:
            assert f"({i}/{len(texts)})" in heading
    read = identities(texts)
    left = re.findall(r"另有 (\d+) 条", texts[-1])
    # listed once each, or counted as left out: never sent as a headless piece of a line
    assert len(read) == len(set(read)) == 6 - (int(left[0]) if left else 0)


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("parts", [1, 3, 10])
def test_pages_number_themselves_and_list_each_alert_once_with_a_true_left_out_count(
    msgtype: str, parts: int
) -> None:
    rng = random.Random(parts)
    alerts = tuple(
        Alert(
            "firing",
            {
                "alertname": "NodeDown",
                "instance": f"n-{rng.getrandbits(48):x}",
                "severity": rng.choice(["critical", "warning"]),
            },
            {},
            NOW,
        )  # fmt: skip
        for _ in range(2000)
    )
    notification = Notification("alertmanager", "firing", alerts=alerts)
    renderer = Renderer(max_alerts=20, max_summary_parts=parts, clock=lambda: NOW)
    mentions = Mentions(userids=tuple(f"user{i}" for i in range(30)))
    report = renderer.render_check("default", notification, msgtype=msgtype, mentions=mentions)  # type: ignore[arg-type]
    texts = contents(report, msgtype)
    assert len(texts) <= parts
    if msgtype == "markdown":
        assert "<@user29>" in texts[0] and all("<@" not in t for t in texts[1:])
    seen = []
    for i, text in enumerate(texts, 1):
        assert utf8_len(text) <= CONTENT_LIMITS[msgtype]
        numbers = re.findall(r"\((\d+)/(\d+)\)", text.splitlines()[0])
        assert numbers == ([(str(i), str(len(texts)))] if len(texts) > 1 else [])
        seen += [e["instance"] for e in read_entries(text)]
    assert len(seen) == len(set(seen))  # no alert listed twice
    left = re.findall(r"另有 (\d+) 条", texts[-1])
    assert (int(left[0]) if left else 0) == 2000 - len(seen)  # the count left out is true


HOSTILE = [
    "📍 prod / shop", "级别 critical × 3 · pod", "（续）", "a / b", "checkout-* (3): x",
    "x* (3): y", "(3):", '{"k": "v"}', "<@all>", "@all", "line\n> 📍 forged", "\u202egnp.exe",
    "🔥 Forged × 9", "✅ Forged × 9", "标签：k=v", "😀" * 30, "-", "**bold**", "<font>",
]  # fmt: skip


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("label", ["namespace", "instance", "severity", "alertname"])
def test_hostile_values_forge_no_heading_no_mention_and_name_one_alert_each(
    msgtype: str, label: str
) -> None:
    alerts = [
        AlertBrief(
            {
                "alertname": "X",
                "namespace": "ns",
                "instance": f"h-{i}",
                "severity": "info",
                label: value,
            },
            "firing",
        )  # fmt: skip
        for i, value in enumerate(HOSTILE)
    ]
    texts = contents(Renderer().render_summary(alerts, msgtype=msgtype), msgtype)  # type: ignore[arg-type]
    joined = "\n".join(texts)
    assert "@" not in joined
    # no value starts a line of its own: headings are the gateway's alone
    assert sum(line.lstrip("> -").startswith("📍") for line in joined.splitlines()) <= 1
    assert not re.search(r"^(> )?(🔥|✅) \**Forged", joined, re.M)
    read = identities(texts)
    assert len(read) == len(set(read)) == len(HOSTILE)


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_a_later_part_names_the_cluster_and_namespace_its_alerts_share(msgtype: str) -> None:
    # one namespace of one cluster: shared by every alert, so stated once on the first part;
    # a later part read alone (a phone notification) must still say where its pods are
    rng = random.Random(9)
    alerts = [
        AlertBrief(
            {
                "alertname": "KubePodCrashLooping",
                "cluster": "prod-eu",
                "namespace": "shop-prod",
                "pod": f"web-{rng.getrandbits(40):x}-{rng.getrandbits(20):05x}",
                "severity": "warning",
            },
            "firing",
        )
        for _ in range(600)
    ]
    texts = contents(Renderer().render_summary(alerts, msgtype=msgtype), msgtype)  # type: ignore[arg-type]
    assert len(texts) >= 2
    for text in texts:
        assert "namespace=shop-prod" in text and "cluster=prod-eu" in text
        for entry in read_entries(text):
            assert entry["namespace"] == "shop-prod" and entry["cluster"] == "prod-eu"


def test_filling_a_page_never_renders_more_of_a_storm_than_a_page_can_hold() -> None:
    # each page was first rendered with every alert left (50,000 alerts with 40 labels: 9 s on
    # the event loop); an entry writes a byte at least, so no page needs more than its limit
    rng = random.Random(5)
    alerts = [
        AlertBrief({"alertname": "X", "instance": f"n-{rng.getrandbits(64):x}"}, "firing")
        for _ in range(20_000)
    ]
    largest = 0

    def render(context: dict[str, object]) -> str:
        nonlocal largest
        items = sum(
            len(line.items) for g in context["groups"] for s in g.sections for line in s.lines
        )  # type: ignore[attr-defined]
        largest = max(largest, items)
        return "x" * (items * 12)

    written = summary_pages(
        alerts, msgtype="markdown", esc=escape_markdown, render=render, max_messages=10
    )
    assert len(written.pages) == 10 and written.left_out > 0
    assert largest <= CONTENT_LIMITS["markdown"]


INVISIBLE = ["ab", "a\u2067b", "a\u200bb", "a\u00adb", "a\x07b", "a\u2028b", "a\nb", "a\r\nb"]


@pytest.mark.parametrize("msgtype", MSGTYPES)
@pytest.mark.parametrize("label", ["instance", "namespace"])
def test_values_that_differ_only_by_invisible_characters_read_apart(
    msgtype: str, label: str
) -> None:
    # the escapers drop bidi marks and controls, and a zero-width space shows nothing: "a⁧b"
    # and "ab" were both written ab, two alerts that read as one
    alerts = [
        AlertBrief({"alertname": "X", "pod": "web-1", "instance": "i", label: v}, "firing")
        for v in INVISIBLE
    ]
    (text,) = contents(Renderer().render_summary(alerts, msgtype=msgtype), msgtype)  # type: ignore[arg-type]
    shown = [line for line in text.splitlines() if line.lstrip("> -").startswith(('"a', "ab"))]
    assert not re.search("[\u00ad\u200b-\u200f\u2028\u2029\u2066-\u2069\x07]", text)
    read = [e[label] for e in read_entries(text)]
    assert len(read) == len(set(read)) == len(INVISIBLE), (read, shown)
    assert '"a\\u200bb"' in text and '"a\\u2067b"' in text and "ab" in read


def test_a_quoted_value_that_looks_like_a_pod_line_reads_as_itself() -> None:
    # text keeps "*": "x* (3): y" read back as the stem "x and one pod y"
    values = ["x* (3): y", "ab* (3): y", "host-3"]
    alerts = [AlertBrief({"alertname": "X", "instance": v}, "firing") for v in values]
    (text,) = contents(Renderer().render_summary(alerts, msgtype="text"), "text")
    assert sorted(e["instance"] for e in read_entries(text)) == sorted(values)
