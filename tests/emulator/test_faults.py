"""Fault injection as an httpx client sees it: HTTP errors, timeouts, dropped connections."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from wecom_bot.masking import key_fingerprint

from . import payloads
from .conftest import Emu, errcode, errtext


def inject(emu: Emu, key: str, **fault: Any) -> httpx.Response:
    answer = emu.client.post(f"/api/groups/{key_fingerprint(key)}/faults", json=fault)
    assert answer.status_code == 201, answer.text
    return answer


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_status_fault_for_the_next_n_requests(emu: Emu, key: str, status: int) -> None:
    inject(emu, key, kind="http_status", status=status, count=2)
    for _ in range(2):
        answer = emu.send(key, payloads.text())
        assert answer.status_code == status
        assert "injected" in answer.text
    assert errcode(emu.send(key, payloads.text())) == 0
    group = emu.group(key)
    assert group["accepted"] == 1 and group["faults_injected"] == 2
    assert len(emu.entries(key)) == 1


def test_delay_beyond_the_client_timeout_is_a_timeout(emu: Emu, key: str) -> None:
    inject(emu, key, kind="delay", delay_ms=600)
    with httpx.Client(base_url=emu.url, timeout=0.2) as impatient:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post("/cgi-bin/webhook/send", params={"key": key}, json=payloads.text("late"))
        assert time.monotonic() - started < 0.5
    # The server went on after the delay, as a real one would: the message arrives anyway.
    deadline = time.monotonic() + 3
    while not emu.entries(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    [entry] = emu.entries(key)
    assert entry["status"] == "accepted" and entry["payload"]["text"]["content"] == "late"


def test_delay_within_the_timeout_only_slows_the_answer(emu: Emu, key: str) -> None:
    inject(emu, key, kind="delay", delay_ms=150)
    started = time.monotonic()
    assert errcode(emu.send(key, payloads.text())) == 0
    assert time.monotonic() - started >= 0.15


def test_drop_closes_the_connection_without_an_answer(emu: Emu, key: str) -> None:
    inject(emu, key, kind="drop", count=2)
    for _ in range(2):
        with httpx.Client(base_url=emu.url, timeout=5) as client:
            with pytest.raises(httpx.TransportError) as caught:
                client.post("/cgi-bin/webhook/send", params={"key": key}, json=payloads.text())
            assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)
    assert errcode(emu.send(key, payloads.text())) == 0
    assert len(emu.entries(key)) == 1
    assert emu.group(key)["faults_injected"] == 2


@pytest.mark.parametrize(
    ("fault", "code", "text"),
    [
        ({"errcode": 45009}, 45009, "api freq out of limit"),
        ({"errcode": -1}, -1, "system busy"),
        ({"errcode": 93000}, 93000, "invalid webhook url"),
        ({"errcode": 12345, "errmsg": "made up"}, 12345, "made up"),
    ],
)
def test_errcode_fault_answers_that_errcode(
    emu: Emu, key: str, fault: dict[str, Any], code: int, text: str
) -> None:
    inject(emu, key, kind="errcode", **fault)
    answer = emu.send(key, payloads.text())
    assert errcode(answer) == code
    assert errtext(answer) == text
    assert errcode(emu.send(key, payloads.text())) == 0
    injected, accepted = emu.entries(key)
    assert injected["injected"] is True and injected["errcode"] == code
    assert accepted["injected"] is False
    assert emu.group(key)["rate_limited"] == 0


def test_faults_apply_in_the_order_queued_and_to_uploads_too(emu: Emu, key: str) -> None:
    inject(emu, key, kind="http_status", status=502)
    inject(emu, key, kind="errcode", errcode=-1, count=2)
    pending = emu.client.get(f"/api/groups/{key_fingerprint(key)}/faults").json()["faults"]
    assert pending == [
        {"kind": "http_status", "status": 502, "count": 1},
        {"kind": "errcode", "errcode": -1, "count": 2},
    ]
    assert emu.upload(key, b"0123456789").status_code == 502
    assert errcode(emu.upload(key, b"0123456789")) == -1
    assert errcode(emu.send(key, payloads.text())) == -1
    assert errcode(emu.upload(key, b"0123456789")) == 0


def test_faults_can_be_cleared(emu: Emu, key: str) -> None:
    inject(emu, key, kind="http_status", count=5)
    assert emu.client.delete(f"/api/groups/{key_fingerprint(key)}/faults").status_code == 200
    assert errcode(emu.send(key, payloads.text())) == 0


@pytest.mark.parametrize(("body", "expected"), [("html", "<title>"), ("empty", "")])
def test_not_json_fault_answers_200_with_a_page_and_processes_nothing(
    emu: Emu, key: str, body: str, expected: str
) -> None:
    inject(emu, key, kind="not_json", body=body, count=2)
    for _ in range(2):
        answer = emu.send(key, payloads.text())
        assert answer.status_code == 200
        assert (expected in answer.text) if expected else answer.content == b""
        with pytest.raises(ValueError):
            answer.json()
    assert errcode(emu.send(key, payloads.text())) == 0
    group = emu.group(key)
    assert group["accepted"] == 1 and group["faults_injected"] == 2


def test_faults_of_one_group_leave_others_alone(emu: Emu, key: str) -> None:
    from .conftest import new_key

    inject(emu, key, kind="http_status", count=3)
    assert errcode(emu.send(new_key(), payloads.text())) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "explode"},
        {},
        {"kind": "http_status", "status": 200},
        {"kind": "http_status", "status": "500"},
        {"kind": "delay"},
        {"kind": "delay", "delay_ms": -5},
        {"kind": "errcode", "errcode": 0},
        {"kind": "errcode", "errcode": True},
        {"kind": "drop", "count": 0},
        {"kind": "drop", "status": 500},
        {"kind": "not_json", "body": "xml"},
        {"kind": "not_json", "status": 200},
        [1, 2],
    ],
)
def test_bad_fault_descriptions_are_400(emu: Emu, key: str, body: Any) -> None:
    answer = emu.client.post(f"/api/groups/{key_fingerprint(key)}/faults", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_fault_endpoint_refuses_non_json_and_bad_group_ids(emu: Emu, key: str) -> None:
    path = f"/api/groups/{key_fingerprint(key)}/faults"
    assert emu.client.post(path, content=b"{nope").status_code == 400
    assert emu.client.post(path, content=b"\xff\xfe").status_code == 400
    assert emu.client.post("/api/groups/NOT-AN-ID/faults", json={"kind": "drop"}).status_code == 400
