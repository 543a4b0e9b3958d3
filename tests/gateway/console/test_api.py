"""The console's JSON API over HTTP: auth, status, history, dead letters, playground, config.

Every answer goes through :class:`Console`, which fails the test if it contains the webhook
key (or its hidden middle), the password or the token.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

import httpx

from tests.emulator.conftest import Emu
from tests.gateway.harness import emulator_contents, running_gateway, wait_for, write_config
from tests.gateway.harness import renamed_alert as alert
from wecom_bot.gateway.samples import alertmanager_firing, generic, grafana_firing

from .support import (
    BASIC,
    TOKEN,
    Console,
    add_fault,
    canary_key,
    console_config,
    secrets_of,
)

API_GETS = [
    "/api/v1/status",
    "/api/v1/alerts",
    "/api/v1/history",
    "/api/v1/dead-letters",
    "/api/v1/playground",
    "/api/v1/playground/samples/alertmanager_firing",
    "/api/v1/config",
    "/ui",
    "/ui/assets/console.js",
]


def entry_of(console: Console, notification_id: str) -> dict[str, Any]:
    data: dict[str, Any] = console.json(f"/api/v1/history/{notification_id}")
    return data


def wait_state(console: Console, notification_id: str, state: str) -> dict[str, Any]:
    def reached() -> bool:
        # Journaled notifications enter the history once rendered, a moment after the 200.
        answer = console.get(f"/api/v1/history/{notification_id}")
        return answer.status_code == 200 and answer.json()["state"] == state

    wait_for(
        reached,
        what=f"notification {notification_id} to be {state}",
    )
    return entry_of(console, notification_id)


def test_every_console_path_needs_credentials(emu: Emu, tmp_path: Path) -> None:
    key = canary_key()
    config = console_config(emu.url, key, "memory://")
    with running_gateway(config) as gw:
        for path in API_GETS:
            bare = gw.client.get(path)
            assert bare.status_code == 401, path
            assert "Basic" in bare.headers["WWW-Authenticate"]
            assert gw.client.get(path, auth=("operator", "wrong")).status_code == 401
            assert gw.client.get(path, headers={"Authorization": BASIC}).status_code == 200, path
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            assert gw.client.get(path, headers=bearer).status_code == 200, path
        for path in ("/api/v1/dead-letters/requeue", "/api/v1/config/reload",
                     "/api/v1/playground/render", "/api/v1/alerts/g/acknowledge",
                     "/api/v1/alerts/g/silence"):  # fmt: skip
            assert gw.client.post(path, json={}).status_code == 401, path
        page = gw.client.get("/ui", headers={"Authorization": BASIC})
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "<script>" not in page.text and "style=" not in page.text


def test_history_shows_delivered_retried_and_dead_lettered_messages(
    emu: Emu, tmp_path: Path
) -> None:
    key = canary_key()
    config = console_config(emu.url, key, f"sqlite:///{tmp_path / 'o.db'}")
    with running_gateway(config) as gw:
        console = Console(gw, secrets_of(key))
        # Delivered after one retry: errcode -1 is transient.
        add_fault(emu, key, -1)
        first = gw.post(
            "/alertmanager", alert("RetryMe", team="web"), headers={"Authorization": BASIC}
        )
        assert first.status_code == 200, first.text
        retried = wait_state(console, first.json()["notification_id"], "delivered")
        kinds = [e["kind"] for e in retried["events"]]
        assert kinds[0] == "queued" and "retried" in kinds and kinds[-1] == "sent"
        retry = next(e for e in retried["events"] if e["kind"] == "retried")
        assert retry["errcode"] == -1 and "-1" in retry["detail"]
        [message] = retried["messages"]
        assert message["bot"] == "ops" and message["size"] <= message["limit"]
        assert message["html"].startswith('<div class="wb-msg')
        assert retried["records"][0]["status"] == "sent"

        # Dead-lettered: errcode 93000 (invalid key) is permanent.
        add_fault(emu, key, 93000)
        second = gw.post("/alertmanager", alert("DeadOne"), headers={"Authorization": BASIC})
        dead_id = second.json()["notification_id"]
        dead = wait_state(console, dead_id, "dead")
        [last] = [e for e in dead["events"] if e["kind"] == "dead_lettered"]
        assert last["errcode"] == 93000
        letters = console.json("/api/v1/dead-letters")
        assert letters["total"] == 1
        [letter] = letters["dead_letters"]
        assert letter["errcode"] == 93000 and letter["notification_ids"] == [dead_id]
        assert 'class="wb-msg' in letter["html"]
        assert console.metric("wecom_bot_dead_letters") == 1

        # Status: the failure with its errcode, the masked key, the dead letter.
        [bot] = console.json("/api/v1/status")["bots"]
        assert bot["name"] == "ops" and bot["keys"] == [f"{key[:4]}…{key[-4:]}"]
        assert bot["last_errcode"] == 93000 and bot["last_failure_at"] is not None
        assert bot["last_success_at"] is not None and bot["sent"] >= 1
        assert bot["dead_letters"] == 1 and bot["queue_depth"] == 0
        assert bot["window"]["limit"] == 20 and 0 <= bot["window"]["used"] <= 20

        # Re-sent after the emulator stops failing (the fault was used up): it arrives.
        before = len(emulator_contents(emu, key))
        answer = console.post("/api/v1/dead-letters/requeue", {"ids": [letter["id"]]})
        assert answer.json() == {"requeued": 1, "ids": [letter["id"]]}
        resent = wait_state(console, dead_id, "delivered")
        assert [e["kind"] for e in resent["events"]][-2:] == ["requeued", "sent"]
        wait_for(lambda: len(emulator_contents(emu, key)) == before + 1, what="the re-sent one")
        assert "DeadOne" in str(emulator_contents(emu, key)[-1])
        assert console.json("/api/v1/dead-letters")["total"] == 0
        assert console.metric("wecom_bot_dead_letters") == 0
        assert console.metric("wecom_bot_dead_letters_requeued_total") == 1

        # Discarded: gone from the outbox, recorded in the history.
        add_fault(emu, key, 93000)
        third = gw.post("/grafana", grafana_firing(), headers={"Authorization": BASIC})
        gone_id = third.json()["notification_id"]
        wait_state(console, gone_id, "dead")
        [letter] = console.json("/api/v1/dead-letters")["dead_letters"]
        answer = console.post("/api/v1/dead-letters/discard", {"all": True})
        assert answer.json()["discarded"] == 1
        assert wait_state(console, gone_id, "discarded")["records"] == []
        assert console.metric("wecom_bot_dead_letters_discarded_total") == 1
        assert console.post("/api/v1/dead-letters/requeue", {}).status_code == 422

        # Search: by label, bot, state, source, title and time.
        def ids(**params: Any) -> list[str]:
            entries = console.json("/api/v1/history", params=params)["entries"]
            return [e["id"] for e in entries]

        everything = ids()
        assert everything == [gone_id, dead_id, first.json()["notification_id"]]
        assert ids(label="team=web") == [first.json()["notification_id"]]
        assert ids(label=["alertname=DeadOne", "team=db"]) == [dead_id]
        assert ids(state="discarded") == [gone_id]
        assert ids(state="delivered,discarded") == [gone_id, dead_id, everything[-1]]
        assert ids(source="grafana") == [gone_id]
        assert ids(bot="ops", q="retryme") == [everything[-1]]
        assert ids(bot="nobody") == []
        assert ids(since=time.time() + 60) == []
        assert ids(limit=1) == [gone_id]
        page = console.json("/api/v1/history", params={"limit": 2})
        assert ids(until=page["next_until"]) == [everything[-1]]
        assert console.get("/api/v1/history", params={"state": "lost"}).status_code == 422
        assert console.get("/api/v1/history", params={"label": "novalue"}).status_code == 422
        assert console.get("/api/v1/history/0000").status_code == 404


def test_playground_renders_splits_and_sends(emu: Emu) -> None:
    key = canary_key()
    config = console_config(emu.url, key, "memory://")
    with running_gateway(config) as gw:
        console = Console(gw, secrets_of(key))
        options = console.json("/api/v1/playground")
        assert {"critical", "db", "default", "webhook:deploy"} <= {
            r["name"] for r in options["routes"]
        }
        assert "default_v2" in options["templates"] and options["bots"] == ["ops"]
        sample = console.json("/api/v1/playground/samples/grafana_firing")
        assert sample["source"] == "grafana" and sample["payload"]["alerts"]

        rendered = console.post("/api/v1/playground/render", {"sample": "alertmanager_firing",
                                                                "route": "critical"})  # fmt: skip
        assert rendered.status_code == 200, rendered.text
        report = rendered.json()
        assert report["msgtype"] == "markdown" and report["fits"] is True
        [part] = report["parts"]
        assert part["size"] <= part["limit"] == 4096
        assert "HighCPU" in part["html"] and "wb-msg--markdown" in part["html"]
        assert "<@oncall>" in part["payload"]["markdown"]["content"]  # the route's mentions

        # A payload too long for one message: split, every part within the limit (one alert:
        # it is written by its template whatever its size).
        big = alertmanager_firing()
        big["alerts"] = big["alerts"][:1]
        big["alerts"][0]["annotations"]["description"] = "很长的描述 " * 900
        body = {
            "payload": big, "route": "db", "source": "alertmanager",
            "template_source": "{% for a in alerts %}{{ a.annotations.description }}\n{% endfor %}",
        }  # fmt: skip
        as_v2 = console.post("/api/v1/playground/render", body).json()
        assert as_v2["msgtype"] == "markdown_v2" and as_v2["fits"] is False
        assert len(as_v2["parts"]) >= 2 and as_v2["size"] > as_v2["limit"]
        assert all(p["size"] <= p["limit"] for p in as_v2["parts"])
        # Two such alerts do not fit one message: a summary, as the gateway would send.
        big["alerts"] = [
            big["alerts"][0],
            {
                **big["alerts"][0],
                "labels": {**big["alerts"][0]["labels"], "instance": "db-9.example.com:9100"},
            },
        ]
        summarised = console.post("/api/v1/playground/render", body).json()
        assert summarised["used_template"] == "summary_v2" and summarised["fits"] is True

        # A template typed in the playground (sandboxed), a generic payload, a text msgtype.
        own = console.post("/api/v1/playground/render", {
            "payload": generic(), "source": "generic", "msgtype": "text",
            "template_source": "deploy of {{ raw.service }} by {{ raw.user | default('?') }}",
        }).json()  # fmt: skip
        assert own["parts"][0]["payload"]["text"]["content"].startswith("deploy of ")

        for bad, status in [({"payload": "{not json"}, 422), ({"sample": "nope"}, 404),
                            ({"sample": "generic", "route": "nope"}, 404),
                            ({"sample": "generic", "template_source": "{% if %}"}, 422),
                            ({"payload": {"alerts": 1}}, 422), ({"source": "x"}, 422)]:  # fmt: skip
            assert console.post("/api/v1/playground/render", bad).status_code == status, bad

        before = len(emulator_contents(emu, key))
        sent = console.post("/api/v1/playground/send", {"sample": "grafana_firing", "bot": "ops"})
        assert sent.status_code == 200, sent.text
        wait_for(lambda: len(emulator_contents(emu, key)) == before + 1, what="the sent sample")
        wait_state(console, sent.json()["notification_id"], "delivered")
        assert console.post("/api/v1/playground/send", {"sample": "generic"}).status_code == 422


# Exception classes, module paths and the renderer's own classes: never in an answer's message.
CLASS_NAME = re.compile(r"[A-Z]\w*(?:Error|Exception|NotFound)\b|\w+\.\w+\.|\w*View\b|Untrusted")


def test_playground_template_errors_say_where_in_fields(emu: Emu) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://", templates={"risky": "ok\n{{ alerts[0].nope.more }}"}
    )
    with running_gateway(config) as gw:
        console = Console(gw, secrets_of(key))

        def error(body: dict[str, Any]) -> dict[str, Any]:
            answer = console.post("/api/v1/playground/render", {"sample": "alertmanager_firing",
                                                                 **body})  # fmt: skip
            assert answer.status_code == 422, answer.text
            data: dict[str, Any] = answer.json()
            assert CLASS_NAME.search(data["error"]) is None, data
            assert CLASS_NAME.search(data["template_error"]["message"]) is None, data
            return data

        syntax = error({"template_source": "## {{ title }}\n{% for a in alerts %}\n- {{ a.name }}"
                                           "\n{% if %}\n{% endfor %}"})  # fmt: skip
        assert syntax["template_error"] == {
            "template": None, "in_template_source": True, "line": 4, "column": 7,
            "message": "Expected an expression, got 'end of statement block'",
        }  # fmt: skip
        assert syntax["error"] == (
            "template text, line 4, column 7: Expected an expression, got 'end of statement block'"
        )
        # A render failure: the line, and no column (Jinja does not know one).
        runtime = error({"template_source": "## {{ title }}\n\n{{ alerts[0].nope.more }}"})
        assert runtime["template_error"] == {
            "template": None, "in_template_source": True, "line": 3, "column": None,
            "message": "unknown variable 'alert.nope'",
        }  # fmt: skip
        assert runtime["error"] == "template text, line 3: unknown variable 'alert.nope'"
        # In a configured template: named, and not the text the page holds.
        configured = error({"template": "risky"})
        assert configured["template_error"] == {
            "template": "risky", "in_template_source": False, "line": 2, "column": None,
            "message": "unknown variable 'alert.nope'",
        }  # fmt: skip
        unknown = error({"template": "nope"})["template_error"]
        assert unknown["template"] == "nope" and unknown["line"] is None
        assert unknown["message"].startswith("no such template (known: ")
        # Other refusals carry no template_error.
        bad = console.post("/api/v1/playground/render", {"payload": "{not json"})
        assert bad.status_code == 422 and "template_error" not in bad.json()


def test_config_view_masks_secrets_and_reload_reports_the_result(emu: Emu, tmp_path: Path) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://", bots={"ops": {"key": key, "proxy": "http://u:proxypass@p:3128"}}
    )
    path = write_config(tmp_path / "gw.yaml", config)
    with running_gateway(config, config_path=path) as gw:
        console = Console(gw, [*secrets_of(key), "proxypass"])
        shown = console.json("/api/v1/config")
        assert shown["config"]["bots"]["ops"]["key"] == f"{key[:4]}…{key[-4:]}"
        assert shown["config"]["auth"]["password"] == "***"
        assert shown["path"] == str(path)

        data = copy.deepcopy(config.model_dump(mode="json", by_alias=True))
        data["routes"][0]["mutd"] = "keep"
        path.write_text(__import__("yaml").safe_dump(data), "utf-8")
        bad = console.post("/api/v1/config/reload")
        assert bad.status_code == 400
        assert "routes.0.mutd" in bad.json()["message"] and "muted" in bad.json()["message"]
        assert console.json("/api/v1/config")["last_reload"]["ok"] is False

        write_config(path, config)
        good = console.post("/api/v1/config/reload")
        assert good.status_code == 200 and good.json()["ok"] is True

        # State changes refuse what a cross-site page could send with the browser's credentials.
        form_headers = {"Authorization": BASIC, "Content-Type": "application/x-www-form-urlencoded"}
        form = gw.client.post("/api/v1/config/reload", content=b"x=1", headers=form_headers)
        assert form.status_code == 415
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            answer = console.post("/api/v1/dead-letters/discard", {"all": True}, headers=headers)
            assert answer.status_code == 403


def test_history_is_purged_after_its_retention(emu: Emu, tmp_path: Path) -> None:
    key = canary_key()
    now = [time.time()]
    store = f"sqlite:///{tmp_path / 'o.db'}"
    config = console_config(emu.url, key, store, history_retention="1h")
    with running_gateway(config, clock=lambda: now[0]) as gw:
        console = Console(gw, secrets_of(key))
        answer = gw.post("/webhook/deploy", generic(), headers={"Authorization": BASIC})
        nid = answer.json()["notification_id"]
        wait_state(console, nid, "delivered")
    now[0] += 7200  # two hours later, the next start purges what is older than one
    with running_gateway(config, clock=lambda: now[0]) as gw:
        console = Console(gw, secrets_of(key))
        wait_for(
            lambda: console.get(f"/api/v1/history/{nid}").status_code == 404,
            what="the purge at start",
        )
        assert console.json("/api/v1/history")["entries"] == []


def test_the_api_is_described_in_openapi(emu: Emu) -> None:
    config = console_config(emu.url, canary_key(), "memory://")
    with running_gateway(config) as gw:
        spec = httpx.get(gw.url + "/openapi.json", headers={"Authorization": BASIC}).json()
    for path in ("/api/v1/status", "/api/v1/history", "/api/v1/history/{notification_id}",
                 "/api/v1/dead-letters", "/api/v1/dead-letters/requeue",
                 "/api/v1/playground/render", "/api/v1/config/reload"):  # fmt: skip
        assert path in spec["paths"], path
