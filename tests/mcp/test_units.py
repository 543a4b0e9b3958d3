"""In-process checks of the bot registry, the published schemas and the command's failures."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import wecom_bot.mcp as package
from tests.mcp.conftest import CONSOLE_SCRIPT
from wecom_bot.errors import ConfigError
from wecom_bot.mcp import TOOL_NAMES, BotRegistry, WeComTools, read_limits
from wecom_bot.ratelimit import Rate

KEY = "0123456789abcdef-0123"


def test_public_api_is_complete_and_sorted() -> None:
    public = {name for name in vars(package) if not name.startswith("_")}
    modules = {"bots", "files", "server", "tools"}
    assert set(package.__all__) == public - modules
    # Constants first, then the rest in code-point order (the repository's convention).
    assert package.__all__ == sorted(package.__all__, key=lambda n: (not n.isupper(), n))


def test_limits_default_and_from_environment() -> None:
    assert read_limits({}) == (Rate(20, 60.0), 10.0)
    assert read_limits({"WECOM_BOT_RATE": "3/2s", "WECOM_BOT_MAX_WAIT": "0.5"}) == (
        Rate(3, 2.0),
        0.5,
    )
    with pytest.raises(ConfigError, match="WECOM_BOT_RATE"):
        read_limits({"WECOM_BOT_RATE": "fast"})
    with pytest.raises(ConfigError, match="WECOM_BOT_MAX_WAIT"):
        read_limits({"WECOM_BOT_MAX_WAIT": "soon"})


def test_registry_needs_a_bot_and_never_shows_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no bot configured"):
        BotRegistry.from_environment({"HOME": str(tmp_path)})
    registry = BotRegistry.from_environment({"WECOM_BOT_KEY": KEY, "HOME": str(tmp_path)})
    assert registry.default == "default"
    assert registry.get(None).endpoint is not None
    assert KEY not in repr(registry) and KEY not in str(registry.describe())
    with pytest.raises(ConfigError, match="no bot named 'x'"):
        registry.get("x")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_schemas_come_from_the_message_models(tmp_path: Path) -> None:
    registry = BotRegistry.from_environment({"WECOM_BOT_KEY": KEY, "HOME": str(tmp_path)})
    tools = {tool.name: tool.parameters for tool in WeComTools(registry).tools()}
    assert list(tools) == list(TOOL_NAMES)
    for name, schema in tools.items():
        for ref in _refs(schema):  # every model reference resolves from the root
            assert ref.removeprefix("#/$defs/") in schema.get("$defs", {}), (name, ref)
    articles = tools["send_news"]["properties"]["articles"]
    assert (articles["minItems"], articles["maxItems"]) == (1, 8)
    article = tools["send_news"]["$defs"]["Article"]
    assert article["required"] == ["title", "url"] and article["additionalProperties"] is False
    card = tools["send_template_card"]
    assert {ref.rsplit("/", 1)[1] for ref in _refs(card["properties"]["card"])} == {
        "TextNoticeCard",
        "NewsNoticeCard",
    }
    assert "card_action" in card["$defs"]["TextNoticeCard"]["required"]
    payload = tools["preview_message"]["properties"]["payload"]
    assert payload["properties"]["msgtype"]["enum"][0] == "text"


def test_command_without_a_bot_exits_2_with_a_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "mcp"],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "no bot configured" in done.stderr and done.stdout == ""


def test_log_filter_masks_bare_keys_and_tracebacks() -> None:
    import logging
    import sys

    from wecom_bot.mcp.server import _SecretFilter

    try:
        raise RuntimeError(f"boom near {KEY}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "sent with %s", (KEY,), exc_info)
    assert _SecretFilter([KEY]).filter(record)
    text = logging.Formatter().format(record)
    assert KEY not in text
    assert "sent with 0123…0123" in text and "RuntimeError: boom near 0123…0123" in text
