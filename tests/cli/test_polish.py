"""The command line's manners: completion, one error style, ``--json`` for every outcome
(usage errors too), no type beside a flag in ``--help``, and a listing of the profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wecom_bot.cli.main import build_command

from .conftest import Cli


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths.extend(_command_paths(sub, (*path, name)))
    return paths


def test_shell_completion_is_offered(cli: Cli) -> None:
    assert "--install-completion" in cli("--help").stdout
    script = cli("--show-completion", "bash")
    assert script.code == 0
    assert "_WECOM_BOT_COMPLETE=complete_bash" in script.stdout


def test_no_help_shows_a_type_beside_a_flag(cli: Cli) -> None:
    paths = _command_paths(build_command())
    assert ("gateway", "routes", "test") in paths and ("profiles",) in paths
    for path in paths:
        result = cli(*path, "--help")
        assert result.code == 0, path
        assert "<bool>" not in result.stdout, path
    assert "--dry-run" in cli("send", "text", "--help").stdout


BAD_CALLS = [
    (["send", "text", "hi", "--bogus"], 2, "no such option: --bogus"),
    (["send", "text", "hi", "--retries", "many"], 2, "invalid value for '--retries'"),
    (["send", "text", "hi"], 2, "no webhook target"),
    (["send", "text", "x" * 2100, "--key", "k" * 36], 2, "text.content is 2100 bytes"),
    (["render"], 2, "missing argument"),
    (["profiles", "--config", "/nonexistent/p.yaml"], 2, "no such file"),
    (["gateway"], 2, "give the configuration with --config"),
    (["gateway", "check", "--config", "/nonexistent/gw.yaml"], 2, "cannot read config"),
    (["emulator", "--port", "0", "--rate", "fast"], 2, "rate"),
    (["emulator", "--port", "70000"], 2, "--port must be 0-65535"),
]


@pytest.mark.parametrize(("argv", "code", "says"), BAD_CALLS)
def test_every_error_is_one_line_in_one_style(
    cli: Cli, argv: list[str], code: int, says: str
) -> None:
    result = cli(*argv)
    assert result.code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert says.lower() in lines[0].lower()
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "text", "hi", "--bogus", "--json"],
        ["send", "text", "hi", "--json"],
        ["gateway", "check", "--config", "/nonexistent/gw.yaml", "--json"],
        ["profiles", "--config", "/nonexistent/p.yaml", "--json"],
        ["gateway", "routes", "test", "-c", "/nonexistent/gw.yaml", "a=b", "--json"],
    ],
)
def test_json_describes_failures_usage_errors_included(cli: Cli, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["exit_code"] == 2
    assert document["error"]["message"] and document["error"]["type"]


PROFILES = """\
default: ops
profiles:
  ops: {key_env: OPS_BOT_KEY, base_url: "http://127.0.0.1:8080"}
  ci: {key_file: /nonexistent/ci.key}
  hook: {webhook: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"}
"""
OPS_KEY = "0ps0ps00-1111-2222-3333-secretsecret"


def test_profiles_lists_each_target_with_its_key_masked(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES, "utf-8")
    env = {"OPS_BOT_KEY": OPS_KEY, "WECOM_BOT_CONFIG": str(path)}
    result = cli("profiles", env=env)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: 3 profile(s)"
    assert "* ops · key_env OPS_BOT_KEY · 0ps0…cret · http://127.0.0.1:8080" in lines
    assert any(line.startswith("  ci · key_file") and "not readable here" in line for line in lines)
    assert "  hook · webhook · 693a…5aaa" in lines
    listing = json.loads(cli("profiles", "--json", env=env).stdout)
    assert listing["default"] == "ops" and [p["name"] for p in listing["profiles"]] == [
        "ops", "ci", "hook"
    ]  # fmt: skip
    assert listing["profiles"][1]["key"] is None and listing["profiles"][1]["problem"]
    for output in cli.outputs:
        assert OPS_KEY not in output and "7xxx-4bc4" not in output


def test_profiles_without_a_file_says_where_it_looked(cli: Cli) -> None:
    result = cli("profiles")
    assert result.code == 0
    assert result.stdout.startswith("no profile file at ") and "profiles.yaml" in result.stdout
