"""The inspection API: groups and counters, message pages, delete/reset, Server-Sent Events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from wecom_bot.masking import key_fingerprint, mask_key

from . import payloads
from .conftest import Emu, errcode, new_key


def read_events(lines: Iterator[str], count: int) -> list[tuple[str, dict[str, Any], str | None]]:
    """Read ``count`` SSE events (kind, data, id), skipping comments and the retry hint."""
    events: list[tuple[str, dict[str, Any], str | None]] = []
    kind, data, event_id = "message", "", None
    for line in lines:
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line == "" and data:
            events.append((kind, json.loads(data), event_id))
            kind, data, event_id = "message", "", None
            if len(events) == count:
                break
    return events


def test_groups_show_masked_keys_and_counters(make_emu: Any) -> None:
    key = new_key()
    with make_emu(rate=None) as emu:
        errcode(emu.send(key, payloads.text()))
        errcode(emu.send(key, payloads.text()))
        errcode(emu.send(key, payloads.text("")))
        errcode(emu.send(key, {"msgtype": "nope"}))
        errcode(emu.send(key, {"msgtype": "nope"}))
        [group] = emu.client.get("/api/groups").json()["groups"]
        assert group["id"] == key_fingerprint(key)
        assert group["masked_key"] == mask_key(key)
        assert group["accepted"] == 2
        assert group["rejected"] == {"40008": 2, "44004": 1} and group["rejected_total"] == 3
        assert group["rate_limited"] == 0
        assert group["last_message_at"] <= group["last_activity_at"]
        assert key not in json.dumps(group)


def test_messages_pages_with_since_id_and_limit(emu: Emu, key: str) -> None:
    for i in range(5):
        errcode(emu.send(key, payloads.text(f"m{i}")))
    errcode(emu.send(key, payloads.text("")))
    gid = key_fingerprint(key)
    first = emu.client.get(f"/api/groups/{gid}/messages", params={"limit": 2}).json()
    assert [m["payload"]["text"]["content"] for m in first["messages"]] == ["m0", "m1"]
    assert first["more"] is True
    rest = emu.client.get(
        f"/api/groups/{gid}/messages", params={"since_id": first["next_since_id"]}
    ).json()["messages"]
    assert [m["status"] for m in rest] == ["accepted"] * 3 + ["rejected"]
    rejected = rest[-1]
    assert rejected["errcode"] == 44004 and rejected["errmsg"].startswith("empty content, hint:")
    for field in ("id", "received_at", "msgtype", "payload", "bytes", "limit", "errcode"):
        assert field in rejected
    ids = [m["id"] for m in first["messages"] + rest]
    assert ids == sorted(ids) and len(set(ids)) == 6


def test_bad_query_parameters_are_400_not_422(emu: Emu, key: str) -> None:
    errcode(emu.send(key, payloads.text()))
    gid = key_fingerprint(key)
    for params in ({"since_id": "abc"}, {"since_id": -1}, {"limit": 0}, {"limit": "x"}):
        answer = emu.client.get(f"/api/groups/{gid}/messages", params=params)
        assert answer.status_code == 400, params
        assert answer.json()["error"] == "invalid request"
    assert emu.client.get("/api/events", params={"since_id": "x"}).status_code == 400


def test_unknown_group_is_404(emu: Emu) -> None:
    assert emu.client.get("/api/groups/0000dead/messages").status_code == 404
    assert emu.client.get("/api/groups/0000dead").status_code == 404
    assert emu.client.delete("/api/groups/0000dead").status_code == 404
    assert emu.client.get("/api/groups/0000dead/media").status_code == 404


def test_delete_group_and_reset(make_emu: Any) -> None:
    first, second = new_key(), new_key()
    with make_emu(rate=None) as emu:
        errcode(emu.send(first, payloads.text()))
        errcode(emu.send(second, payloads.text()))
        media_id = emu.media_id(first, b"0123456789")
        assert emu.client.delete(f"/api/groups/{key_fingerprint(first)}").status_code == 200
        groups = emu.client.get("/api/groups").json()["groups"]
        assert [g["id"] for g in groups] == [key_fingerprint(second)]
        assert emu.client.get(f"/api/media/{media_id}").status_code == 404
        assert emu.client.post("/api/reset").json() == {"reset": True}
        assert emu.client.get("/api/groups").json()["groups"] == []
        assert emu.client.get("/api/messages").json()["messages"] == []
        errcode(emu.send(first, payloads.text()))
        [entry] = emu.entries(first)
        assert entry["id"] == 3  # ids 1 and 2 are not reused, so event ids stay unique


def test_events_stream_one_event_per_stored_entry(emu: Emu, key: str) -> None:
    with httpx.Client(base_url=emu.url, timeout=5) as client:
        with client.stream("GET", "/api/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            errcode(emu.send(key, payloads.text("one")))
            errcode(emu.send(key, payloads.text("")))
            events = read_events(stream.iter_lines(), 2)
    (kind1, data1, id1), (kind2, data2, id2) = events
    assert kind1 == kind2 == "entry"
    assert data1["group_id"] == data2["group_id"] == key_fingerprint(key)
    assert data1["payload"]["text"]["content"] == "one" and data1["status"] == "accepted"
    assert data2["status"] == "rejected" and data2["errcode"] == 44004
    assert id1 is not None and id2 is not None and int(id2) == int(id1) + 1 == data2["id"]


def test_events_resume_after_last_event_id(emu: Emu, key: str) -> None:
    for i in range(3):
        errcode(emu.send(key, payloads.text(f"r{i}")))
    first_id = emu.entries(key)[0]["id"]
    with httpx.Client(base_url=emu.url, timeout=5) as client:
        headers = {"Last-Event-ID": str(first_id)}
        with client.stream("GET", "/api/events", headers=headers) as stream:
            events = read_events(stream.iter_lines(), 2)
    assert [d["payload"]["text"]["content"] for _, d, _ in events] == ["r1", "r2"]


def test_events_report_clearing(emu: Emu, key: str) -> None:
    errcode(emu.send(key, payloads.text()))
    with httpx.Client(base_url=emu.url, timeout=5) as client:
        with client.stream("GET", "/api/events") as stream:
            emu.client.delete(f"/api/groups/{key_fingerprint(key)}")
            [(kind, data, event_id)] = read_events(stream.iter_lines(), 1)
    assert (kind, data, event_id) == ("cleared", {"group_id": key_fingerprint(key)}, None)


def test_streams_end_when_the_emulator_closes_them(make_emu: Any) -> None:
    with make_emu(rate=None, sse_heartbeat_seconds=0.05) as emu:
        lines: list[str] = []
        done = threading.Event()

        def follow() -> None:
            with httpx.Client(base_url=emu.url, timeout=5) as client:
                with client.stream("GET", "/api/events") as stream:
                    lines.extend(stream.iter_lines())
            done.set()

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        time.sleep(0.3)
        assert not done.is_set()
        emu.app.state.emulator.close_streams()
        assert done.wait(2), "the stream did not end"
        assert ": keep-alive" in lines  # idle streams send heartbeats


def test_streams_end_by_themselves_after_their_maximum_age(make_emu: Any) -> None:
    with make_emu(rate=None, sse_max_seconds=0.3) as emu:
        started = time.monotonic()
        with httpx.Client(base_url=emu.url, timeout=5) as client:
            with client.stream("GET", "/api/events") as stream:
                list(stream.iter_lines())
        assert 0.25 < time.monotonic() - started < 2


def test_page_is_served_at_the_root(emu: Emu) -> None:
    answer = emu.client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")


def test_openapi_describes_the_webhook_paths(emu: Emu) -> None:
    spec = emu.client.get("/openapi.json").json()
    assert "/cgi-bin/webhook/send" in spec["paths"]
    assert "/cgi-bin/webhook/upload_media" in spec["paths"]
    assert "/api/groups/{group_id}/faults" in spec["paths"]
