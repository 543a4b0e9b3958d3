"""What the server writes in English comes with a code the console says in its language.

Over HTTP to a real gateway (and the emulator): the console API's errors keep their English
``error`` and add ``code`` and ``params``; a reload's result, the history's events and a
render's warnings carry theirs; every code has its text in both catalogues, and that text
fills from the params the server gave (the page's quoted ``detail`` aside).
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import yaml

from tests.emulator.conftest import Emu
from tests.gateway.harness import running_gateway, wait_for, write_config
from wecom_bot import i18n
from wecom_bot.gateway.templates.renderer import CodedWarning

from .support import BASIC, Console, canary_key, console_config, secrets_of
from .test_timed_routes import alert, route


def _said(code: str, params: dict[str, Any]) -> dict[str, str]:
    """The text of ``code`` in each language, filled as the page fills it."""
    values = {k: v for k, v in params.items() if k != "detail"}
    return {lang: i18n.text(lang, f"console.server.{code}", **values) for lang in i18n.LANGUAGES}


def _coded(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"], body  # English, as before
    said = _said(code, body["params"])
    assert said["en"] != said["zh-CN"], said
    return body


def test_errors_events_reloads_and_warnings_carry_codes(emu: Emu, tmp_path: Path) -> None:
    key = canary_key()
    config = console_config(
        emu.url, key, "memory://",
        routes=[route("paging", "d", mentions={"users": ["lead"]})],
    )  # fmt: skip
    path = write_config(tmp_path / "gw.yaml", config)
    with running_gateway(config, config_path=path) as gw:
        console = Console(gw, secrets_of(key))

        # -- errors of the API ------------------------------------------------------------------
        post = console.post
        _coded(post("/api/v1/alerts/nope/acknowledge", {"name": "x"}), 404, "alerts.not_open")
        _coded(post("/api/v1/alerts/nope/acknowledge", {"name": "  "}), 422, "alerts.need_name")
        _coded(post("/api/v1/dead-letters/requeue", {}), 422, "dead.none_named")
        bad = _coded(console.get("/api/v1/history?state=bogus"), 422, "history.bad_state")
        assert bad["params"]["state"] == "bogus" and "bogus" in _said(bad["code"], bad["params"])[
            "zh-CN"
        ]
        _coded(console.get("/api/v1/playground/samples/nope"), 404, "playground.no_sample")
        render = "/api/v1/playground/render"
        _coded(post(render, {"payload": "{not json"}), 422, "playground.bad_json")
        lost = _coded(post(render, {"route": "nope", "payload": alert("d")}), 404,
                      "playground.no_route")  # fmt: skip
        assert lost["params"] == {"name": "nope"}
        unread = _coded(post(render, {"payload": {"alerts": 1}}), 422, "playground.bad_payload")
        assert unread["params"]["detail"] in unread["error"]  # quoted, word for word
        _coded(post("/api/v1/playground/send", {"payload": alert("d")}), 422,
               "playground.need_bot")  # fmt: skip
        template = _coded(post(render, {"payload": alert("d"), "template_source": "{{ x.y.z }}"}),
                          422, "playground.template")  # fmt: skip
        assert template["template_error"]["message"]  # the template's own words, quoted

        # -- a render's warnings ----------------------------------------------------------------
        shown = post(render, {"route": "paging", "payload": alert("d"), "msgtype": "markdown_v2"})
        assert shown.status_code == 200, shown.text
        report = shown.json()
        assert len(report["warning_codes"]) == len(report["warnings"]) >= 1
        codes = [c["code"] for c in report["warning_codes"]]
        assert "render.v2_no_mentions" in codes, report["warnings"]
        for coded in report["warning_codes"]:
            _said(coded["code"], coded["params"])

        # -- a reload's result ------------------------------------------------------------------
        assert console.json("/api/v1/status")["last_reload"]["code"] == "reload.started"
        data = copy.deepcopy(config.model_dump(mode="json", by_alias=True))
        data["routes"][0]["mutd"] = key  # the key in a bad field: never shown
        path.write_text(yaml.safe_dump(data), "utf-8")
        kept = console.post("/api/v1/config/reload")
        assert kept.status_code == 400 and kept.json()["code"] == "reload.kept", kept.text
        assert "routes.0.mutd" in kept.json()["params"]["detail"]
        assert console.json("/api/v1/config")["last_reload"]["code"] == "reload.kept"
        write_config(path, config)
        good = console.post("/api/v1/config/reload")
        assert good.status_code == 200 and good.json()["code"] == "reload.ok", good.text
        assert good.json()["message"] == "config reloaded"  # the English stays for clients

        # -- the history's events ---------------------------------------------------------------
        sent = gw.post("/alertmanager?wait=true", alert("d"), headers={"Authorization": BASIC})
        assert sent.status_code == 200, sent.text
        entry = console.json("/api/v1/history?limit=1")["entries"][0]["id"]

        def events() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = console.json(f"/api/v1/history/{entry}")["events"]
            return found

        wait_for(lambda: any(e["kind"] == "sent" for e in events()), what="the sent event")
        [delivered] = [e for e in events() if e["kind"] == "sent"]
        assert delivered["code"] == "event.delivered"
        assert delivered["detail"] == f"delivered after {delivered['params']['seconds']}s"
        assert delivered["params"]["seconds"] in _said("event.delivered", delivered["params"])[
            "zh-CN"
        ]


def test_a_coded_warning_is_its_text_and_keeps_its_code_across_processes() -> None:
    """The render pool hands reports over a pipe (pickled): the codes must survive it."""
    warning = CodedWarning("output cut at 20000 bytes", "render.output_cut", bytes=20000)
    back = pickle.loads(pickle.dumps(warning))
    assert back == "output cut at 20000 bytes" and isinstance(back, str)
    assert (back.code, back.params) == ("render.output_cut", {"bytes": 20000})
    assert _said(back.code, back.params)["zh-CN"] == "输出在 20000 字节处截断。"


def test_the_emulators_warnings_carry_codes_its_page_can_say() -> None:
    """Each kind of leniency the emulator notes, in both languages, from its params."""
    from wecom_bot.emulator import leniency

    made = [
        leniency.content_type_leniency("text/plain"),
        leniency.content_type_leniency(""),
        leniency.decode_json(b'{"a": "x\x01"}', lenient=True)[1],
        leniency.decode_json(b'{"a": 1', lenient=True)[1],
        leniency.decode_json(b'{"a": "x\x01"', lenient=True)[1],
        leniency.over_documented_text(3000),
    ]
    codes = []
    for warning in made:
        assert warning is not None
        data = warning.to_json()
        assert data["message"] == warning.message  # the English stays
        said = {
            lang: i18n.text(lang, f"emulator.server.{data['code']}", **data["params"])
            for lang in i18n.LANGUAGES
        }
        assert said["en"] != said["zh-CN"]
        codes.append(data["code"])
    assert len(set(codes)) == 6, codes


def test_an_act_page_quotes_the_stores_error_after_its_own_sentence() -> None:
    """The /act/ pages say a store's failure in their language and quote its error (escaped)."""
    from starlette.requests import Request

    from wecom_bot.gateway.actions import pages

    headers = [(b"accept-language", b"zh-CN")]
    lang = pages._Lang(Request({"type": "http", "query_string": b"", "headers": headers}))
    answer = pages._refused(lang, lang("act.refused.store"), 503, "connection refused <b>")
    page = bytes(answer.body).decode()
    assert answer.status_code == 503
    assert '存储无应答，请重试： <q data-quoted="true">connection refused &lt;b&gt;</q>' in page
