"""The per-key limiter: a call waits up to the bound, then answers "retry after N s"."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.emulator.conftest import Emu, new_key
from tests.mcp.conftest import Harness, server_env
from wecom_bot.masking import key_fingerprint


def accepted(emu: Emu, key: str) -> int:
    group = emu.client.get(f"/api/groups/{key_fingerprint(key)}")
    return int(group.json()["accepted"]) if group.status_code == 200 else 0


def test_waits_within_the_bound_and_refuses_beyond_it(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    env = server_env(emu, key, tmp_path, WECOM_BOT_RATE="2/2s", WECOM_BOT_MAX_WAIT="1")
    harness = Harness(env, tmp_path).start()
    try:
        started = time.monotonic()
        harness.ok("send_text", content="one")
        harness.ok("send_text", content="two")
        # The window frees about 2 s after the first send: further than the 1 s bound.
        text = harness.error("send_text", content="three")
        match = re.search(r"rate limited, retry after ([\d.]+) s", text)
        assert match, text
        assert 1.0 < float(match.group(1)) <= 2.0
        assert "2 messages per 2 s" in text and "Nothing was sent" in text
        assert accepted(emu, key) == 2

        # Once the slot is less than the bound away, the call waits for it and sends.
        time.sleep(max(0.0, started + 1.3 - time.monotonic()))
        before = time.monotonic()
        harness.ok("send_text", content="four")
        assert time.monotonic() - before > 0.2
        assert accepted(emu, key) == 3

        # A split that needs more messages than a window allows is refused up front.
        text = harness.error("send_text", content="x" * 5000, split=True)
        assert "needs 3 messages" in text and "may send only 2 per 2 s" in text
        assert accepted(emu, key) == 3
    finally:
        harness.close()
