"""Parsing Alertmanager, Grafana and generic payloads; malformed ones name the bad field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wecom_bot.gateway.intake.sources import (
    MAX_ALERTS,
    MAX_GENERIC_DEPTH,
    MAX_PAIRS,
    MAX_TEXT_BYTES,
    MAX_VALUE_BYTES,
    PayloadError,
    parse_alertmanager,
    parse_generic,
    parse_grafana,
)
from wecom_bot.gateway.intake.sources._common import MAX_KEY_BYTES, cut_text
from wecom_bot.gateway.intake.sources.generic import MAX_GENERIC_STRING_BYTES
from wecom_bot.gateway.model import Alert, Notification
from wecom_bot.gateway.samples import SAMPLES, sample_notification, sample_notifications

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return data


# --------------------------------------------------------------------------- Alertmanager


def test_alertmanager_firing_fields() -> None:
    n = parse_alertmanager(load("alertmanager_firing"))
    assert n.source == "alertmanager"
    assert n.status == "firing"
    assert n.receiver == "wecom-db"
    assert [a.status for a in n.alerts] == ["firing", "firing", "resolved"]
    assert n.group_labels == {"alertname": "PostgresReplicationLag", "cluster": "pg-main"}
    assert n.common_labels["team"] == "db"
    assert n.common_annotations == {
        "runbook_url": "https://runbooks.example.com/pg/replication-lag"
    }
    assert n.external_url == "http://alertmanager-0:9093"
    assert n.group_key.startswith('{}/{team="db"}:')
    assert n.truncated_alerts == 0
    first = n.alerts[0]
    assert first.labels["instance"] == "pg-2:9187"
    assert first.annotations["description"].endswith("\nCheck WAL shipping.")
    # Nanoseconds are cut to microseconds; the zone is kept; the zero time means "not ended".
    assert first.starts_at == datetime(2024, 5, 1, 3, 48, 0, 123456, tzinfo=UTC)
    assert first.ends_at is None
    assert first.fingerprint == "0a1b2c3d4e5f6071"
    assert first.generator_url.startswith("http://prometheus-0:9090/graph?g0.expr=")
    # An offset other than Z is understood.
    assert n.alerts[1].starts_at == datetime(2024, 5, 1, 3, 55, 30, tzinfo=UTC)
    assert n.alerts[2].ends_at == datetime(2024, 5, 1, 3, 58, tzinfo=UTC)
    assert len(n.firing_alerts) == 2 and len(n.resolved_alerts) == 1
    assert n.total_alerts == 3


def test_alertmanager_resolved_counts_truncated_alerts() -> None:
    n = parse_alertmanager(load("alertmanager_resolved"))
    assert n.status == "resolved"
    assert all(a.status == "resolved" for a in n.alerts)
    assert n.alerts[0].ends_at == datetime(2024, 5, 1, 4, 33, 20, 500000, tzinfo=UTC)
    assert n.truncated_alerts == 2
    assert n.total_alerts == 4


def test_alertmanager_extra_fields_are_ignored_and_optional_ones_may_be_missing() -> None:
    payload = load("alertmanager_firing")
    payload["somethingNew"] = {"nested": [1, 2]}
    payload["alerts"][0]["extra"] = True
    for key in ("version", "groupKey", "truncatedAlerts", "externalURL", "commonAnnotations"):
        del payload[key]
    del payload["alerts"][0]["fingerprint"]
    del payload["alerts"][0]["endsAt"]
    n = parse_alertmanager(payload)
    assert n.group_key == "" and n.truncated_alerts == 0 and n.external_url == ""
    assert n.alerts[0].fingerprint == "" and n.alerts[0].ends_at is None
    assert n.alerts[0].identity.startswith("labels:")


def _set(path: str, value: Any) -> Any:
    """A mutation setting ``path`` (dots and [i]) to ``value``; ``...`` deletes it."""

    def mutate(payload: dict[str, Any]) -> None:
        parts = path.replace("[", ".").replace("]", "").split(".")
        target: Any = payload
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
        if value is ...:
            del target[last]
        else:
            target[last] = value

    return mutate


MALFORMED_ALERTMANAGER = [
    (_set("status", ...), "status is required"),
    (_set("status", "broken"), 'status must be "firing" or "resolved", not "broken"'),
    (_set("status", 1), 'status must be "firing" or "resolved", not a number'),
    (_set("receiver", 5), "receiver must be a string, not a number"),
    (_set("alerts", ...), "alerts is required"),
    (_set("alerts", {"a": 1}), "alerts must be an array, not an object"),
    (_set("alerts", []), "alerts is empty"),
    (_set("alerts[1]", "x"), "alerts[1] must be a JSON object, not a string"),
    (_set("alerts[1].status", "ok"), 'alerts[1].status must be "firing" or "resolved"'),
    (_set("alerts[2].labels", ["a"]), "alerts[2].labels must be an object of strings, not an"),
    (
        _set("alerts[2].labels.team", 7),
        "alerts[2].labels must be an object of strings (alerts[2].labels.team is a number)",
    ),
    (_set("alerts[0].annotations", "x"), "alerts[0].annotations must be an object of strings"),
    (_set("alerts[0].startsAt", ...), "alerts[0].startsAt is required"),
    (_set("alerts[0].startsAt", "0001-01-01T00:00:00Z"), "alerts[0].startsAt is required"),
    (_set("alerts[0].startsAt", "yesterday"), "alerts[0].startsAt must be an RFC 3339 time"),
    (
        _set("alerts[0].startsAt", "2024-05-01T12:00:00"),
        "alerts[0].startsAt must be an RFC 3339 time with a zone",
    ),
    (_set("alerts[0].startsAt", "2024-05-01"), "alerts[0].startsAt must be an RFC 3339 time"),
    (_set("alerts[0].endsAt", 12), "alerts[0].endsAt must be an RFC 3339 time string, not a"),
    (_set("alerts[0].generatorURL", ["x"]), "alerts[0].generatorURL must be a string"),
    (_set("alerts[0].fingerprint", {}), "alerts[0].fingerprint must be a string, not an object"),
    (_set("commonLabels", "team=db"), "commonLabels must be an object of strings, not a string"),
    (_set("groupLabels", {"a": None}), "groupLabels must be an object of strings"),
    (_set("truncatedAlerts", -1), "truncatedAlerts must be an integer from 0"),
    (_set("truncatedAlerts", "3"), "truncatedAlerts must be an integer, not a string"),
    (_set("truncatedAlerts", True), "truncatedAlerts must be an integer, not a boolean"),
    (_set("version", "3"), 'version must be "4"'),
    (
        _set("alerts[0].labels", {"weird key": 1}),
        'alerts[0].labels must be an object of strings (alerts[0].labels["weird key"] is a number)',
    ),
]


@pytest.mark.parametrize(("mutate", "message"), MALFORMED_ALERTMANAGER)
def test_malformed_alertmanager_payload_names_the_field(mutate: Any, message: str) -> None:
    payload = load("alertmanager_firing")
    mutate(payload)
    with pytest.raises(PayloadError) as info:
        parse_alertmanager(payload)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(info.value.field) and info.value.field


@pytest.mark.parametrize("payload", [None, [], "text", 3, True])
def test_payload_that_is_not_an_object(payload: Any) -> None:
    with pytest.raises(PayloadError, match="^the payload must be a JSON object") as info:
        parse_alertmanager(payload)
    assert info.value.field == ""


def test_alerts_past_the_most_kept_are_cut_and_counted() -> None:
    payload = load("alertmanager_firing")
    first = payload["alerts"][0]
    payload["alerts"] = [
        {**copy.deepcopy(first), "fingerprint": f"{i:016x}"} for i in range(MAX_ALERTS + 7)
    ]
    n = parse_alertmanager(payload)
    assert len(n.alerts) == MAX_ALERTS and n.cut_alerts == 7 and n.cut_values == 0
    assert n.alerts[-1].fingerprint == f"{MAX_ALERTS - 1:016x}"  # the first ones are kept
    assert n.total_alerts == MAX_ALERTS + 7 + n.truncated_alerts
    payload["alerts"] = payload["alerts"][:MAX_ALERTS]
    kept = parse_alertmanager(payload)
    assert len(kept.alerts) == MAX_ALERTS and kept.cut_alerts == 0
    assert kept.dedup_key() != n.dedup_key()


def test_long_values_are_cut_with_a_marker_and_counted() -> None:
    payload = load("alertmanager_firing")
    payload["alerts"][0]["labels"]["big"] = "x" * (MAX_VALUE_BYTES + 100)
    # two-byte characters: the cut keeps whole characters only
    payload["alerts"][0]["annotations"]["description"] = "é" * (MAX_VALUE_BYTES // 2 + 1)
    payload["alerts"][1]["labels"]["n" * (MAX_KEY_BYTES + 1)] = "v"
    payload["alerts"][1]["generatorURL"] = "http://x/" + "y" * MAX_VALUE_BYTES
    n = parse_alertmanager(payload)
    assert n.cut_values == 4 and n.cut_alerts == 0
    assert n.alerts[0].labels["big"] == "x" * MAX_VALUE_BYTES + "…(100 bytes more)"
    description = n.alerts[0].annotations["description"]
    assert description == "é" * (MAX_VALUE_BYTES // 2) + "…(2 bytes more)"
    assert "n" * MAX_KEY_BYTES + "…(1 bytes more)" in n.alerts[1].labels
    assert n.alerts[1].generator_url.endswith("…(9 bytes more)")
    assert n.to_dict()["cut_values"] == 4


def test_pairs_past_the_most_kept_per_alert_are_cut_and_counted() -> None:
    payload = load("alertmanager_firing")
    payload["alerts"][0]["labels"] = {f"l{i}": "v" for i in range(MAX_PAIRS + 44)}
    n = parse_alertmanager(payload)
    assert list(n.alerts[0].labels) == [f"l{i}" for i in range(MAX_PAIRS)]
    assert n.cut_values == 44


def test_grafana_texts_and_values_are_cut_not_refused() -> None:
    payload = load("grafana_firing")
    payload["message"] = "m" * (MAX_TEXT_BYTES + 5)
    payload["alerts"][0]["values"] = {f"v{i}": i for i in range(MAX_PAIRS + 1)}
    n = parse_grafana(payload)
    assert n.message == "m" * MAX_TEXT_BYTES + "…(5 bytes more)"
    assert n.cut_values == 2 and len(n.alerts[0].values) == MAX_PAIRS


def test_cut_text_keeps_whole_characters_and_says_how_much_is_left() -> None:
    assert cut_text("short", 10) == "short"
    assert cut_text("ab€cd", 3) == "ab…(5 bytes more)"  # € is 3 bytes: not split
    assert cut_text("€€", 3) == "€…(3 bytes more)"


def test_grafana_payload_posted_to_alertmanager_gets_a_hint() -> None:
    with pytest.raises(PayloadError, match=r'version must be "4".*post it to /grafana'):
        parse_alertmanager(load("grafana_firing"))


def test_unpaired_surrogates_become_replacement_characters() -> None:
    payload = load("alertmanager_firing")
    payload["alerts"][0]["labels"]["team"] = "db\ud800x"
    payload["alerts"][0]["annotations"]["s\udfff"] = "v"
    n = parse_alertmanager(payload)
    assert n.alerts[0].labels["team"] == "db\ufffdx"
    assert "s\ufffd" in n.alerts[0].annotations
    n.dedup_key().encode("ascii")  # the key is computable
    json.dumps(n.to_dict(), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------- Grafana


def test_grafana_firing_fields() -> None:
    n = parse_grafana(load("grafana_firing"))
    assert n.source == "grafana"
    assert n.status == "firing"
    assert n.org_id == 1
    assert n.state == "alerting"
    assert n.title == "[FIRING:2] Checkout latency Web (warning)"
    assert n.message.startswith("**Firing**")
    a = n.alerts[0]
    assert a.values == {"A": 2.4137, "B": 1}
    assert a.value_string.startswith("[ var='A'")
    assert a.silence_url.startswith("https://grafana.example.com/alerting/silence/new?")
    assert a.dashboard_url == "https://grafana.example.com/d/web01?orgId=1"
    assert a.panel_url.endswith("viewPanel=4")
    assert a.image_url.endswith("a1b2c3.png")
    assert a.starts_at == datetime(2024, 5, 1, 4, 2, 10, tzinfo=UTC)
    assert n.alerts[1].image_url == "" and n.alerts[1].dashboard_url == ""


def test_grafana_resolved_fields() -> None:
    n = parse_grafana(load("grafana_resolved"))
    assert n.status == "resolved" and n.state == "ok"
    assert n.alerts[0].ends_at == datetime(2024, 5, 1, 4, 40, 10, tzinfo=UTC)
    assert n.alerts[0].values == {"A": 0.8, "B": 0}


MALFORMED_GRAFANA = [
    (_set("alerts[0].values", [1]), "alerts[0].values must be an object of numbers, not an array"),
    (
        _set("alerts[0].values.A", "2.4"),
        "alerts[0].values must be an object of numbers (alerts[0].values.A is a string)",
    ),
    (_set("alerts[0].values.A", True), "(alerts[0].values.A is a boolean)"),
    (_set("alerts[0].silenceURL", 1), "alerts[0].silenceURL must be a string"),
    (_set("alerts[1].imageURL", False), "alerts[1].imageURL must be a string, not a boolean"),
    (_set("orgId", "1"), "orgId must be an integer, not a string"),
    (_set("title", {}), "title must be a string, not an object"),
    (_set("message", 3), "message must be a string"),
    (_set("state", None), None),  # null is as good as absent
]


@pytest.mark.parametrize(("mutate", "message"), MALFORMED_GRAFANA)
def test_malformed_grafana_payload_names_the_field(mutate: Any, message: str | None) -> None:
    payload = load("grafana_firing")
    mutate(payload)
    if message is None:
        assert parse_grafana(payload).state == ""
        return
    with pytest.raises(PayloadError) as info:
        parse_grafana(payload)
    assert message in str(info.value)


def test_legacy_grafana_alert_is_refused_with_a_reason() -> None:
    legacy = {"ruleName": "cpu", "state": "alerting", "evalMatches": [], "title": "x"}
    with pytest.raises(PayloadError, match="legacy dashboard alerting"):
        parse_grafana(legacy)
    with pytest.raises(PayloadError, match="legacy Grafana alert"):
        parse_alertmanager(legacy)


# --------------------------------------------------------------------------- dedup keys


def test_dedup_key_is_stable_for_a_sender_retry() -> None:
    payload = load("alertmanager_firing")
    key = parse_alertmanager(payload).dedup_key()
    assert len(key) == 64 and int(key, 16) >= 0
    assert parse_alertmanager(copy.deepcopy(payload)).dedup_key() == key
    reordered = copy.deepcopy(payload)
    reordered["alerts"].reverse()
    assert parse_alertmanager(reordered).dedup_key() == key
    # Senders move a firing alert's endsAt forward on every evaluation: still the same.
    moved = copy.deepcopy(payload)
    moved["alerts"][1]["endsAt"] = "2024-05-01T04:14:00Z"
    assert parse_alertmanager(moved).dedup_key() == key
    # Text that does not identify the notification does not change it either.
    reworded = copy.deepcopy(payload)
    reworded["alerts"][0]["annotations"]["summary"] = "other words"
    assert parse_alertmanager(reworded).dedup_key() == key


@pytest.mark.parametrize(
    "mutate",
    [
        _set("status", "resolved"),
        _set("groupKey", "{}:{other}"),
        _set("receiver", "other"),
        _set("alerts[0].startsAt", "2024-05-01T03:49:00Z"),
        _set("alerts[2].endsAt", "2024-05-01T03:59:00Z"),  # a resolved alert's end counts
        _set("alerts[1].status", "resolved"),
        _set("alerts[0].fingerprint", "ffffffffffffffff"),
        _set("truncatedAlerts", 4),
        lambda payload: payload["alerts"].pop(),
    ],
)
def test_dedup_key_changes_for_a_different_notification(mutate: Any) -> None:
    payload = load("alertmanager_firing")
    key = parse_alertmanager(payload).dedup_key()
    changed = copy.deepcopy(payload)
    mutate(changed)
    assert parse_alertmanager(changed).dedup_key() != key


def test_grafana_and_alertmanager_keys_differ_and_grafana_is_stable() -> None:
    g = load("grafana_firing")
    key = parse_grafana(g).dedup_key()
    assert parse_grafana(copy.deepcopy(g)).dedup_key() == key
    other_org = copy.deepcopy(g)
    other_org["orgId"] = 2
    assert parse_grafana(other_org).dedup_key() != key
    as_am = copy.deepcopy(g)
    del as_am["version"]
    assert parse_alertmanager(as_am).dedup_key() != key


def test_generic_dedup_key_is_the_canonical_json() -> None:
    a = parse_generic("deploys", {"b": 1, "a": [1, {"y": 2, "x": "é"}]})
    b = parse_generic("deploys", {"a": [1, {"x": "é", "y": 2}], "b": 1})
    assert a.dedup_key() == b.dedup_key()
    renamed = parse_generic("other", {"b": 1, "a": [1, {"y": 2, "x": "é"}]})
    changed = parse_generic("deploys", {"b": 2, "a": [1, {"y": 2, "x": "é"}]})
    assert renamed.dedup_key() != a.dedup_key()
    assert changed.dedup_key() != a.dedup_key()


# --------------------------------------------------------------------------- generic


@pytest.mark.parametrize("payload", [{"a": 1}, [1, "two", None], "just text", 42, 1.5, True, None])
def test_generic_accepts_any_json(payload: Any) -> None:
    n = parse_generic("ci", payload)
    assert n.source == "generic" and n.receiver == "ci" and n.raw == payload
    assert n.alerts == () and n.status == "firing"


def test_generic_picks_up_status_title_and_message() -> None:
    n = parse_generic("ci", {"status": "resolved", "title": "Build #12", "text": "green again"})
    assert (n.status, n.title, n.message) == ("resolved", "Build #12", "green again")
    n = parse_generic("ci", {"status": 3, "title": ["x"], "message": "m", "text": "t"})
    assert (n.status, n.title, n.message) == ("firing", "", "m")


def test_generic_limits_depth_and_size() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_GENERIC_DEPTH + 1):
        deep = {"k": deep}
    with pytest.raises(PayloadError, match="nested deeper than 32 levels"):
        parse_generic("ci", deep)
    with pytest.raises(PayloadError, match="more than 100000 values"):
        parse_generic("ci", list(range(100_001)))
    with pytest.raises(PayloadError, match=r"^items\[1\] is not a JSON value"):
        parse_generic("ci", {"items": [1, {1, 2}]})
    with pytest.raises(ValueError, match="needs a name"):
        parse_generic("", {})


def test_generic_strings_past_the_most_kept_are_cut_and_counted() -> None:
    n = parse_generic("ci", {"log": "z" * (MAX_GENERIC_STRING_BYTES + 3), "ok": "fine"})
    assert n.raw["log"] == "z" * MAX_GENERIC_STRING_BYTES + "…(3 bytes more)"
    assert n.raw["ok"] == "fine" and n.cut_values == 1


def test_generic_copies_and_cleans_the_payload() -> None:
    payload = {"k\ud800": ["v\udfff"]}
    n = parse_generic("ci", payload)
    assert n.raw == {"k\ufffd": ["v\ufffd"]}
    assert payload == {"k\ud800": ["v\udfff"]}  # the caller's object is untouched


# --------------------------------------------------------------------------- model and samples


def test_model_rejects_naive_times_and_bad_status() -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    with pytest.raises(ValueError, match="time-zone aware"):
        Alert("firing", {}, {}, naive)
    with pytest.raises(ValueError, match="firing or resolved"):
        Alert("pending", {}, {}, naive.replace(tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source must be"):
        Notification("nagios", "firing")  # type: ignore[arg-type]


def test_with_alerts_recomputes_status() -> None:
    n = parse_alertmanager(load("alertmanager_firing"))
    only_resolved = n.with_alerts(n.resolved_alerts)
    assert only_resolved.status == "resolved" and len(only_resolved.alerts) == 1
    assert n.with_alerts(n.firing_alerts).status == "firing"


def test_to_dict_is_json_ready() -> None:
    n = parse_grafana(load("grafana_firing"))
    data = json.loads(json.dumps(n.to_dict()))
    assert data["alerts"][0]["starts_at"] == "2024-05-01T12:02:10+08:00"
    assert data["alerts"][0]["ends_at"] is None
    assert data["org_id"] == 1 and data["alerts"][0]["values"]["A"] == 2.4137


def test_every_sample_parses_and_times_follow_now() -> None:
    now = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    notifications = sample_notifications(now)
    assert [n.source for n in notifications] == [source for source, _ in SAMPLES.values()]
    firing = sample_notification("alertmanager_firing", now)
    assert firing.alerts[0].starts_at == now - timedelta(minutes=12)
    assert sample_notification("alertmanager_resolved", now).status == "resolved"
    assert sample_notification("grafana_resolved", now).status == "resolved"
    # The samples are fresh each time.
    assert SAMPLES["generic"][1](now) is not SAMPLES["generic"][1](now)
    with pytest.raises(KeyError):
        sample_notification("nope")
