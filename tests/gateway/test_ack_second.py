"""A used 认领 link says who acknowledged first and when; a second person adds their name
without a second group message, unless they choose to tell the group.

Through HTTP against a real gateway (on an injected clock, so the times shown are known) and
the emulator, counting the messages the ``ack_bots`` group receives."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.emulator.conftest import Emu, new_key
from tests.gateway.harness import Running, content_of, emulator_contents, running_gateway, wait_for
from tests.gateway.test_ack_once import _ack_link, _config, _form, _idle, _post
from tests.gateway.test_ack_once import emu as emu  # noqa: F401 - the module's emulator
from wecom_bot.gateway.samples import alertmanager_firing

START = datetime(2026, 11, 25, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _shown(ts: float) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M %Z")


def _group(gw: Running) -> dict[str, object]:
    [group] = gw.client.get("/api/v1/alerts").json()["groups"]
    return group  # type: ignore[no-any-return]


def test_a_second_person_is_added_quietly_or_tells_the_group(emu: Emu, tmp_path: Path) -> None:  # noqa: F811
    alerts_key, acks_key = new_key(), new_key()
    clock = Clock(START)
    config = _config(emu, alerts_key, acks_key, tmp_path, "markdown")
    config = type(config).model_validate(
        {**config.model_dump(mode="json", by_alias=True), "timezone": "Asia/Shanghai"}
    )
    with running_gateway(config, clock=clock) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        token = _ack_link(emu, alerts_key)
        page = gw.client.get(f"/act/{token}").text
        assert "acknowledged by" not in page and ">Acknowledge</button>" in page  # nobody yet

        first = _post(gw.url, token, _form(gw, token, "王五"))
        assert first.status_code == 200 and "<h1>Acknowledged</h1>" in first.text
        wait_for(lambda: len(emulator_contents(emu, acks_key)) == 1, what="the first line")
        said = f"acknowledged by 王五 at {_shown(START)}"

        # The used link says so before anything is posted, and offers to add a name.
        clock.now = START + 600
        page = gw.client.get(f"/act/{token}").text
        assert said in page
        assert "Add my name (no group message)" in page and 'name="post" value="1"' in page

        # A second person: recorded and shown, nothing posted.
        second = _post(gw.url, token, {**_form(gw, token, "赵六"), "post": "0"})
        assert second.status_code == 200, second.text
        assert said in second.text and "Already acknowledged" in second.text
        assert "赵六" in second.text and "nothing is posted again" in second.text
        wait_for(lambda: _idle(gw), what="nothing left to send")
        assert len(emulator_contents(emu, acks_key)) == 1
        page = gw.client.get(f"/act/{token}").text
        assert said in page
        assert re.search(rf"<li>赵六 · {re.escape(_shown(START + 600))}</li>", page)
        assert _group(gw)["acknowledgers"] == [
            {"by": "王五", "at": START},
            {"by": "赵六", "at": START + 600},
        ]

        # A third chooses to tell the group: one more line, saying "also".
        clock.now = START + 900
        third = _post(gw.url, token, {**_form(gw, token, "钱七"), "post": "1"})
        assert third.status_code == 200 and said in third.text
        assert "The group was told you acknowledged too" in third.text
        wait_for(lambda: len(emulator_contents(emu, acks_key)) == 2, what="the chosen line")
        assert content_of(emulator_contents(emu, acks_key)[1]) == (
            "✅ 也认领 by 钱七 (also acknowledged) · HighCPU"
        )

        # From the console: a fourth name, quietly; the first stays first.
        clock.now = START + 1200
        group = _group(gw)
        answer = gw.client.post(f"/api/v1/alerts/{group['id']}/acknowledge", json={"name": "孙八"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["first"] is False and answer.json()["posted"] is False
        assert answer.json()["acknowledgers"][0] == {"by": "王五", "at": START}
        wait_for(lambda: _idle(gw), what="nothing left to send")
        assert len(emulator_contents(emu, acks_key)) == 2
        assert [a["by"] for a in _group(gw)["acknowledgers"]] == ["王五", "赵六", "钱七", "孙八"]
        assert _group(gw)["state"] == "acknowledged"
