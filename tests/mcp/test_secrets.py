"""A recognisable key must appear in no tool result, no error and no log line."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.emulator.conftest import Emu
from tests.mcp.conftest import Harness, server_env, text_of
from wecom_bot.masking import key_fingerprint

CANARY = f"CANARY-{uuid.uuid4().hex}-LEAK"


def test_the_key_appears_in_no_output(emu: Emu, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        "profiles:\n"
        "  dead:\n"
        "    key_env: CANARY_KEY\n"
        "    base_url: http://127.0.0.1:1\n",  # nothing listens there: a transport error
        encoding="utf-8",
    )
    env = server_env(
        emu, CANARY, tmp_path, CANARY_KEY=CANARY, WECOM_BOT_RATE="8/60s", WECOM_BOT_MAX_WAIT="0"
    )
    harness = Harness(env, tmp_path, ("--config", str(profiles), "--log-level", "DEBUG")).start()
    outputs: list[str] = []
    try:

        def call(tool: str, **arguments: object) -> None:
            outputs.append(text_of(harness.call(tool, **arguments)))

        call("list_bots")
        call("send_text", content="fine")
        call("preview_message", payload={"msgtype": "text", "text": {"content": CANARY[:6]}})
        call("send_text", content="")  # invalid
        call("send_text", content="x", bot="dead")  # connection refused
        emu.client.post(
            f"/api/groups/{key_fingerprint(CANARY)}/faults",
            json={"kind": "errcode", "errcode": 93000},
        )
        call("send_text", content="rejected")  # errcode 93000
        emu.client.post(
            f"/api/groups/{key_fingerprint(CANARY)}/faults",
            json={"kind": "errcode", "errcode": 45009},
        )
        call("send_text", content="throttled")  # errcode 45009: the key is blocked a window
        call("send_markdown", content="local limit")  # so the local limiter refuses this one
        call("send_file", path=str(tmp_path / "missing.txt"))
        stderr = harness.stderr
    finally:
        harness.close()

    assert any("errcode 93000" in text for text in outputs)
    assert any("errcode 45009" in text for text in outputs)
    assert "rate limited, retry after" in outputs[-2]
    assert any("ConnectError" in text or "request failed" in text for text in outputs)
    assert "HTTP Request: POST" in stderr  # the client's request log was written, masked
    squeezed = "".join(stderr.split())  # the log handler may wrap a long line anywhere
    for text in [*outputs, squeezed]:
        assert CANARY not in text
        assert CANARY[4:-4] not in text
