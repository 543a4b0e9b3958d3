"""``--help`` at every level shows an example; send commands document the exit codes."""

from __future__ import annotations

import pytest

from wecom_bot import __version__

from .conftest import Cli

SEND_COMMANDS = ["text", "markdown", "markdown-v2", "image", "news", "file", "voice", "card",
                 "json"]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [[], ["send"], ["upload"], ["render"]] + [["send", c] for c in SEND_COMMANDS],
)
def test_every_help_shows_an_example(cli: Cli, argv: list[str]) -> None:
    result = cli(*argv, "--help")
    assert result.code == 0, result.stderr
    assert "Example:" in result.stdout
    assert "wecom-bot " in result.stdout.split("Example:", 1)[1]


@pytest.mark.parametrize("command", SEND_COMMANDS)
def test_send_help_documents_exit_codes(cli: Cli, command: str) -> None:
    text = " ".join(cli("send", command, "--help").stdout.split())
    for phrase in ["0 sent", "2 usage or validation error", "3 rejected by the API",
                   "4 still rate-limited", "5 network error"]:  # fmt: skip
        assert phrase in text


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"wecom-bot {__version__}"
