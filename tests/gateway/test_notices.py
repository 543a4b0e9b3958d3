"""Escalation and reminder messages: bounded whatever the group's labels, one line per label
value in every msgtype, folded many groups to one message with true counts, and notices of
groups acknowledged, resolved or forgotten meanwhile never sent."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.gateway.test_escalation import NOW, SECRET, Clock, _config, _process, _runtime
from wecom_bot.gateway.actions.escalation import Escalator
from wecom_bot.gateway.actions.groups import GroupInfo
from wecom_bot.gateway.actions.links import ActionLinker
from wecom_bot.gateway.actions.notices import (
    MAX_LABELS,
    NoticeBrief,
    attach_notices,
    fold,
    notice,
    notices_of,
)
from wecom_bot.gateway.intake.sources import parse_alertmanager
from wecom_bot.gateway.routing import Mentions
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.gateway.templates.renderer import Renderer
from wecom_bot.limits import CONTENT_LIMITS, utf8_len
from wecom_bot.messages import parse_message
from wecom_bot.store import NewMessage, Priority
from wecom_bot.storm import detach

SYNTAXES = ["markdown", "markdown_v2", "text"]
RESOLVED_LINE = "✅ 已恢复 RESOLVED"


def _info(**group_labels: str) -> GroupInfo:
    payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
    payload["groupLabels"] = {"alertname": "HighCPU", **group_labels}
    info = GroupInfo.of(parse_alertmanager(payload), ["crit"], notification_id="n", now=NOW)
    assert info is not None
    return info


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_a_label_with_line_breaks_stays_on_its_line(syntax: Any) -> None:
    hostile = f"db-1\n{RESOLVED_LINE}\r\n\u2028{RESOLVED_LINE}\n\n- [x](http://evil) <@all>"
    info = _info(instance=hostile, team="\n\n**boss**\n")
    linker = ActionLinker("https://gw.example.com", SECRET.encode(), clock=lambda: NOW)
    links = linker.for_group({"alertname": "HighCPU"}, "http://127.0.0.1:9")
    for kind in ("escalate", "remind"):
        text = notice(kind, info, now=NOW + 900, syntax=syntax, links=links)  # type: ignore[arg-type]
        for line in text.split("\n"):
            assert not line.lstrip("> ").startswith("✅"), text
        labels_line = next(line for line in text.split("\n") if "instance=" in line)
        assert labels_line.count("已恢复") == 2 and "team=" in labels_line
        assert "<@all>" not in text and "[x](http://evil)" not in text
    briefs = [NoticeBrief.of("escalate", info, links), NoticeBrief.of("remind", _info(), None)]
    folded = fold(briefs, syntax=syntax, now=NOW + 900)
    for line in folded.split("\n"):
        assert not line.lstrip("> ").startswith("✅"), folded
    assert "<@all>" not in folded


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_a_group_with_hundreds_of_huge_labels_is_one_message(syntax: Any) -> None:
    labels = {f"label_{i:03d}": "x" * 16 * 1024 for i in range(254)}
    info = _info(**labels)
    renderer = Renderer(timezone="UTC")
    body = notice("remind", info, now=NOW + 3600, syntax=syntax)
    report = renderer.compose("remind", body, msgtype=syntax, mentions=Mentions(("lead",)))
    assert len(report.parts) == 1
    assert f"+{254 - MAX_LABELS} labels" in body and "bytes more" in body
    assert utf8_len(body) < CONTENT_LIMITS[syntax] // 2


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_a_fold_counts_every_group_once_and_fits_one_message(syntax: Any) -> None:
    briefs = [
        NoticeBrief("escalate", f"g{i}", "DiskFull", (("instance", f"host-{i}"),), 0,
                    NOW - i, 1, f"https://gw.example.com/act/{'a' * 60}{i}")
        for i in range(2000)
    ]  # fmt: skip
    briefs += briefs[:10]  # a reminder queued twice for the same group is one group
    text = fold(briefs, syntax=syntax, now=NOW + 900, console_url="https://gw.example.com/ui/")
    assert utf8_len(text) <= CONTENT_LIMITS[syntax] * 3 // 4
    assert "2000 组告警仍未认领 · 2000 groups unacknowledged" in text
    listed = len(re.findall(r"instance=host-\d+", text))
    [left] = re.findall(r"另有 (\d+) 组", text)
    assert listed >= 5 and listed + int(left) == 2000
    assert "https://gw.example.com/ui/#alerts" in text
    assert "host-1999" in text  # the longest firing first


async def test_notices_of_many_groups_fold_and_those_acknowledged_meanwhile_are_dropped() -> None:
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m", "mention": ["lead"]}]), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    for i in range(30):
        payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
        payload["groupLabels"] = {"alertname": "HighCPU", "instance": f"db-{i}"}
        await _process(runtime, payload, NOW)
    clock.now = NOW + 60
    while await escalator.run_once():
        pass
    records = await store.claim("ops", limit=100, lease_seconds=30, now=clock.now + 5)
    assert len(records) == 30 and {r.priority for r in records} == {Priority.ESCALATION}
    briefs = [(notices_of(r.payload) or [None])[0] for r in records]
    assert all(b is not None for b in briefs)
    # Three groups were acknowledged and two resolved after their notices were queued.
    for brief in briefs[:3]:
        assert brief is not None and await store.acknowledge_group(brief.group, by="王五")
    for brief in briefs[3:5]:
        assert brief is not None and await store.resolve_group(brief.group)
    fold = await runtime.fold_notices([r.payload for r in records], syntax="markdown")
    assert fold.obsolete == frozenset(range(5))
    payloads = fold.payloads
    assert payloads is not None and len(payloads) == 1
    content = payloads[0]["markdown"]["content"]
    assert "25 组告警仍未认领" in content and content.endswith("<@lead>")
    assert parse_message(detach(payloads[0])).to_payload()["markdown"]["content"] == content
    listed = set(re.findall(r"instance=(db-\d+)\b", content))
    dropped = {dict(b.labels)["instance"] for b in briefs[:5] if b is not None}
    [left] = re.findall(r"另有 (\d+) 组", content)
    assert len(listed) + int(left) == 25 and not listed & dropped
    # Every group acknowledged: nothing is left to say.
    for brief in briefs[5:]:
        assert brief is not None and await store.acknowledge_group(brief.group, by="王五")
    fold = await runtime.fold_notices([r.payload for r in records], syntax="text")
    assert fold.obsolete == frozenset(range(30))
    # One group's notice alone is sent as it is, with all its links; so is the newest of
    # several of one group.
    await store.ack([r.id for r in records])
    payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
    payload["groupLabels"] = {"alertname": "HighCPU", "instance": "db-new"}
    await _process(runtime, payload, clock.now)
    clock.now += 60
    while await escalator.run_once():
        pass
    [fresh] = await store.claim("ops", limit=5, lease_seconds=30, now=clock.now + 5)
    assert (await runtime.fold_notices([fresh.payload], syntax="markdown")).payloads is None
    [brief] = notices_of(fresh.payload) or []
    older = attach_notices(fresh.payload, [dataclasses.replace(brief, fire="an-earlier-one")])
    twice = await runtime.fold_notices(
        [older, records[0].payload, fresh.payload], syntax="markdown"
    )
    assert twice.payloads == [fresh.payload] and twice.obsolete == {1}
    parts = await runtime.fold_notices([fresh.payload, fresh.payload], syntax="markdown")
    assert parts.payloads is None  # the parts of one firing go as they are


HOSTILE_LABELS = {f"L{j}" + "a" * 95: "@" * 96 for j in range(6)}


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_escaping_that_triples_every_byte_still_leaves_one_message(syntax: Any) -> None:
    # "@" is escaped to a 3-byte look-alike: 6 labels of 96-byte names and values grow to
    # 2.3 KB escaped, past the text limit, unless the escaped line is cut again.
    info = _info(**HOSTILE_LABELS)
    linker = ActionLinker("https://gw.example.com", SECRET.encode(), clock=lambda: NOW)
    links = linker.for_group({"alertname": "HighCPU"}, "http://127.0.0.1:9")
    body = notice("escalate", info, now=NOW + 900, syntax=syntax, links=links)
    report = Renderer(timezone="UTC").compose(
        "escalate", body, msgtype=syntax, mentions=Mentions(("lead",))
    )
    assert len(report.parts) == 1 and "bytes more" in body
    assert links is not None and links.ack in body


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_one_hostile_group_does_not_hide_the_others_in_a_fold(syntax: Any) -> None:
    hostile = NoticeBrief.of("escalate", _info(**HOSTILE_LABELS), None)
    hostile = dataclasses.replace(hostile, firing_since=NOW - 9999)  # listed first
    normal = [
        NoticeBrief("escalate", f"g{i}", "DiskFull", (("instance", f"host-{i}"),), 0, NOW, 1)
        for i in range(50)
    ]
    text = fold([hostile, *normal], syntax=syntax, now=NOW + 900)
    listed = len(re.findall(r"instance=host-\d+", text))
    [left] = re.findall(r"另有 (\d+) 组", text)
    assert listed >= 5 and listed + int(left) + text.count("L0a") == 51


async def test_a_fold_folded_again_with_later_notices_stays_one_message() -> None:
    # A fold given back (past the free slots, a stop, a lease run out) meets later notices:
    # it carries its groups, so the next fold counts them all, once.
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m", "mention": ["lead"]}]), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    for i in range(12):
        payload = alertmanager_firing(datetime.fromtimestamp(NOW, UTC))
        payload["groupLabels"] = {"alertname": "HighCPU", "instance": f"db-{i}"}
        await _process(runtime, payload, NOW + (0 if i < 8 else 30))
    clock.now = NOW + 60
    while await escalator.run_once():
        pass
    first = await store.claim("ops", limit=100, lease_seconds=30, now=clock.now + 5)
    assert len(first) == 8
    fold1 = await runtime.fold_notices([r.payload for r in first], syntax="markdown")
    assert fold1.payloads is not None and len(fold1.payloads) == 1
    carried = notices_of(fold1.payloads[0])
    assert carried is not None and len(carried) == 8
    await store.ack([r.id for r in first])
    clock.now = NOW + 90
    while await escalator.run_once():
        pass
    later = await store.claim("ops", limit=100, lease_seconds=30, now=clock.now + 5)
    assert len(later) == 4
    again = await runtime.fold_notices(
        [fold1.payloads[0], *(r.payload for r in later)], syntax="markdown"
    )
    assert again.payloads is not None and len(again.payloads) == 1 and not again.obsolete
    content = again.payloads[0]["markdown"]["content"]
    assert "12 组告警仍未认领" in content and content.endswith("<@lead>")
    # Two of the first eight acknowledged meanwhile: the fold counts ten.
    for brief in carried[:2]:
        assert await store.acknowledge_group(brief.group, by="王五")
    after = await runtime.fold_notices(
        [fold1.payloads[0], *(r.payload for r in later)], syntax="markdown"
    )
    assert after.payloads is not None
    assert "10 组告警仍未认领" in after.payloads[0]["markdown"]["content"]


async def test_the_digest_path_folds_notices_it_claims_with_an_earlier_fold() -> None:
    # The review's case: old notices, a backlog of alerts, newer notices, one digest round.
    clock = Clock()
    runtime, store = _runtime(_config(escalate=[{"after": "1m"}]), clock)
    escalator = Escalator(lambda: runtime, clock=clock)
    for prefix, at, count in (("old", NOW, 10), ("new", NOW + 1000, 50)):
        for i in range(count):
            payload = alertmanager_firing(datetime.fromtimestamp(at, UTC))
            payload["groupLabels"] = {"alertname": "HighCPU", "instance": f"{prefix}-{i}"}
            await _process(runtime, payload, at)
        clock.now = at + 60
        while await escalator.run_once():
            pass
    clock.now = NOW + 1066
    for i in range(100):
        body = {"msgtype": "markdown", "markdown": {"content": f"alert {i}"}}
        await store.enqueue([NewMessage(bot="ops", payload=body)], now=clock.now)
    clock.now += 5
    assert runtime.dispatcher is not None
    records = await store.claim("ops", limit=20, lease_seconds=30, now=clock.now)
    out = await runtime.dispatcher._maybe_digest("ops", records, free=20)
    notices = [r for r in out if r.priority >= Priority.ESCALATION]
    assert len(notices) == 1, [r.payload["markdown"]["content"][:40] for r in notices]
    assert "60 组告警仍未认领" in notices[0].payload["markdown"]["content"]
