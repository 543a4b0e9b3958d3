"""Requests the fuzzers found answered 500, against the real app on each store.

A lone UTF-16 surrogate (JSON ``"\\ud800"``, or its raw bytes) in an alert is bad input that
must not lose the alert: the notification is accepted, journaled and delivered with U+FFFD in
its place, on SQLite and Redis as in memory. In the console API, ids past 64 bits, ``since=nan``
and surrogates in bodies, queries and paths get a clear 4xx (or are answered), never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    Running,
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
)
from tests.redis_server import redis_server
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.samples import alertmanager_firing

JSON = {"Content-Type": "application/json"}
BIG = 2**63  # one past the largest 64-bit id


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


@pytest.fixture(
    scope="module",
    params=["sqlite", "memory", pytest.param("redis", marks=pytest.mark.redis)],
)
def gateway(
    request: pytest.FixtureRequest, emu: Emu, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Running, str]]:
    tmp = tmp_path_factory.mktemp(request.param)
    key = new_key()
    if request.param == "redis":
        with redis_server(tmp) as url, running_gateway(gateway_config(emu.url, key, url)) as gw:
            yield gw, key
        return
    store = f"sqlite:///{tmp / 'o.db'}" if request.param == "sqlite" else "memory://"
    with running_gateway(gateway_config(emu.url, key, store)) as gw:
        yield gw, key


def _alert(name: str) -> dict[str, Any]:
    payload = alertmanager_firing()
    payload["alerts"] = payload["alerts"][:1]
    payload["alerts"][0]["labels"]["alertname"] = name
    payload["alerts"][0]["fingerprint"] = name
    payload["groupKey"] = f'{{}}:{{alertname="{name}"}}'
    payload["groupLabels"] = {"alertname": name}
    return payload


def _contents(emu: Emu, key: str) -> str:
    return "\n".join(json.dumps(p, ensure_ascii=False) for p in emulator_contents(emu, key))


def test_lone_surrogates_in_an_alert_are_replaced_and_delivered(
    gateway: tuple[Running, str], emu: Emu
) -> None:
    gw, key = gateway
    escaped = json.dumps(_alert("EscXaped")).replace("EscXaped", "Esc\\ud800aped")
    raw = json.dumps(_alert("RawXbytes"), ensure_ascii=False).encode()
    raw = raw.replace(b"RawXbytes", b"Raw\xed\xa0\x80bytes")  # a surrogate as UTF-8-ish bytes
    annotation = _alert("InNote")
    annotation["alerts"][0]["annotations"]["summary"] = "low \udfff half"
    bodies = [
        ("/alertmanager", escaped.encode()),
        ("/alertmanager", raw),
        ("/alertmanager?wait=true", json.dumps(annotation).encode()),
        ("/webhook/deploy", b'{"text": "a\\udc00b", "\\ud800key": "v"}'),
    ]
    for path, body in bodies:
        answer = gw.client.post(path, content=body, headers=JSON)
        assert answer.status_code == 200, (path, answer.text)
    wanted = ["Esc\ufffdaped", "Raw\ufffdbytes", "low \ufffd half", "a\ufffdb"]
    wait_for(
        lambda: all(text in _contents(emu, key) for text in wanted),
        what="every notification delivered with U+FFFD",
    )
    assert gw.metric("wecom_bot_inbox_depth") == 0
    dead = gw.client.get("/api/v1/dead-letters").json()
    assert dead["total"] == 0, dead
    label = {"label": "alertname=Esc\ufffdaped"}
    [entry] = gw.client.get("/api/v1/history", params=label).json()["entries"]
    assert entry["state"] == "delivered", entry


BODIES = {
    "id past 64 bits": {"ids": [BIG]},
    "negative id past 64 bits": {"ids": [-BIG - 1]},
    "id 0": {"ids": [0]},
}


@pytest.mark.parametrize("action", ["requeue", "discard"])
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_dead_letter_ids_past_64_bits_are_refused(
    gateway: tuple[Running, str], action: str, body: dict[str, Any]
) -> None:
    gw, _ = gateway
    answer = gw.client.post(f"/api/v1/dead-letters/{action}", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith("body.ids.0: Input should be")


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e999"])
@pytest.mark.parametrize("name", ["since", "until"])
def test_history_times_that_are_not_finite_are_refused(
    gateway: tuple[Running, str], name: str, value: str
) -> None:
    gw, _ = gateway
    answer = gw.client.get("/api/v1/history", params={name: value})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == f"query.{name}: Input should be a finite number"


SURROGATE = "%ED%A0%80"  # U+D800 percent-encoded as UTF-8-ish bytes


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/history?q={SURROGATE}&label=alertname%3D{SURROGATE}&bot={SURROGATE}",
        f"/api/v1/history?route={SURROGATE}&source={SURROGATE}&state=delivered",
        f"/api/v1/dead-letters?bot={SURROGATE}",
        f"/api/v1/history/{SURROGATE}",
        f"/api/v1/playground/samples/{SURROGATE}",
        f"/ui/assets/{SURROGATE}",
    ],
)
def test_surrogates_in_paths_and_queries_never_answer_5xx(
    gateway: tuple[Running, str], path: str
) -> None:
    gw, _ = gateway
    answer = gw.client.get(path)
    assert answer.status_code in (200, 404), answer.text


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/dead-letters/requeue", b'{"all": true, "bot": "\\ud800"}', 200),
        ("/api/v1/dead-letters/discard", b'{"all": true, "bot": "\\udfff"}', 200),
        ("/api/v1/dead-letters/requeue", b'{"all": true, "bot": "\xed\xa0\x80"}', 200),
        (
            "/api/v1/playground/render",
            b'{"template": "x\\ud800", "sample": "alertmanager_firing"}',
            422,
        ),
        (
            "/api/v1/playground/render",
            b'{"payload": {"a": "\\ud800"}, "source": "generic", "template": "generic"}',
            200,
        ),
        ("/api/v1/alerts/9223372036854775808/acknowledge", b'{"name": "\\ud800"}', 404),
        (f"/api/v1/alerts/{SURROGATE}/silence", b'{"duration": "1h", "name": "\\udfff"}', 404),
        (f"/webhook/{SURROGATE}", b"{}", 404),
    ],
)
def test_surrogates_in_console_bodies_never_answer_5xx(
    gateway: tuple[Running, str], path: str, body: bytes, status: int
) -> None:
    gw, _ = gateway
    answer = gw.client.post(path, content=body, headers=JSON)
    assert answer.status_code == status, answer.text
    if status == 200 and "render" in path:
        assert "\ufffd" in json.dumps(answer.json(), ensure_ascii=False)
