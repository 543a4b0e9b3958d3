"""Action links: signed tokens, links in messages within their byte budget, and the action
pages over HTTP (GET changes nothing; forged, altered, expired or cross-site posts are refused
and say why; an acknowledgement lands in history and the group)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
)
from wecom_bot import limits
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.actions.links import LINK_BUDGET, ActionLinker
from wecom_bot.gateway.actions.tokens import ActionToken, TokenError, sign, verify
from wecom_bot.gateway.config import load_config
from wecom_bot.gateway.intake.sources import parse_alertmanager
from wecom_bot.gateway.samples import alertmanager_firing, alertmanager_resolved
from wecom_bot.gateway.templates.renderer import Renderer
from wecom_bot.gateway.templates.summaries import briefs_of_notification

SECRET = b"0123456789abcdef-test-secret"
NOW = 1_800_000_000.0
LINK = re.compile(r"https?://[^\s)]+/act/[A-Za-z0-9_.-]+")


def test_a_token_round_trips_and_names_its_group() -> None:
    token = ActionToken(
        "s", (("alertname", "HighCPU"), ("team", "数据库")), int(NOW) + 60, "prod-eu"
    )
    assert verify(sign(token, SECRET), SECRET, now=NOW) == token


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t, "expired"),
        (
            lambda t: sign(ActionToken("s", (("alertname", "X"),), int(NOW) + 60, ""), b"x" * 20),
            "signature",
        ),
        (lambda t: t.replace(t[5], "A" if t[5] != "A" else "B", 1), "signature"),
        (lambda t: t.split(".")[0], "malformed"),
        (lambda t: t + "x", "malformed|signature"),
        (lambda t: "%%%.%%%", "malformed"),
    ],
    ids=["expired", "forged", "altered", "unsigned", "extended", "garbage"],
)
def test_a_bad_token_is_refused_with_its_reason(change: Any, reason: str) -> None:
    good = sign(ActionToken("s", (("alertname", "X"),), int(NOW) - 1, ""), SECRET)
    with pytest.raises(TokenError, match=reason):
        verify(change(good), SECRET, now=NOW)


def test_config_errors_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    base = "bots: {ops: {key: k}}\n"
    with pytest.raises(ConfigError, match="external_url"):
        load_config(text=base + "external_url: ftp://x\n")
    with pytest.raises(ConfigError, match="actions.alertmanager_url"):
        load_config(text=base + "actions: {alertmanager_url: nope}\n")
    with pytest.raises(ConfigError, match="actions.ack_bots"):
        load_config(text=base + "actions: {ack_bots: [opz]}\n")
    config = load_config(text=base + "external_url: https://gw.example\n"
                         "actions: {secret_env: WB_TEST_SECRET}\n")  # fmt: skip
    monkeypatch.delenv("WB_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="actions.secret"):
        config.actions.secret_bytes()
    monkeypatch.setenv("WB_TEST_SECRET", "short")
    with pytest.raises(ConfigError, match="actions.secret: must be at least 16"):
        config.actions.secret_bytes()
    masked = load_config(text=base + "actions: {secret: abcdefabcdefabcdef}\n").masked()
    assert masked["actions"]["secret"] == "***"


def _renderers(
    external: str = "https://gw.example.com", **options: Any
) -> tuple[Renderer, Renderer]:
    linker = ActionLinker(external, SECRET, clock=lambda: NOW)
    return Renderer(**options), Renderer(actions=linker, **options)


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
def test_links_add_at_most_their_budget_and_nothing_without_external_url(msgtype: Any) -> None:
    plain, linked = _renderers("https://alerts-gateway.platform.example-corp.com/wecom")
    firing = parse_alertmanager(alertmanager_firing())
    before = plain.render_check("default", firing, msgtype=msgtype)
    after = linked.render_check("default", firing, msgtype=msgtype)
    added = after.size - before.size
    links = LINK.findall(after.content)
    assert 2 <= len(links) <= 3 and 0 < added <= LINK_BUDGET, (added, after.content)
    assert "/act/" not in before.content
    resolved = parse_alertmanager(alertmanager_resolved())
    assert linked.render("default", resolved, msgtype=msgtype) == plain.render(
        "default", resolved, msgtype=msgtype
    )


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
def test_long_group_labels_drop_links_before_they_pass_the_budget(msgtype: Any) -> None:
    plain, linked = _renderers()
    for size in (10, 40, 80, 200, 2000):
        payload = alertmanager_firing()
        payload["groupLabels"] = {"alertname": "HighCPU", "cluster": "c" * size}
        firing = parse_alertmanager(payload)
        added = (
            linked.render_check("default", firing, msgtype=msgtype).size
            - plain.render_check("default", firing, msgtype=msgtype).size
        )
        assert 0 <= added <= LINK_BUDGET, (size, added)


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
def test_split_messages_with_links_keep_every_limit(msgtype: Any) -> None:
    _, linked = _renderers()
    payload = alertmanager_firing()
    payload["alerts"] = [dict(payload["alerts"][0], labels={
        **payload["alerts"][0]["labels"], "instance": f"host-{i}"},
        annotations={"description": "长" * 300}) for i in range(20)]  # fmt: skip
    report = linked.render_check("default", parse_alertmanager(payload), msgtype=msgtype)
    assert len(report.parts) > 1
    assert all(part.size <= limits.CONTENT_LIMITS[msgtype] for part in report.parts)
    assert LINK.search(report.parts[0].payload[msgtype]["content"])


# --------------------------------------------------------------------------- the pages


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


SAMPLE_AM = "http://alertmanager.example.com:9093"
"""The ``externalURL`` of the sample notifications."""


def _config(emu: Emu, key: str, tmp_path: Path, **actions: Any) -> Any:
    # The sample's Alertmanager, reached where nothing listens.
    am = {"name": "main", "url": "http://127.0.0.1:9", "external_urls": [SAMPLE_AM]}
    return gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[],
        external_url="http://127.0.0.1:1", alertmanagers=[am],
        actions={"secret": SECRET.decode(), **actions},
    )  # fmt: skip


def _links(emu: Emu, key: str) -> list[str]:
    text = " ".join(str(p[p["msgtype"]]["content"]) for p in emulator_contents(emu, key))
    return [m.group(0).split("/act/")[1] for m in LINK.finditer(text)]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_get_shows_and_changes_nothing_post_acknowledges_into_history_and_group(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    caplog.set_level(logging.INFO)
    with running_gateway(_config(emu, key, tmp_path, ack_bots=["ops"])) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        wait_for(lambda: len(_links(emu, key)) >= 2, what="a message with action links")
        ack, silence = _links(emu, key)[:2]
        for _ in range(3):  # link previews and crawlers
            page = gw.client.get(f"/act/{ack}", headers={"Authorization": ""})
            assert page.status_code == 200 and ">Acknowledge</button>" in page.text
            assert "HighCPU" in page.text
            assert gw.client.get(f"/act/{silence}?d=4h").status_code == 200
        assert gw.client.get("/api/v1/history", params={"state": "acknowledged"}).json()[
            "entries"] == []  # fmt: skip
        sent = len(emulator_contents(emu, key))
        html = page.text
        same = {"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}
        form = {"csrf": _csrf(html), "name": "王五"}
        answer = gw.client.post(f"/act/{ack}", data=form, headers=same)
        assert answer.status_code == 200, answer.text
        assert "已认领 by 王五 · HighCPU" in answer.text
        assert "wecom_bot_name" in answer.headers["set-cookie"]
        # The name is remembered on that phone: the next page has it filled in.
        gw.client.cookies.set("wecom_bot_name", "%E7%8E%8B%E4%BA%94", path="/act")
        assert 'value="王五"' in gw.client.get(f"/act/{ack}").text
        entries = gw.client.get("/api/v1/history", params={"state": "acknowledged"}).json()
        assert [e["title"] for e in entries["entries"]] == ["✅ 已认领 by 王五 · HighCPU"]
        wait_for(lambda: len(emulator_contents(emu, key)) > sent, what="the ack line")
        line = emulator_contents(emu, key)[-1]
        # In the bot's msgtype (markdown here), as one line.
        expected = {"content": "✅ 已认领 by 王五 · HighCPU"}
        assert line == {"msgtype": "markdown", "markdown": expected}
        pages = [html, answer.text, gw.client.get("/api/v1/history").text]
    for text in [*pages, caplog.text]:
        assert key not in text


def test_forged_altered_expired_and_cross_site_posts_change_nothing_and_say_why(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    clock = [NOW]
    config = _config(emu, key, tmp_path, ttl="1h")
    with running_gateway(config, clock=lambda: clock[0]) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        wait_for(lambda: len(_links(emu, key)) >= 2, what="a message with action links")
        ack = _links(emu, key)[0]
        csrf = _csrf(gw.client.get(f"/act/{ack}").text)
        same = {"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}
        body, mac = ack.split(".")
        forged = sign(ActionToken("a", (("alertname", "HighCPU"),), int(NOW) + 60, ""), b"z" * 20)
        cases = [
            (f"/act/{body}.{mac[::-1]}", {"csrf": csrf, "name": "x"}, same, 400, "altered"),
            (f"/act/{body[:-4]}.{mac}", {"csrf": csrf, "name": "x"}, same, 400, "altered"),
            (f"/act/{forged}", {"csrf": csrf, "name": "x"}, same, 400, "forged"),
            (f"/act/{ack}", {"csrf": "nope", "name": "x"}, same, 403, "CSRF"),
            (f"/act/{ack}", {"name": "x"}, same, 403, "CSRF"),
            (f"/act/{ack}", {"csrf": csrf, "name": "x"}, {"Origin": "https://evil.example"}, 403,
             "another site"),
            (f"/act/{ack}", {"csrf": csrf, "name": "x"}, {"Sec-Fetch-Site": "cross-site"}, 403,
             "another site"),
            (f"/act/{ack}", {"csrf": csrf, "name": "x"}, {"Origin": "null"}, 403, "another site"),
            (f"/act/{ack}", {"csrf": csrf, "name": " "}, same, 400, "your name"),
        ]  # fmt: skip
        for path, form, headers, status, why in cases:
            answer = gw.client.post(path, data=form, headers=headers)
            assert answer.status_code == status and why in answer.text, (path, answer.text)
            assert "Nothing was changed" in answer.text
        clock[0] = NOW + 3601
        late = gw.client.post(f"/act/{ack}", data={"csrf": csrf, "name": "x"}, headers=same)
        for answer in (gw.client.get(f"/act/{ack}"), late):
            assert answer.status_code == 410 and "expired" in answer.text
        entries = gw.client.get("/api/v1/history", params={"state": "acknowledged"}).json()
        assert entries["entries"] == []


def test_values_are_escaped_on_the_pages(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    payload = alertmanager_firing()
    payload["groupLabels"] = {"alertname": "<script>alert(1)</script>", "x": '"><img src=x>'}
    with running_gateway(_config(emu, key, tmp_path)) as gw:
        assert gw.post("/alertmanager", payload).status_code == 200
        wait_for(lambda: len(_links(emu, key)) >= 2, what="a message with action links")
        for token in _links(emu, key):
            html = gw.client.get(f"/act/{token}").text
            assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_without_external_url_there_are_no_links_and_no_pages(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = gateway_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[])
    with running_gateway(config) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        wait_for(lambda: len(emulator_contents(emu, key)) >= 1, what="the message")
        assert _links(emu, key) == []
        token = sign(ActionToken("a", (("alertname", "X"),), int(NOW), ""), SECRET)
        assert gw.client.get(f"/act/{token}").status_code in (401, 404)
    assert httpx.codes.OK


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2", "text"])
def test_a_summarised_group_carries_its_links_within_every_limit(msgtype: Any) -> None:
    plain, linked = _renderers(max_alerts=20)
    payload = alertmanager_firing()
    alert = payload["alerts"][0]
    payload["alerts"] = [
        dict(alert, labels={**alert["labels"], "instance": f"host-{i}"}) for i in range(400)
    ]
    firing = parse_alertmanager(payload)
    assert linked.form_of(firing) == "summary"
    before = plain.render_check("default", firing, msgtype=msgtype)
    after = linked.render_check("default", firing, msgtype=msgtype)
    assert after.used_template.startswith("summary") and LINK.search(after.content)
    assert 0 < after.size - before.size <= LINK_BUDGET
    assert all(part.size <= limits.CONTENT_LIMITS[msgtype] for part in after.parts)
    # A fold of several notifications names no single group: no links.
    folded = linked.render_summary(briefs_of_notification(firing), msgtype=msgtype)
    assert not LINK.search(folded.content)


def test_details_show_the_group_and_a_silence_that_fails_says_why(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    payload = alertmanager_firing()
    payload["externalURL"] = ""  # the configured Alertmanager, where nothing listens
    with running_gateway(_config(emu, key, tmp_path)) as gw:
        assert gw.post("/alertmanager", payload).status_code == 200
        wait_for(lambda: len(_links(emu, key)) >= 3, what="a message with three action links")
        _, silence, details = _links(emu, key)[:3]
        page = gw.client.get(f"/act/{details}").text
        # People are sent to the Alertmanager's public address, not the one the gateway uses.
        assert f'href="{SAMPLE_AM}/#/alerts?filter=%7Balertname%3D%22HighCPU%22%7D"' in page
        assert "<form" not in page
        csrf = _csrf(gw.client.get(f"/act/{silence}").text)
        answer = gw.client.post(f"/act/{silence}", data={"csrf": csrf, "name": "x", "d": "4h"})
        assert answer.status_code == 502 and "Alertmanager did not answer" in answer.text
        answer = gw.client.post(f"/act/{silence}", data={"csrf": csrf, "name": "x", "d": "9y"})
        assert answer.status_code == 400 and "1h, 4h, 24h" in answer.text


def test_action_pages_need_no_credentials_everything_else_still_does(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    config = _config(emu, key, tmp_path).model_copy(
        update={"auth": load_config(text="bots: {x: {key: k}}\nauth: {bearer_token: t0k}\n").auth}
    )
    with running_gateway(config) as gw:
        # The group X never opened: its acknowledge page says so (and needs no credentials).
        token = sign(ActionToken("a", (("alertname", "X"),), int(time.time()) + 60, ""), SECRET)
        page = gw.client.get(f"/act/{token}")
        assert page.status_code == 409 and "resolved" in page.text
        assert gw.client.get("/api/v1/history").status_code == 401
        assert gw.client.get("/act").status_code == 401


def test_a_link_names_its_alertmanager_by_its_configured_name_across_restarts(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    payload = alertmanager_firing()
    payload["externalURL"] = "http://127.0.0.1:7/am/"  # selects "edge", not "main"
    edge = {"name": "edge", "url": "http://127.0.0.1:7/am"}

    def with_alertmanagers(*entries: Any) -> Any:
        data = _config(emu, key, tmp_path).model_dump(mode="json", by_alias=True)
        return type(_config(emu, key, tmp_path)).model_validate({**data, "alertmanagers": entries})

    main = _config(emu, key, tmp_path).alertmanagers[0].model_dump(mode="json")
    config = with_alertmanagers(main, edge)
    with running_gateway(config) as gw:
        assert gw.post("/alertmanager", payload).status_code == 200
        wait_for(lambda: len(_links(emu, key)) >= 3, what="a message with three action links")
        details = _links(emu, key)[2]
        assert 'href="http://127.0.0.1:7/am/#/alerts' in gw.client.get(f"/act/{details}").text
    # A new process, its Alertmanagers listed the other way round: the name still selects.
    with running_gateway(with_alertmanagers(edge, main)) as gw:
        page = gw.client.get(f"/act/{details}").text
        assert 'href="http://127.0.0.1:7/am/#/alerts' in page, page
        assert "127.0.0.1:9/" not in page and SAMPLE_AM not in page
    # Once "edge" is no longer configured, the link opens no Alertmanager at all.
    with running_gateway(with_alertmanagers(main)) as gw:
        page = gw.client.get(f"/act/{details}").text
        assert "/#/alerts" not in page and "127.0.0.1:7" not in page
