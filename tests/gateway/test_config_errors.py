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


# ------------------------------------------------------------------ values bounded at load

BOT = f"bots: {{ops: {{key: {KEY}}}}}\n"
ROUTE = "routes: [{name: r, bots: [ops], %s}]\n"
# (setting as YAML, the key the error names, the allowed range as the error gives it): each
# is tried just outside both ends, and at both ends.
BOUNDS = [
    ("lease: %s", "lease", ("999ms", "1s", "1d", "25h"), "1s and 1d"),
    ("coalesce_after: %s", "coalesce_after", ("-1", "0", "1d", "2d"), "0ms and 1d"),
    ("storm_interval: %s", "storm_interval", ("-1", "0", "1d", "2d"), "0ms and 1d"),
    ("idempotency_window: %s", "idempotency_window", ("-1", "0", "30d", "31d"), "0ms and 30d"),
    ("history_retention: %s", "history_retention", ("59s", "1m", "3650d", "3651d"),
     "1m and 3650d"),
    ("max_body_bytes: %s", "max_body_bytes", ("1023", "1024", "1073741824", "1073741825"),
     "1 KiB (1024) and 1 GiB (1073741824)"),
    ("max_alerts_per_message: %s", "max_alerts_per_message", ("0", "1", "1000", "1001"),
     "1 and 1,000"),
    ("storm_burst: %s", "storm_burst", ("0", "1", "10000", "10001"), "1 and 10,000"),
    ("listen_port: %s", "listen_port", ("-1", "0", "65535", "65536"), "0 and 65,535"),
    ("rate_margin: %s", "rate_margin", ("-0.1", "0", "1", "1.5"), "0 and 1"),
    ("server: {header_timeout: %s}", "server.header_timeout", ("99ms", "100ms", "10m", "11m"),
     "100ms and 10m"),
    ("server: {body_timeout: %s}", "server.body_timeout", ("0", "100ms", "1h", "3000000000"),
     "100ms and 1h"),
    ("server: {keep_alive: %s}", "server.keep_alive", ("0", "100ms", "1h", "2h"),
     "100ms and 1h"),
    ("server: {max_connections: %s}", "server.max_connections", ("0", "1", "1000000",
     "1000001"), "1 and 1,000,000"),
    ("server: {max_connections_per_client: %s}", "server.max_connections_per_client",
     ("0", "1", "1000000", "1000001"), "1 and 1,000,000"),
    ("server: {max_api_body_bytes: %s}", "server.max_api_body_bytes",
     ("1023", "1024", "1073741824", "1073741825"), "1 KiB (1024) and 1 GiB (1073741824)"),
    ("server: {max_inflight_body_bytes: %s}", "server.max_inflight_body_bytes",
     ("1048575", "1048576", "68719476736", "68719476737"),
     "1 MiB (1048576) and 64 GiB (68719476736)"),
    (ROUTE % "remind_every: %s", "routes.0.remind_every", ("59s", "1m", "30d", "31d"),
     "1m and 30d"),
    (ROUTE % "escalate: [{after: %s}]", "routes.0.escalate.0.after", ("999ms", "1s", "30d",
     "31d"), "1s and 30d"),
    ("template_limits: {timeout: %s}", "template_limits.timeout", ("9ms", "10ms", "10m", "11m"),
     "10ms and 10m"),
    ("template_limits: {playground_timeout: %s}", "template_limits.playground_timeout",
     ("0", "10ms", "10m", "1h"), "10ms and 10m"),
    ("template_limits: {max_text: %s}", "template_limits.max_text", ("999", "1000",
     "1000000000", "1000000001"), "1,000 and 1,000,000,000"),
    ("template_limits: {max_steps: %s}", "template_limits.max_steps", ("999", "1000",
     "100000000000", "100000000001"), "1,000 and 100,000,000,000"),
    ("template_limits: {max_built: %s}", "template_limits.max_built", ("999", "1000",
     "100000000000", "100000000001"), "1,000 and 100,000,000,000"),
    ("template_limits: {memory_mb: %s}", "template_limits.memory_mb", ("127", "128", "1048576",
     "1048577"), "128 and 1,048,576"),
    ("template_limits: {workers: %s}", "template_limits.workers", ("0", "1", "32", "33"),
     "1 and 32"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "key", "values", "allowed"), BOUNDS, ids=[b[1] for b in BOUNDS]
)
def test_every_duration_count_and_size_is_bounded_at_load(
    setting: str, key: str, values: tuple[str, str, str, str], allowed: str
) -> None:
    below, low, high, above = values
    for fits in (low, high):
        load_config(text=BOT + setting % fits)
    for value in (below, above):
        with pytest.raises(ConfigError) as caught:
            load_config(text=BOT + setting % value)
        message = str(caught.value)
        assert f"{key}: must be between {allowed}, got " in message, message
        assert value in message.split(", got ", 1)[1].replace("'", ""), message


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e+400"])
def test_no_duration_may_be_nan_or_infinite(value: str) -> None:
    for setting in ("lease: %s", "server: {body_timeout: %s}", ROUTE % "remind_every: %s"):
        with pytest.raises(ConfigError, match="must be between"):
            load_config(text=BOT + setting % value)


def test_a_bot_timeout_and_the_rate_are_bounded() -> None:
    for timeout in ("0", "-1", "11m"):
        with pytest.raises(ConfigError, match=r"bots\.ops\.timeout: must be between 100ms and 10m"):
            load_config(text=f"bots: {{ops: {{key: {KEY}, timeout: {timeout}}}}}\n")
    assert (
        load_config(text=f"bots: {{ops: {{key: {KEY}, timeout: 30s}}}}\n").bots["ops"].timeout == 30
    )
    for rate in ("100000/1s", "20/1ms", "20/48h"):
        with pytest.raises(ConfigError, match=f"rate: must be 1 to 10,000 sends.*got '{rate}'"):
            load_config(text=BOT + f"rate: {rate}\n")


def test_a_reload_out_of_range_keeps_the_running_config(emu: Emu, tmp_path: Path) -> None:
    config = console_config(emu.url, KEY, "memory://")
    path = write_config(tmp_path / "gw.yaml", config)
    auth = {"Authorization": BASIC}
    with running_gateway(config, config_path=path) as gw:
        text = path.read_text("utf-8")
        for broken in ("lease: 3000000000\n", "server:\n  body_timeout: 3000000000\n"):
            path.write_text(text + broken, "utf-8")
            answer = gw.client.post("/-/reload", headers=auth)
            assert answer.status_code == 400, answer.text
            assert "must be between" in answer.json()["message"]
            assert "3000000000" in answer.json()["message"]
        running = gw.client.get("/api/v1/config", headers=auth).json()
        assert running["config"]["lease"] == config.lease
        assert running["config"]["server"]["body_timeout"] == config.server.body_timeout
        assert running["last_reload"]["ok"] is False
