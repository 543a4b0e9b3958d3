"""Acknowledging from a link: once per group, inert, and not after the group resolved.

Through the real gateway and an emulator: the same acknowledge link posted 30 times (some at
once) posts one line; a second person is recorded, not posted; a resolved group's link says
so and does nothing; a name and a group label full of markup post one inert line in text,
markdown and markdown_v2 bots.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    Running,
    content_of,
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
)
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.samples import alertmanager_firing, alertmanager_resolved

SECRET = "ack-once-test-secret-0123456789"
LINK = re.compile(r"https?://[^\s)]+/act/[A-Za-z0-9_.-]+")
# Short enough for a group's links (300 bytes for the labels of two links); the name (at most 40
# characters) carries the link.
HOSTILE_VALUE = '<@all><font color="warning">\n✅ 已恢复 RESOLVED'
HOSTILE_NAME = "[x](http://evil) <@all>"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


def _config(emu: Emu, alerts_key: str, acks_key: str, tmp_path: Path, msgtype: str) -> Any:
    return gateway_config(
        emu.url, alerts_key, f"sqlite:///{tmp_path / 'o.db'}", routes=[], rate="50/1s",
        coalesce_after="1h",
        bots={"ops": {"key": alerts_key, "msgtype": "markdown"},
              "acks": {"key": acks_key, "msgtype": msgtype}},
        external_url="http://127.0.0.1:1",
        actions={"secret": SECRET, "alertmanager_url": "http://127.0.0.1:9", "ack_bots": ["acks"]},
    )  # fmt: skip


def _ack_link(emu: Emu, key: str) -> str:
    wait_for(lambda: LINK.search(_texts(emu, key)) is not None, what="a message with links")
    found = LINK.search(_texts(emu, key))
    assert found is not None
    return found.group(0).split("/act/")[1]  # the first link is 认领


def _texts(emu: Emu, key: str) -> str:
    return " ".join(content_of(p) for p in emulator_contents(emu, key))


def _form(gw: Running, token: str, name: str) -> dict[str, str]:
    page = gw.client.get(f"/act/{token}")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return {"csrf": found.group(1), "name": name}


def _post(url: str, token: str, form: dict[str, str]) -> httpx.Response:
    headers = {"Origin": url, "Sec-Fetch-Site": "same-origin"}
    with httpx.Client(base_url=url, timeout=10) as client:
        return client.post(f"/act/{token}", data=form, headers=headers)


def _acks(gw: Running) -> list[dict[str, Any]]:
    # Every acknowledgement is an entry of source "action" (the first one's state follows
    # its posted line: "delivered" once sent).
    entries: list[dict[str, Any]] = gw.client.get(
        "/api/v1/history", params={"source": "action", "limit": 500}
    ).json()["entries"]
    return entries


def _idle(gw: Running) -> bool:
    return gw.metric("wecom_bot_queue_depth") == 0 and gw.metric("wecom_bot_inbox_depth") == 0


def test_thirty_posts_one_line_a_second_name_recorded_not_posted(emu: Emu, tmp_path: Path) -> None:
    alerts_key, acks_key = new_key(), new_key()
    with running_gateway(_config(emu, alerts_key, acks_key, tmp_path, "text")) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        token = _ack_link(emu, alerts_key)
        form = _form(gw, token, "王五")
        answers = [_post(gw.url, token, form) for _ in range(10)]
        with ThreadPoolExecutor(10) as pool:  # and twenty more, ten at a time
            answers += list(pool.map(lambda _: _post(gw.url, token, form), range(20)))
        assert [a.status_code for a in answers] == [200] * 30
        assert sum("<h1>Acknowledged</h1>" in a.text for a in answers) == 1
        assert sum("Already acknowledged" in a.text for a in answers) == 29

        wait_for(lambda: len(emulator_contents(emu, acks_key)) == 1, what="the ack line")
        wait_for(lambda: _idle(gw), what="nothing left to send")
        assert [content_of(p) for p in emulator_contents(emu, acks_key)] == [
            "✅ 已认领 by 王五 · HighCPU"
        ]

        # Someone else acknowledges too: recorded (history, the open group), not posted.
        second = _post(gw.url, token, _form(gw, token, "赵六"))
        assert second.status_code == 200 and "Already acknowledged" in second.text
        wait_for(lambda: _idle(gw), what="nothing left to send")
        assert len(emulator_contents(emu, acks_key)) == 1
        entries = _acks(gw)
        assert len(entries) == 31
        by = {e["detail"]["by"] for e in entries}
        assert by == {"王五", "赵六"}
        assert sum(1 for e in entries if e["detail"]["first"]) == 1
        [group] = gw.client.get("/api/v1/alerts").json()["groups"]
        assert group["acknowledged_by"] == "王五, 赵六"


def test_a_resolved_groups_link_says_so_and_does_nothing(emu: Emu, tmp_path: Path) -> None:
    alerts_key, acks_key = new_key(), new_key()
    with running_gateway(_config(emu, alerts_key, acks_key, tmp_path, "markdown")) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        token = _ack_link(emu, alerts_key)
        form = _form(gw, token, "王五")
        assert gw.post("/alertmanager", alertmanager_resolved()).status_code == 200
        wait_for(lambda: gw.client.get("/api/v1/alerts").json()["groups"] == [],
                 what="the group resolved")  # fmt: skip
        for answer in (gw.client.get(f"/act/{token}"), _post(gw.url, token, form)):
            assert answer.status_code == 409, answer.text
            assert "resolved" in answer.text and "Nothing was changed" in answer.text
            assert "<form" not in answer.text
        wait_for(lambda: _idle(gw), what="nothing left to send")
        assert emulator_contents(emu, acks_key) == []
        assert _acks(gw) == []


@pytest.mark.parametrize("msgtype", ["text", "markdown", "markdown_v2"])
def test_markup_in_the_name_and_labels_posts_one_inert_line(
    emu: Emu, tmp_path: Path, msgtype: str
) -> None:
    alerts_key, acks_key = new_key(), new_key()
    payload = alertmanager_firing()
    payload["groupLabels"] = {"x": HOSTILE_VALUE}
    for item in payload["alerts"]:
        item["labels"]["x"] = HOSTILE_VALUE
    payload["commonLabels"] = {**payload["commonLabels"], "x": HOSTILE_VALUE}
    with running_gateway(_config(emu, alerts_key, acks_key, tmp_path, msgtype)) as gw:
        assert gw.post("/alertmanager", payload).status_code == 200
        token = _ack_link(emu, alerts_key)
        answer = _post(gw.url, token, _form(gw, token, HOSTILE_NAME))
        assert answer.status_code == 200 and "<h1>Acknowledged</h1>" in answer.text
        wait_for(lambda: len(emulator_contents(emu, acks_key)) == 1, what="the ack line")
        [message] = emulator_contents(emu, acks_key)
        assert message["msgtype"] == msgtype
        body = message[msgtype]
        line = body["content"]
        assert line.startswith("✅ 已认领 by ")
        assert "\n" not in line and "\r" not in line and "\u2028" not in line  # one line
        assert "已恢复 RESOLVED" in line  # the label's text is there, inert, on the same line
        for markup in ("<@", "@all", "<font", "</font", "[x]", "](http", "<", ">", "["):
            assert markup not in line, (markup, line)
        assert "＠all" in line and "＜font" in line and "［x］" in line
        assert "mentioned_list" not in body and "mentioned_mobile_list" not in body
