"""Several named bots from the CLI's profile file; the tool picks one by name."""

from __future__ import annotations

from pathlib import Path

from tests.emulator.conftest import Emu, new_key
from tests.mcp.conftest import Harness, server_env, text_of
from wecom_bot.masking import key_fingerprint, mask_key


def payloads(emu: Emu, key: str) -> list[object]:
    answer = emu.client.get(f"/api/groups/{key_fingerprint(key)}/messages")
    if answer.status_code == 404:
        return []
    return [entry["payload"] for entry in answer.json()["messages"]]


def test_bots_from_a_profile_file(emu: Emu, tmp_path: Path) -> None:
    ops, ci = new_key(), new_key()
    (tmp_path / "ci.key").write_text(ci + "\n", encoding="utf-8")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        "default: ops\n"
        "profiles:\n"
        "  ops:\n"
        "    key_env: OPS_KEY\n"
        "  ci:\n"
        f"    key_file: {tmp_path / 'ci.key'}\n"
        "  broken:\n"
        "    key_env: NOT_SET_ANYWHERE\n",
        encoding="utf-8",
    )
    env = server_env(emu, None, tmp_path, OPS_KEY=ops)  # no WECOM_BOT_KEY: the file decides
    harness = Harness(env, tmp_path, ("--config", str(profiles))).start()
    try:
        result = harness.call("list_bots")
        listing = result.structured_content
        assert listing is not None and listing["default"] == "ops"
        bots = {bot["name"]: bot for bot in listing["bots"]}
        assert list(bots) == ["ops", "ci", "broken"]
        assert bots["ops"]["key"] == mask_key(ops) and bots["ci"]["key"] == mask_key(ci)
        assert bots["ci"]["base_url"] == emu.url  # WECOM_BOT_BASE_URL applies to profiles too
        assert bots["broken"]["available"] is False
        assert "NOT_SET_ANYWHERE is not set" in bots["broken"]["error"]
        shown = text_of(result)
        assert ops not in shown and ci not in shown

        harness.ok("send_text", content="to the default")
        harness.ok("send_markdown", content="to **ci**", bot="ci")
        assert "bot 'broken' is unavailable" in harness.error("send_text", content="x",
                                                                bot="broken")  # fmt: skip
        assert "configured bots: ops, ci, broken" in harness.error(
            "send_text", content="x", bot="cj"
        )
    finally:
        harness.close()
    assert payloads(emu, ops) == [{"msgtype": "text", "text": {"content": "to the default"}}]
    assert payloads(emu, ci) == [{"msgtype": "markdown", "markdown": {"content": "to **ci**"}}]
