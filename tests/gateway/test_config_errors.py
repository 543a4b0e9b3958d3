"""A broken config never shows a secret, and a malformed ``base_url`` is refused at load.

The attack: a YAML error on a line that carries a key inline made PyYAML quote the line, and
the quote reached the reload answer, ``/api/v1/config``, ``/api/v1/status``, the log and
``gateway check``. Each test breaks a real config file under a running gateway and reads
every one of those places.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.conftest import Emu, running
from tests.gateway.console.support import BASIC, console_config
from tests.gateway.harness import running_gateway, write_config
from tests.gateway.test_cli_gateway import wecom_bot
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.config import load_config

KEY = "693a91f6-7a3b-4c5d-8e9f-0123456789ab"
PASSWORD = "correct-horse-battery-staple-42"

BROKEN = {
    "inline key, mapping error": f"bots:\n  ops:\n    key: {KEY}: oops\n",
    "flow mapping": f"bots:\n  ops: {{key: {KEY}, msgtype: [}}\n",
    "unterminated quote": f"bots:\n  ops:\n    key: '{KEY}\n    msgtype: text\n",
    "bad indent after": f"bots:\n  ops:\n    key: {KEY}\n   msgtype: [\n",
    "tab before the value": f"bots:\n  ops:\n    key:\t{KEY} ]\n",
    "pool entry": f"bots:\n  ops:\n    key_env: K\n    pool:\n      - {{key: {KEY}}}]\n",
    "key alone on its line": f"bots:\n  ops:\n    key: >\n      {KEY}\n     - x\n",
    "webhook url": f"base_url: http://h/cgi-bin/webhook/send?key={KEY}: x\nbots: {{}}\n",
    "password": f"auth:\n  password: {PASSWORD}: ]\nbots: {{}}\n",
    "token": f"auth: {{bearer_token: {PASSWORD}, x: [}}\nbots: {{}}\n",
}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


def fragments(secret: str, size: int = 6) -> list[str]:
    """Every run of ``size`` characters of ``secret``: none may be shown."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_no_fragment(text: str) -> None:
    for secret in (KEY, PASSWORD):
        shown = [f for f in fragments(secret) if f in text]
        assert not shown, f"{shown[:3]} of a secret in: {text[:400]}"


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN.keys())
def test_no_yaml_error_quotes_a_secret(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text=text)
    message = str(caught.value)
    assert "not valid YAML" in message and "line " in message
    assert_no_fragment(message)


def test_the_error_still_points_at_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text=BROKEN["inline key, mapping error"])
    assert "line 3" in str(caught.value) and "key: ***" in str(caught.value)


def test_a_broken_config_under_a_running_gateway_shows_no_key_anywhere(
    emu: Emu, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = console_config(emu.url, KEY, "memory://")
    path = write_config(tmp_path / "gw.yaml", config)
    auth = {"Authorization": BASIC}
    with running_gateway(config, config_path=path) as gw:
        for name, text in BROKEN.items():
            path.write_text(text, "utf-8")
            with caplog.at_level(logging.INFO):
                reloads = [
                    gw.client.post("/-/reload", headers=auth),
                    gw.client.post("/api/v1/config/reload", json={}, headers=auth),
                ]
            for answer in reloads:
                assert answer.status_code == 400, (name, answer.text)
                assert "not valid YAML" in answer.json()["message"]
            shown = [answer.text for answer in reloads]
            shown += [
                gw.client.get(p, headers=auth).text for p in ("/api/v1/config", "/api/v1/status")
            ]
            assert all("not valid YAML" in text for text in shown), name
            check = wecom_bot("gateway", "check", "--config", str(path))
            assert check.returncode == 2 and "not valid YAML" in check.stderr
            for text in [*shown, check.stdout, check.stderr, caplog.text]:
                assert_no_fragment(text)
            caplog.clear()


@pytest.mark.parametrize(
    "url",
    [
        "qyapi.weixin.qq.com",
        "htp://x",
        "http://",
        "http://host:99999",
        "http://h/?key=x",
        "http://a b",
    ],
)
def test_a_malformed_base_url_fails_at_load_naming_the_field(tmp_path: Path, url: str) -> None:
    for text, field in (
        (f"base_url: '{url}'\nbots: {{ops: {{key: {KEY}}}}}\n", "base_url"),
        (f"bots: {{ops: {{key: {KEY}, base_url: '{url}'}}}}\n", "bots.ops.base_url"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(text=text)
        assert f"{field}: must be a URL" in str(caught.value)
        path = tmp_path / "bad.yaml"
        path.write_text(text, "utf-8")
        check = wecom_bot("gateway", "check", "--config", str(path))
        assert check.returncode == 2 and f"{field}: must be a URL" in check.stderr
