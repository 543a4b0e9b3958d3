"""What a web page can make a browser send to the gateway, sent to a real gateway.

The browser attaches the basic-auth credentials it holds for the gateway to cross-site
requests, so every attack here carries them. Three kinds:

- a cross-site form or ``text/plain`` post, or a ``no-cors`` fetch of a body without a type
  (no CORS preflight is needed for any of them): refused with 415;
- a cross-site ``fetch`` the browser marks with ``Origin`` / ``Sec-Fetch-Site``: 403;
- DNS rebinding: the attacker's name now points at the gateway, the page is same-origin for
  the browser and sends that name as ``Host``: 421.

Every refusal happens before the handler runs: nothing is queued, rendered or reloaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Emu, running
from tests.gateway.console.support import BASIC, console_config
from tests.gateway.harness import Running, one_alert, running_gateway, write_config
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.app import create_app
from wecom_bot.gateway.samples import alertmanager_firing

KEY = "5d7e3c1a-8f2b-4d6e-9a0c-1b2c3d4e5f60"
JSON_BODY = b'{"version":"4","status":"firing","alerts":[]}'

STATE_CHANGING = [
    "/alertmanager",
    "/alertmanager/critical",
    "/grafana",
    "/webhook/deploy",
    "/-/reload",
    "/api/v1/config/reload",
    "/api/v1/playground/render",
    "/api/v1/playground/send",
    "/api/v1/dead-letters/requeue",
    "/api/v1/dead-letters/discard",
]
# What a page of another site can send without a preflight (and a no-cors Blob: no type).
SIMPLE_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "text/plain;charset=UTF-8",
    None,
]
REBOUND_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
]
REBOUND_REQUESTS = [
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/config"),
    ("GET", "/ui"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/playground/send"),
    ("POST", "/alertmanager"),
]
CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
]
CROSS_SITE_TARGETS = [
    "/-/reload",
    "/api/v1/playground/send",
    "/alertmanager",
    "/api/v1/dead-letters/discard",
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def gw(emu: Emu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    config = console_config(emu.url, KEY, "memory://")
    path = write_config(tmp_path_factory.mktemp("exposure") / "gw.yaml", config)
    with running_gateway(config, config_path=path) as running_:
        yield running_


def port_of(gw: Running) -> int:
    return int(gw.url.rsplit(":", 1)[1])


def history_size(gw: Running) -> int:
    answer = gw.client.get(
        "/api/v1/history", params={"limit": 500}, headers={"Authorization": BASIC}
    )
    assert answer.status_code == 200, answer.text
    return len(answer.json()["entries"])


def body_for(path: str) -> bytes:
    if path.startswith("/api/v1/playground"):
        return b'{"sample":"alertmanager_firing","bot":"ops"}'
    if path.startswith("/api/v1/dead-letters"):
        return b'{"all":true}'
    return JSON_BODY if path != "/webhook/deploy" else b'{"title":"deploy"}'


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
@pytest.mark.parametrize("path", STATE_CHANGING)
def test_a_body_a_cross_site_page_can_send_is_refused(
    gw: Running, path: str, content_type: str | None
) -> None:
    headers = {"Authorization": BASIC}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = gw.metric("wecom_bot_notifications_received_total")
    answer = gw.client.post(path, content=body_for(path), headers=headers)
    assert answer.status_code == 415, answer.text
    assert "Content-Type: application/json" in answer.json()["error"]
    assert gw.metric("wecom_bot_notifications_received_total") == before


@pytest.mark.parametrize(("method", "path"), REBOUND_REQUESTS)
@pytest.mark.parametrize("host", REBOUND_HOSTS)
def test_a_rebound_name_is_refused(gw: Running, host: str, method: str, path: str) -> None:
    name = host.format(port=port_of(gw))
    # What a page served from the rebound name sends: its own origin, same-origin for the
    # browser, a JSON body, and the credentials the browser holds for that address.
    headers = {
        "Host": name,
        "Origin": f"http://{name}",
        "Sec-Fetch-Site": "same-origin",
        "Authorization": BASIC,
        "Content-Type": "application/json",
    }
    content = body_for(path) if method == "POST" else None
    answer = gw.client.request(method, path, headers=headers, content=content)
    assert answer.status_code == 421, answer.text
    assert "server.allowed_hosts" in answer.json()["error"]


@pytest.mark.parametrize(
    "headers", CROSS_SITE, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items())
)
@pytest.mark.parametrize("path", CROSS_SITE_TARGETS)
def test_a_cross_site_state_change_is_refused(
    gw: Running, path: str, headers: dict[str, str]
) -> None:
    answer = gw.client.post(
        path,
        content=body_for(path),
        headers={**headers, "Authorization": BASIC, "Content-Type": "application/json"},
    )
    assert answer.status_code == 403, answer.text
    assert "cross-site request refused" in answer.json()["error"]


def test_nothing_refused_was_queued_and_what_belongs_still_works(gw: Running) -> None:
    before = history_size(gw)
    auth = {"Authorization": BASIC}
    # A sender (Alertmanager, Grafana, curl): JSON, no Origin, the configured name.
    assert gw.post("/alertmanager", one_alert("ExposureOk"), headers=auth).status_code == 200
    hook = gw.client.post(
        "/webhook/deploy",
        content=b'{"title":"typed json"}',
        headers={**auth, "Content-Type": "application/vnd.deploy+json; charset=utf-8"},
    )
    assert hook.status_code == 200, hook.text
    assert gw.client.post("/-/reload", headers=auth).status_code == 200  # no body, no type
    # The console's own page: same origin, as Chromium sends it.
    same_origin = {
        **auth,
        "Origin": gw.url,
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json",
    }
    sent = gw.client.post(
        "/api/v1/playground/send",
        json={"sample": "alertmanager_firing", "bot": "ops"},
        headers=same_origin,
    )
    assert sent.status_code == 200, sent.text
    assert gw.client.post("/api/v1/config/reload", json={}, headers=same_origin).status_code == 200
    for name in ("localhost", "127.0.0.1", "[::1]", f"localhost:{port_of(gw)}", "10.1.2.3"):
        answer = gw.client.get("/api/v1/status", headers={**auth, "Host": name})
        assert answer.status_code == 200, (name, answer.text)
    deadline = time.monotonic() + 10
    while history_size(gw) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert history_size(gw) == before + 3  # two notifications and the playground send


def test_probes_answer_any_host(gw: Running) -> None:
    for path in ("/healthz", "/readyz"):
        assert gw.client.get(path, headers={"Host": "evil.example"}).status_code == 200


def test_no_page_loads_scripts_from_another_site(gw: Running) -> None:
    auth = {"Authorization": BASIC}
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert gw.client.get(path, headers=auth).status_code == 404
    assert gw.client.get("/openapi.json", headers=auth).status_code == 200
    page = gw.client.get("/ui", headers=auth).text
    assert "cdn" not in page.lower() and "https://" not in page


def serve_with(emu: Emu, **server: Any) -> Any:
    config = console_config(emu.url, KEY, "memory://", server=server)
    return running_gateway(config)


def test_allowed_hosts_are_configurable(emu: Emu) -> None:
    auth = {"Authorization": BASIC}
    with serve_with(emu, allowed_hosts=["gateway.example.com"]) as gw:
        ok = gw.client.get("/api/v1/status", headers={**auth, "Host": "gateway.example.com:9095"})
        assert ok.status_code == 200
        assert (
            gw.client.get("/api/v1/status", headers={**auth, "Host": "evil.example"}).status_code
            == 421
        )
    with serve_with(emu, allowed_hosts=["*"]) as gw:
        assert (
            gw.client.get("/api/v1/status", headers={**auth, "Host": "any.example"}).status_code
            == 200
        )
        # Any name, but still no cross-site state change.
        refused = gw.client.post("/-/reload", headers={**auth, "Origin": "http://any.example"})
        assert refused.status_code == 403


def test_listening_on_every_address_needs_the_names_listed(emu: Emu) -> None:
    config = console_config(emu.url, KEY, "memory://", listen_host="0.0.0.0")
    with pytest.raises(ConfigError, match="server.allowed_hosts"):
        create_app(config)
    listed = console_config(
        emu.url, KEY, "memory://", listen_host="0.0.0.0", server={"allowed_hosts": ["gw.example"]}
    )
    create_app(listed)


def test_every_start_beyond_loopback_without_auth_warns(
    emu: Emu, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.gateway.harness import gateway_config

    open_config = gateway_config(
        emu.url, KEY, "memory://", listen_host="0.0.0.0", server={"allowed_hosts": ["gw.example"]}
    )
    with caplog.at_level(logging.WARNING, logger="wecom_bot.gateway"):
        create_app(open_config)
    assert "with no auth" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wecom_bot.gateway"):
        create_app(gateway_config(emu.url, KEY, "memory://"))  # loopback: no warning
        create_app(console_config(emu.url, KEY, "memory://", listen_host="0.0.0.0",
                                  server={"allowed_hosts": ["gw.example"]}))  # fmt: skip
    assert "with no auth" not in caplog.text


def test_the_container_refuses_to_start_open_unless_told(emu: Emu, tmp_path: Path) -> None:
    from tests.gateway.harness import gateway_config
    from tests.gateway.test_cli_gateway import wecom_bot

    config = gateway_config(emu.url, KEY, "memory://", server={"allowed_hosts": ["gw.example"]})
    path = write_config(tmp_path / "gw.yaml", config)
    # The image sets WECOM_BOT_GATEWAY_REQUIRE_AUTH=1 and listens on every address.
    refused = wecom_bot(
        "gateway", "--config", str(path), "--host", "0.0.0.0", "--port", "0",
        env={"WECOM_BOT_GATEWAY_REQUIRE_AUTH": "1"}, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert (
        "refusing to start" in refused.stderr and "WECOM_BOT_GATEWAY_REQUIRE_AUTH" in refused.stderr
    )
    containerfile = (Path(__file__).parents[2] / "deploy/container/Containerfile").read_text()
    assert "WECOM_BOT_GATEWAY_REQUIRE_AUTH=1" in containerfile


def test_a_refused_request_never_reaches_a_group(emu: Emu) -> None:
    # The reported attack end to end: a rebinding page posts through the playground.
    key = "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
    config = console_config(emu.url, key, "memory://")
    with running_gateway(config) as gw:
        for headers in (
            {"Host": "evil.example", "Content-Type": "application/json"},
            {"Origin": "http://evil.example", "Content-Type": "application/json"},
            {"Content-Type": "text/plain"},
        ):
            answer = gw.client.post(
                "/api/v1/playground/send",
                content=b'{"sample":"alertmanager_firing","bot":"ops"}',
                headers={**headers, "Authorization": BASIC},
            )
            assert answer.status_code in (403, 415, 421)
            answer = gw.client.post(
                "/alertmanager",
                content=httpx.Request("POST", "/", json=alertmanager_firing()).read(),
                headers={**headers, "Authorization": BASIC},
            )
            assert answer.status_code in (403, 415, 421)
        time.sleep(1.0)
    listed = emu.client.get("/api/groups")
    assert listed.status_code == 200
    from wecom_bot.masking import key_fingerprint

    assert key_fingerprint(key) not in listed.text


def test_every_refusal_is_counted(gw: Running) -> None:
    def rejected(reason: str) -> float:
        text = gw.client.get("/metrics", headers={"Authorization": BASIC}).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("wecom_bot_requests_rejected_total{")
            and f'reason="{reason}"' in line
        )

    before = {r: rejected(r) for r in ("host", "cross_site", "not_json")}
    auth = {"Authorization": BASIC}
    gw.client.post("/alertmanager", content=JSON_BODY, headers={**auth, "Host": "evil.example"})
    gw.client.post("/-/reload", headers={**auth, "Origin": "http://evil.example"})
    gw.client.post(
        "/webhook/deploy", content=b"x=1", headers={**auth, "Content-Type": "text/plain"}
    )
    assert {r: rejected(r) - before[r] for r in before} == {
        "host": 1,
        "cross_site": 1,
        "not_json": 1,
    }
