"""The emulator's own controls (faults, reset, deletes, the page) answer only to its names and
to its own pages; its WeCom API answers anyone, like WeCom."""

from __future__ import annotations

import pytest

from tests.emulator.conftest import Emu, running
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.masking import key_fingerprint

CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
]


def controls(key: str) -> list[tuple[str, str, dict[str, object] | None]]:
    group = key_fingerprint(key)
    return [
        ("POST", f"/api/groups/{group}/faults", {"kind": "errcode", "errcode": 45009}),
        ("DELETE", f"/api/groups/{group}/faults", None),
        ("DELETE", f"/api/groups/{group}", None),
        ("POST", "/api/reset", None),
    ]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: "-".join(h.values()))
def test_a_cross_site_page_cannot_inject_faults_or_reset(
    emu: Emu, key: str, headers: dict[str, str]
) -> None:
    assert emu.send(key, {"msgtype": "text", "text": {"content": "kept"}}).json()["errcode"] == 0
    for method, path, body in controls(key):
        answer = emu.client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (method, path, answer.text)
    # Nothing happened: no fault is pending, the message is still there.
    assert emu.client.get(f"/api/groups/{key_fingerprint(key)}/faults").json()["faults"] == []
    assert [e["payload"]["text"]["content"] for e in emu.entries(key)] == ["kept"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io"])
def test_a_rebound_name_reaches_no_control_and_no_page(emu: Emu, key: str, host: str) -> None:
    rebound = {"Host": host, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    for method, path, body in controls(key):
        answer = emu.client.request(method, path, json=body, headers=rebound)
        assert answer.status_code == 421, (method, path, answer.text)
        assert "--allow-host" in answer.json()["error"]
    for path in ("/", "/api/groups", "/api/messages"):
        assert emu.client.get(path, headers=rebound).status_code == 421


def test_the_wecom_api_stays_lenient(emu: Emu, key: str) -> None:
    # Any Host, any Origin, any type: WeCom answers them all (with an errcode when bad).
    headers = {"Host": "qyapi.weixin.qq.com", "Origin": "http://evil.example"}
    answer = emu.client.post(
        "/cgi-bin/webhook/send",
        params={"key": key},
        json={"msgtype": "text", "text": {"content": "from anywhere"}},
        headers=headers,
    )
    assert answer.json()["errcode"] == 0
    plain = emu.send_raw(key, b'{"msgtype":"text","text":{"content":"plain"}}', "text/plain")
    assert plain.status_code == 200


def test_its_own_page_and_scripts_still_control_it(emu: Emu, key: str) -> None:
    same_origin = {"Origin": emu.url, "Sec-Fetch-Site": "same-origin"}
    group = key_fingerprint(key)
    emu.send(key, {"msgtype": "text", "text": {"content": "x"}})
    fault = {"kind": "errcode", "errcode": 45009}
    added = emu.client.post(f"/api/groups/{group}/faults", json=fault, headers=same_origin)
    assert added.status_code == 201, added.text
    assert emu.client.post(f"/api/groups/{group}/faults", json=fault).status_code == 201
    assert emu.client.delete(f"/api/groups/{group}/faults", headers=same_origin).status_code == 200


def test_allowed_names_are_configurable() -> None:
    with running(EmulatorSettings(rate=None, allowed_hosts=("emulator.test",))) as emu:
        assert (
            emu.client.get("/api/groups", headers={"Host": "emulator.test:80"}).status_code == 200
        )
        assert emu.client.get("/api/groups", headers={"Host": "localhost"}).status_code == 421
    with running(EmulatorSettings(rate=None, allowed_hosts=("*",))) as emu:
        assert emu.client.get("/api/groups", headers={"Host": "any.example"}).status_code == 200
