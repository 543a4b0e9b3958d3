"""Every notification the journal accepted ends delivered or a visible dead letter, never stuck.

Through the real HTTP app, an emulator and a real store (SQLite, and Redis from
``redis-server``): notifications made of random labels and annotations (sizes up to 20 KiB,
combining marks, right-to-left text, emoji, NUL, line breaks, lone surrogates as JSON allows
them), random numbers of alerts and group labels; and a group label of 280 bytes, which once made
link signing raise on every attempt and left its journal record to be retried forever.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import emulator_contents, gateway_config, running_gateway, wait_for
from tests.redis_server import redis_server
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.intake.inbox import INBOX_BOT

SECRET = "journal-fate-test-secret-0123456789"
ENDED = {"delivered", "dead", "failed", "skipped"}
"""History states a notification ends in: sent, a dead letter of its bot, a dead letter of the
journal (``failed``), or no route sends it."""


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.db'}"
        return
    with redis_server(tmp_path) as url:
        yield url


def _config(emu: Emu, key: str, store: str) -> Any:
    # Action links on: signing them is part of rendering every firing Alertmanager group.
    return gateway_config(
        emu.url, key, store, rate="50/1s", coalesce_after="1h",
        external_url="http://127.0.0.1:1",
        actions={"secret": SECRET, "alertmanager_url": "http://127.0.0.1:9"},
    )  # fmt: skip


# --------------------------------------------------------------------------- random text

_PIECES = [
    "abc", "node-1", "数据库", "延迟", "e\u0301\u0301\u0301", "\u0345" * 8,  # combining marks
    "שלום", "مرحبا", "\u202eevil\u202c", "\u2067isolate\u2069",  # right to left, overrides
    "🔥", "👩\u200d👩\u200d👧\u200d👦", "🇨🇳", "\x00", "\n", "\r\n", "\u2028", "\u0085", "\t",
    "\ud800", "\udfff", "\udbff", "<@all>", '<font color="warning">', "[x](http://evil)",
    "**", "# ", "> ", "`", "\\", "&amp;", "%s", "{{ 7 * 7 }}", " ", "\ufeff",
]  # fmt: skip
_SIZES = [0, 1, 8, 40, 255, 256, 280, 299, 300, 1024, 4096, 16 * 1024, 20 * 1024]


def _text(rng: random.Random) -> str:
    """Random text of a random size (UTF-8 bytes, roughly: up to 20 KiB)."""
    size = rng.choice(_SIZES)
    out: list[str] = []
    length = 0
    while length < size:
        piece = rng.choice(_PIECES)
        out.append(piece)
        length += len(piece.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _labels(rng: random.Random, most: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    for _ in range(rng.randint(0, most)):
        name = _text(rng) if rng.random() < 0.4 else rng.choice(["team", "instance", "job", "x"])
        labels[name] = _text(rng)
    return labels


def random_notification(rng: random.Random, n: int) -> dict[str, Any]:
    """An Alertmanager notification of random content (distinct by ``n``)."""
    group = {"alertname": f"Fuzz{n}", **_labels(rng, 3)}
    status = "firing" if rng.random() < 0.85 else "resolved"
    alerts = []
    for i in range(rng.choice([1, 1, 2, 3, 7, 25])):
        labels = {**group, **_labels(rng, 5), "n": str(i)}
        alerts.append({
            "status": status, "labels": labels, "annotations": _labels(rng, 3),
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T11:00:00Z",
            "generatorURL": rng.choice(["", "http://prom.example/graph", _text(rng)]),
            "fingerprint": f"fuzz-{n}-{i}",
        })  # fmt: skip
    return {
        "version": "4", "status": status, "receiver": _text(rng) or "wecom",
        "groupKey": f"fuzz-{n}", "groupLabels": group,
        "commonLabels": group, "commonAnnotations": _labels(rng, 2),
        "externalURL": rng.choice(["http://am.example", "", _text(rng)]),
        "truncatedAlerts": rng.choice([0, 0, 3]), "alerts": alerts,
    }  # fmt: skip


def _post(gw: Any, payload: dict[str, Any]) -> httpx.Response:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as JSON allows.
    body = json.dumps(payload, ensure_ascii=True).encode()
    return gw.client.post(
        "/alertmanager", content=body, headers={"Content-Type": "application/json"}
    )


def _states(gw: Any, ids: list[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for nid in ids:
        found = gw.client.get(f"/api/v1/history/{nid}")
        states[nid] = found.json()["state"] if found.status_code == 200 else "none"
    return states


def _journal_left(gw: Any) -> float:
    """Journal records not yet settled or dead-lettered (pending or leased)."""
    return float(gw.metric("wecom_bot_inbox_depth"))


# --------------------------------------------------------------------------- the tests


def test_random_notifications_all_end_delivered_or_dead_lettered(
    emu: Emu, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    key = new_key()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with running_gateway(_config(emu, key, store_url)) as gw:
        accepted: list[str] = []
        refused = 0
        for n in range(40):
            answer = _post(gw, random_notification(rng, n))
            assert answer.status_code < 500, (seed, answer.text)
            if answer.status_code == 200:
                accepted.append(answer.json()["notification_id"])
            else:
                refused += 1
        assert len(accepted) >= 30, (seed, refused)  # what fails validation is a 4xx, not 200

        def settled() -> bool:
            return _journal_left(gw) == 0 and set(_states(gw, accepted).values()) <= ENDED

        wait_for(settled, timeout=180, what=f"every accepted notification ended (seed {seed})")
        states = _states(gw, accepted)
        failed = [nid for nid, state in states.items() if state == "failed"]
        listed = gw.client.get("/api/v1/dead-letters", params={"bot": INBOX_BOT}).json()
        inbox_dead = listed["dead_letters"]
        # A journal dead letter is in the console's dead letters with its reason, and in
        # history as failed; the two name the same notifications.
        assert listed["total"] == len(failed), (seed, states)
        assert all(d["last_error"] for d in inbox_dead)
        assert gw.metric("wecom_bot_inbox_dead_letters") == len(failed)
        delivered = [nid for nid, state in states.items() if state == "delivered"]
        assert delivered, (seed, states)  # random content is mostly deliverable
        assert emulator_contents(emu, key)
    assert key not in caplog.text


def test_a_280_byte_group_label_is_delivered_or_dead_lettered_never_stuck(
    emu: Emu, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wecom_bot.gateway.intake.inbox")
    key = new_key()
    payload = random_notification(random.Random(1), 0)
    value = "v" * 280
    # Within the links' 300-byte budget, past the 255 bytes a link can carry per value.
    payload.update(status="firing", groupLabels={"cluster": value}, externalURL="http://am.example")
    payload["commonLabels"] = {"alertname": "LongGroup", "cluster": value}
    for item in payload["alerts"]:
        item.update(status="firing", endsAt="0001-01-01T00:00:00Z")
        item["labels"] = {**item["labels"], **payload["commonLabels"]}
    with running_gateway(_config(emu, key, store_url)) as gw:
        answer = _post(gw, payload)
        assert answer.status_code == 200, answer.text
        nid = answer.json()["notification_id"]
        fine = _post(gw, random_notification(random.Random(2), 1) | {"groupLabels": {"a": "b"}})
        assert fine.status_code == 200

        def ended() -> bool:
            return _journal_left(gw) == 0 and _states(gw, [nid])[nid] in ENDED

        wait_for(ended, timeout=60, what="the long-labelled notification to end")
        state = _states(gw, [nid])[nid]
        entry = gw.client.get(f"/api/v1/history/{nid}").json()
        if state == "failed":
            # A dead letter with its reason, in the console and in history, logged once.
            dead = gw.client.get("/api/v1/dead-letters").json()["dead_letters"]
            [letter] = [d for d in dead if d["bot"] == INBOX_BOT]
            assert letter["last_error"].startswith("could not render the notification: ")
            assert entry["detail"]["error"] == letter["last_error"]
            assert "LongGroup" in entry["title"]
            assert [e["kind"] for e in entry["events"]] == ["dead_lettered"]
            lines = [r for r in caplog.records if "is a dead letter" in r.getMessage()]
            assert len(lines) == 1 and lines[0].levelno == logging.ERROR
            assert lines[0].exc_info is None  # the reason, not a traceback
        else:
            assert state == "delivered", entry
            assert any("LongGroup" in str(p) for p in emulator_contents(emu, key))
        # The journal went on: the other notification is not held behind it.
        other = fine.json()["notification_id"]
        wait_for(lambda: _states(gw, [other])[other] in ENDED, what="the other notification")
        # ?wait=true answers what the journal would do: a 422 naming the reason, never a 500.
        waited = gw.client.post(
            "/alertmanager?wait=true",
            content=json.dumps({**payload, "groupKey": "again"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        if state == "failed":
            assert waited.status_code == 422, waited.text
            assert waited.json()["reason"] == "render_failed"
        else:
            assert waited.status_code == 200, waited.text


def test_a_bug_while_rendering_one_notification_makes_it_a_dead_letter_logged_once(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Whatever a bug raises while one notification is rendered ends the same way. The bug is
    # put where one was found: writing the action links (the renderer's ``actions``), here
    # for one alert name only, with a key in its message.
    caplog.set_level(logging.INFO)
    key = new_key()
    store = f"sqlite:///{tmp_path / 'outbox.db'}"
    with running_gateway(_config(emu, key, store)) as gw:
        runtime = gw.app.state.gateway.runtime
        write_links = runtime.renderer.actions

        def buggy(notification: Any) -> Any:
            if notification.common_labels.get("alertname") == "Buggy":
                raise KeyError(f"no link at key={key} for {notification.receiver}")
            return write_links(notification)

        runtime.renderer.actions = buggy
        buggy_payload = random_notification(random.Random(3), 7)
        buggy_payload.update(status="firing", commonLabels={"alertname": "Buggy"})
        answer = _post(gw, buggy_payload)
        assert answer.status_code == 200, answer.text
        nid = answer.json()["notification_id"]
        fine = _post(gw, random_notification(random.Random(4), 8))
        assert fine.status_code == 200
        other = fine.json()["notification_id"]

        wait_for(lambda: _states(gw, [nid, other]) == {nid: "failed", other: "delivered"},
                 timeout=30, what="the buggy one dead-lettered, the other delivered")  # fmt: skip
        assert _journal_left(gw) == 0
        letters = gw.client.get("/api/v1/dead-letters", params={"bot": INBOX_BOT}).json()
        [letter] = letters["dead_letters"]
        reason = letter["last_error"]
        assert reason.startswith("could not render the notification: KeyError: ")
        assert key not in reason and f"key={key[:4]}…{key[-4:]}" in reason  # masked
        assert "bytes more)" in reason  # the receiver's 20 KiB, cut
        entry = gw.client.get(f"/api/v1/history/{nid}").json()
        assert entry["state"] == "failed" and entry["detail"]["error"] == reason
        assert gw.metric("wecom_bot_inbox_dead_letters") == 1

        # ?wait=true: the same failure is answered at once, 422 with the reason, nothing stored.
        again = {**buggy_payload, "groupKey": "buggy-again"}
        waited = gw.client.post(
            "/alertmanager?wait=true", content=json.dumps(again).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert waited.status_code == 422, waited.text
        assert waited.json()["reason"] == "render_failed" and "KeyError" in waited.json()["error"]
        assert key not in waited.text
        assert letters["total"] == 1

    lines = [r for r in caplog.records if "is a dead letter" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info is not None]  # no traceback anywhere
    assert key not in caplog.text
