"""Silences go to configured Alertmanagers only, over real HTTP: an alert whose ``externalURL``
names a server that is not configured (a loopback listener counting requests) cannot make the
gateway request it, from a link or the console; a configured one gets the silence with its
credentials, and what it answers stays off the page; the playground's links act on nothing;
a group label too long for a link costs the links, not the alert."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.alertmanager import alertmanagers
from tests.gateway.console.support import BASIC, Console, console_config, secrets_of
from tests.gateway.harness import (
    GatewayProcess,
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
    write_config,
)
from tests.gateway.loopback import Answer, loopback
from tests.redis_server import free_port
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.actions.tokens import csrf_token
from wecom_bot.gateway.samples import alertmanager_firing

SECRET = "0123456789abcdef-upstream-secret"
PASSWORD = "pw-4-am-Zq81"
TOKEN = "am-bearer-7Hc2e"
SILENCED = b'{"silenceID": "sil-1"}'
LINK = re.compile(r"https?://[^\s)]+/act/[A-Za-z0-9_.-]+")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(40, 1.0))) as emulator:
        yield emulator


def _alert(name: str, external_url: str) -> dict[str, Any]:
    payload = alertmanager_firing()
    payload["groupLabels"] = {"alertname": name}
    payload["commonLabels"] = {**payload["commonLabels"], "alertname": name}
    for alert in payload["alerts"]:
        alert["labels"]["alertname"] = name
    payload["externalURL"] = external_url
    return payload


def _links_of(emu: Emu, key: str, name: str) -> list[str]:
    """The action tokens (ack, silence, details) of the first message naming ``name``."""
    for payload in emulator_contents(emu, key):
        content = str(payload[payload["msgtype"]]["content"])
        if name in content:
            return [m.group(0).rsplit("/", 1)[1] for m in LINK.finditer(content)]
    return []


def _wait_links(emu: Emu, key: str, name: str) -> list[str]:
    wait_for(lambda: len(_links_of(emu, key, name)) >= 2, what=f"the links of {name}")
    return _links_of(emu, key, name)


SAME = {"Sec-Fetch-Site": "same-origin"}


def test_an_external_url_not_configured_is_never_requested(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    caplog.set_level(logging.INFO)
    with loopback() as sink:
        config = console_config(
            emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[],
            external_url="http://127.0.0.1:1",
            alertmanagers=[{"name": "main", "url": "http://127.0.0.1:9"}],
            actions={"secret": SECRET, "alertmanager_url": f"http://ops:{PASSWORD}@127.0.0.1:8"},
            storm_burst=50,  # every notification its own message, with its links
        )  # fmt: skip
        hostport = sink.url.removeprefix("http://")
        port = hostport.rsplit(":", 1)[1]
        # The listener under every spelling a sender might try, the configured address too.
        targets = {
            "Plain": sink.url,
            "Reload": f"http://admin:{PASSWORD}@{hostport}/-/reload",
            "Webhook": sink.url + "/webhook/deploy",
            "Userinfo": f"http://127.0.0.1:9@{hostport}/",
            "Mapped": f"http://[::ffff:127.0.0.1]:{port}/",
            "Short": f"http://127.1:{port}/",
            "Hex": f"http://0x7f000001:{port}/",
            "Dots": f"{sink.url}/../api/v2/silences",
        }
        with running_gateway(config) as gw:
            console = Console(gw, [*secrets_of(key), PASSWORD])
            targets["SelfHook"] = gw.url + "/webhook/deploy"  # the gateway's own endpoints
            targets["SelfReload"] = gw.url + "/-/reload"
            for name, url in targets.items():
                for _ in range(2):  # the same Alertmanager again: logged once
                    answer = gw.post("/alertmanager", _alert(name, url),
                                     headers={"Authorization": BASIC})  # fmt: skip
                    assert answer.status_code == 200
            groups = {}
            wait_for(lambda: len(console.json("/api/v1/alerts")["groups"]) == len(targets),
                     what="a group per target")  # fmt: skip
            for group in console.json("/api/v1/alerts")["groups"]:
                groups[group["name"]] = group
                assert group["can_silence"] is False
            for name in targets:
                ack, silence, details = _wait_links(emu, key, name)
                page = gw.client.get(f"/act/{silence}")
                assert page.status_code == 409 and "not configured" in page.text, page.text
                form = {"csrf": csrf_token(silence, SECRET.encode()), "name": "x", "d": "1h"}
                answer = gw.client.post(f"/act/{silence}", data=form, headers=SAME)
                assert answer.status_code == 409 and "not configured" in answer.text
                assert "Nothing was changed" in answer.text
                shown = gw.client.get(f"/act/{details}").text
                assert "127.0.0.1:" + sink.url.rsplit(":", 1)[1] not in shown
                assert "/#/alerts" not in shown
                refused = console.post(f"/api/v1/alerts/{groups[name]['id']}/silence",
                                       {"name": "ops", "duration": "1h"})  # fmt: skip
                assert refused.status_code == 409 and "not configured" in refused.text
                # Acknowledging needs no Alertmanager: it still works.
                acked = gw.client.post(
                    f"/act/{ack}", data={"csrf": csrf_token(ack, SECRET.encode()), "name": "y"},
                    headers=SAME,
                )  # fmt: skip
                assert acked.status_code == 200, acked.text
            shown_config = console.get("/api/v1/config").text
            assert "ops:***@127.0.0.1:8" in shown_config
            assert console.json("/api/v1/config")["last_reload"]["message"] == "started"
            sources = {e["source"] for e in console.json("/api/v1/history")["entries"]}
            assert sources == {"alertmanager", "action"}, sources
        assert sink.requests == 0
    warnings = [r for r in caplog.records if "is not configured" in r.getMessage()]
    assert len(warnings) == len(targets), [r.getMessage() for r in warnings]
    assert PASSWORD not in caplog.text and "admin:***@" in caplog.text


def test_a_configured_alertmanager_gets_the_silence_with_its_credentials_and_nothing_it_says(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("WB_TEST_AM_TOKEN", TOKEN)
    monkeypatch.setenv("WB_TEST_AM_PASSWORD", PASSWORD)
    with loopback(Answer(200, SILENCED)) as am, loopback() as elsewhere:
        public = "https://alerts.example.com/am"
        config = gateway_config(
            emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[],
            external_url="http://127.0.0.1:1",
            alertmanagers=[
                {"name": "bearer", "url": am.url + "/b", "external_urls": [public],
                 "bearer_token_env": "WB_TEST_AM_TOKEN"},
                {"name": "basic", "url": am.url + "/basic", "username": "gw",
                 "password_env": "WB_TEST_AM_PASSWORD"},
            ],
            actions={"secret": SECRET}, storm_burst=50,
        )  # fmt: skip
        with running_gateway(config) as gw:

            def silence(name: str, external_url: str) -> httpx.Response:
                assert gw.post("/alertmanager", _alert(name, external_url)).status_code == 200
                token = _wait_links(emu, key, name)[1]
                page = gw.client.get(f"/act/{token}")
                assert page.status_code == 200 and "<form" in page.text
                form = {"csrf": csrf_token(token, SECRET.encode()), "name": "王五", "d": "4h"}
                return gw.client.post(f"/act/{token}", data=form, headers=SAME)

            # Refused, with a body meant to be shown: the page gives the status only.
            am.answer = Answer(400, b"bad matcher <script>UPSTREAM-SAYS</script> " * 50)
            answer = silence("Refused", public + "/")
            assert answer.status_code == 502
            assert "Alertmanager refused the silence (HTTP 400)" in answer.text
            assert "UPSTREAM-SAYS" not in answer.text and "bad matcher" not in answer.text
            method, path, headers = am.seen[-1]
            assert (method, path) == ("POST", "/b/api/v2/silences")
            assert headers["Authorization"] == f"Bearer {TOKEN}"
            # A redirect is not followed.
            am.answer = Answer(307, headers={"Location": elsewhere.url + "/api/v2/silences"})
            answer = silence("Moved", public)
            assert answer.status_code == 502 and "(HTTP 307)" in answer.text
            assert elsewhere.requests == 0
            # Accepted, with basic auth: the group is silenced.
            am.answer = Answer(200, b'{"silenceID": "sil-42"}')
            answer = silence("Kept", am.url + "/basic/")
            assert answer.status_code == 200 and "sil-42" in answer.text, answer.text
            method, path, headers = am.seen[-1]
            assert path == "/basic/api/v2/silences"
            assert headers["Authorization"] == "Basic " + base64.b64encode(
                f"gw:{PASSWORD}".encode()
            ).decode("ascii")
            assert am.requests == 3
            history = gw.client.get("/api/v1/history").text
        assert elsewhere.requests == 0
    assert "UPSTREAM-SAYS" in caplog.text  # the log keeps what it said, cut
    assert TOKEN not in caplog.text and PASSWORD not in caplog.text
    assert TOKEN not in history and PASSWORD not in history


def test_the_playground_hands_out_links_that_act_on_nothing(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = console_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[],
        external_url="http://127.0.0.1:1", actions={"secret": SECRET},
        alertmanagers=[{"name": "main", "url": "http://127.0.0.1:9"}], storm_burst=50,
    )  # fmt: skip
    with running_gateway(config) as gw:
        console = Console(gw, secrets_of(key))
        # A real group with the same labels, and its real links.
        payload = _alert("RealGroup", "http://127.0.0.1:9")
        assert (
            gw.post("/alertmanager", payload, headers={"Authorization": BASIC}).status_code == 200
        )
        real = _wait_links(emu, key, "RealGroup")
        rendered = console.post("/api/v1/playground/render",
                                {"payload": payload, "source": "alertmanager"})  # fmt: skip
        assert rendered.status_code == 200, rendered.text
        content = json.dumps(rendered.json()["parts"])
        previews = sorted({m.rsplit("/", 1)[1] for m in LINK.findall(content)})
        # As long as the real links (the playground measures sizes), yet not one of them.
        assert len(previews) == 3 and sorted(map(len, previews)) == sorted(map(len, real))
        assert not set(previews) & set(real)
        for token in previews:
            form = {"csrf": csrf_token(token, SECRET.encode()), "name": "x", "d": "1h"}
            for answer in (
                gw.client.get(f"/act/{token}"),
                gw.client.post(f"/act/{token}", headers=SAME, data=form),
            ):
                assert answer.status_code == 404, answer.text
                assert "console: it does nothing" in answer.text
        acks = console.json("/api/v1/history", params={"state": "acknowledged"})["entries"]
        assert acks == []
        # A token signed with neither key is still called forged, not a preview.
        body, _, mac = previews[0].partition(".")
        forged = gw.client.get(f"/act/{body}.{mac[::-1]}")
        assert forged.status_code == 400 and "preview" not in forged.text


def test_a_group_label_too_long_for_a_link_costs_the_links_not_the_alert(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    caplog.set_level(logging.INFO)
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[],
        external_url="http://127.0.0.1:1", actions={"secret": SECRET},
    )  # fmt: skip
    with running_gateway(config) as gw:
        for size in (256, 280, 299):
            payload = _alert(f"Long{size}", "")
            payload["groupLabels"]["cluster"] = "c" * size
            assert gw.post("/alertmanager", payload).status_code == 200
        wait_for(lambda: sum(f"Long{s}" in json.dumps(p) for s in (256, 280, 299)
                             for p in emulator_contents(emu, key)) >= 3,
                 what="the three messages")  # fmt: skip
        assert "/act/" not in json.dumps(emulator_contents(emu, key))
    assert "Traceback" not in caplog.text and "ERROR" not in caplog.text


@pytest.mark.alertmanager
@pytest.mark.slow
def test_a_configured_real_alertmanager_gets_its_silence_and_an_unknown_one_nothing(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    with alertmanagers(tmp_path) as start, loopback() as sink:
        am = start(f"{gateway_url}/alertmanager")
        config = gateway_config(
            emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[], external_url=gateway_url,
            alertmanagers=[{"name": "main", "url": am}], actions={"secret": SECRET},
        )  # fmt: skip
        gateway = GatewayProcess(write_config(tmp_path / "gw.yaml", config), port)
        gateway.start()
        try:
            alert = {"labels": {"alertname": "RealOne", "severity": "critical"},
                     "annotations": {"summary": "through a real Alertmanager"}}  # fmt: skip
            assert httpx.post(am + "/api/v2/alerts", json=[alert], timeout=5).status_code == 200
            silence = _wait_links(emu, key, "RealOne")[1]
            client = httpx.Client(base_url=gateway_url, timeout=10)
            page = client.get(f"/act/{silence}")
            form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text)[1],  # type: ignore[index]
                    "name": "王五", "d": "1h"}  # fmt: skip
            answer = client.post(f"/act/{silence}", data=form, headers=SAME)
            assert answer.status_code == 200 and "Silenced" in answer.text, answer.text
            [kept] = httpx.get(am + "/api/v2/silences", timeout=5).json()
            assert kept["createdBy"] == "王五" and kept["matchers"] == [
                {"name": "alertname", "value": "RealOne", "isRegex": False, "isEqual": True}
            ]
            # The same gateway, an alert claiming to come from elsewhere: nothing goes there.
            posted = client.post("/alertmanager", json=_alert("Claimed", sink.url))
            assert posted.status_code == 200
            other = _wait_links(emu, key, "Claimed")[1]
            form["csrf"] = csrf_token(other, SECRET.encode())
            refused = client.post(f"/act/{other}", data=form, headers=SAME)
            assert refused.status_code == 409 and "not configured" in refused.text
            assert len(httpx.get(am + "/api/v2/silences", timeout=5).json()) == 1
            client.close()
        finally:
            gateway.stop()
        assert sink.requests == 0


def test_a_reload_with_an_unbounded_ttl_keeps_the_running_config(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[],
        external_url="http://127.0.0.1:1", actions={"secret": SECRET, "ttl": "1h"},
    )  # fmt: skip
    path = write_config(tmp_path / "gw.yaml", config)
    with running_gateway(config, config_path=path) as gw:
        path.write_text(path.read_text("utf-8").replace("ttl: 3600.0", "ttl: 3000000000"))
        assert "3000000000" in path.read_text("utf-8")
        answer = gw.client.post("/-/reload")
        assert answer.status_code == 400
        assert "actions.ttl: must be between 1m and 90d" in answer.json()["message"]
        assert gw.app.state.gateway.runtime.actions.ttl == 3600
