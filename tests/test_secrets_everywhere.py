"""A recognisable key, pushed through every surface, appears in no log line, error, metric,
page or answer (the CLI and the MCP server have their own such tests)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from pathlib import Path

import pytest

from tests.emulator.conftest import running
from tests.gateway.harness import gateway_config, running_gateway, wait_for, write_config
from wecom_bot import Bot, DeliveryError, MessageValidationError
from wecom_bot.cli.output import run
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.check import check_config
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.masking import key_fingerprint, mask_key
from wecom_bot.retry import RetryPolicy

CANARY = "CANARYKEY-5ec2e7-0f1e2d3c-4b5a6978-leakcheck"


def assert_clean(text: str, where: str) -> None:
    assert CANARY not in text, f"the key leaked into {where}"
    assert CANARY[6:-6] not in text, f"the middle of the key leaked into {where}"


def test_the_key_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[tuple[str, str]] = []
    with running(EmulatorSettings(rate=None)) as emu:
        group = key_fingerprint(CANARY)
        fast = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)

        # -- the SDK: every failure kind, with retries and logs --------------------------------
        with Bot(CANARY, base_url=emu.url, retry=fast, timeout=0.3) as bot:
            bot.send_text("hello")
            for fault in (
                {"kind": "errcode", "errcode": 93000},
                {"kind": "http_status", "status": 502, "count": 2},
                {"kind": "drop", "count": 2},
                {"kind": "delay", "delay_ms": 800, "count": 2},
            ):
                emu.client.post(f"/api/groups/{group}/faults", json=fault)
                with pytest.raises(DeliveryError) as info:
                    bot.send_text("fails")
                seen.append(("SDK error", f"{info.value} {info.value!r} {info.value.url}"))
            seen.append(("SDK repr", repr(bot) + repr(bot.endpoint)))
        with pytest.raises(MessageValidationError) as bad:
            Bot(CANARY, base_url=emu.url).send_text("")
        seen.append(("validation error", str(bad.value)))
        with Bot(CANARY, base_url="http://127.0.0.1:9", retry=False) as down:
            with pytest.raises(DeliveryError) as refused:
                down.send_text("x")
        seen.append(("connection error", f"{refused.value} {refused.value.__cause__}"))

        # -- the emulator's own surfaces --------------------------------------------------------
        for path in ("/", "/api/groups", f"/api/groups/{group}", f"/api/groups/{group}/messages",
                     f"/page/groups/{group}/entries", "/api/info"):  # fmt: skip
            answer = emu.client.get(path)
            seen.append((f"emulator {path}", answer.text + str(answer.headers)))

        # -- the gateway: answers, metrics, dead letters, reload errors, check ----------------
        config = gateway_config(emu.url, CANARY, f"sqlite:///{tmp_path / 'o.db'}", routes=[])
        path = write_config(tmp_path / "gw.yaml", config)
        emu.client.post(f"/api/groups/{group}/faults", json={"kind": "errcode", "errcode": 93000})
        with running_gateway(config, config_path=path) as gw:
            answer = gw.post("/alertmanager", alertmanager_firing())
            seen.append(("gateway answer", answer.text))
            wait_for(lambda: gw.metric("wecom_bot_messages_dead_lettered_total") >= 1,
                     what="a dead letter")  # fmt: skip
            seen.append(("metrics", gw.client.get("/metrics").text))
            path.write_text(path.read_text() + "\nbogus_key: 1\n")
            seen.append(("reload error", gw.client.post("/-/reload").text))
            dead = gw.app.state.gateway.store
        letters = asyncio.run(_dead(dead))
        seen.append(("dead letter reason", letters))
        report = check_config(write_config(tmp_path / "gw2.yaml", config))
        seen.append(("gateway check", str(report)))
        seen.append(("masked config", str(config.masked())))

    seen.append(("logs", caplog.text))
    assert any("93000" in text for where, text in seen if where == "dead letter reason")
    for where, text in seen:
        assert_clean(text, where)


async def _dead(store: object) -> str:
    from wecom_bot.store import SQLiteOutbox

    assert isinstance(store, SQLiteOutbox)
    reopened = SQLiteOutbox(store.path)
    try:
        return " ".join(r.last_error or "" for r in await reopened.list_dead())
    finally:
        await reopened.close()


MASKED = "CANA…heck"
"""The one form CANARY takes wherever it is shown (``mask_key``)."""


def _masked_forms(text: str) -> set[str]:
    """Every masked key in ``text`` (a run of key characters around the mask mark ``…``)."""
    return set(re.findall(r"[\w-]*…[\w-]*", text))


def test_a_key_is_shown_in_one_masked_form_everywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert mask_key(CANARY) == MASKED
    # A failing send, reported by the CLI: the URL in brackets is masked once and stays whole.
    err = io.StringIO()
    code = run(["send", "text", "x", "--key", CANARY, "--base-url", "http://127.0.0.1:9",
                "--retries", "0"], stderr=err, stdout=io.StringIO(), env={})  # fmt: skip
    assert code == 5
    assert err.getvalue().rstrip().endswith(f"?key={MASKED}]"), err.getvalue()
    assert _masked_forms(err.getvalue()) == {MASKED}

    # The dispatcher's and the gateway's log lines and the dead letter's reason.
    with running(EmulatorSettings(rate=None)) as emu:
        group = key_fingerprint(CANARY)
        for fault in ({"kind": "errcode", "errcode": -1}, {"kind": "errcode", "errcode": 93000}):
            emu.client.post(f"/api/groups/{group}/faults", json=fault)
        config = gateway_config(emu.url, CANARY, f"sqlite:///{tmp_path / 'o.db'}", routes=[])
        with running_gateway(config) as gw:
            assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
            wait_for(lambda: gw.metric("wecom_bot_messages_dead_lettered_total") >= 1,
                     what="a dead letter")  # fmt: skip
            store = gw.app.state.gateway.store
        reason = asyncio.run(_dead(store))
    assert f"[key {MASKED}]" in reason and _masked_forms(reason) == {MASKED}
    gateway_lines = [r.getMessage() for r in caplog.records if r.name.startswith("wecom_bot")]
    assert any("retry" in line and MASKED in line for line in gateway_lines), gateway_lines
    assert _masked_forms("\n".join(gateway_lines)) == {MASKED}
