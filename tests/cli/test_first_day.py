"""Issue 27, install and start: checks without secrets, broken profiles, start-up imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import Cli, Emulator

SECRET = "s3cret-signing-value-0123456789"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wecom_bot", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def _env_without(*names: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env


def _actions_config(tmp_path: Path) -> Path:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "external_url: https://alerts-gw.example.com\n"
        "actions:\n  secret_env: WECOM_BOT_ACTIONS_SECRET\n"
        "bots:\n  ops:\n    key_env: WECOM_BOT_KEY\n"
        "routes:\n  - name: all\n    bots: [ops]\n",
        "utf-8",
    )
    return config


def test_check_runs_without_the_actions_secret_and_names_it(tmp_path: Path) -> None:
    config = _actions_config(tmp_path)
    env = _env_without("WECOM_BOT_ACTIONS_SECRET", "WECOM_BOT_KEY")
    result = _run("gateway", "check", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert "actions.secret: not set (ok for check)" in result.stdout
    assert "WECOM_BOT_ACTIONS_SECRET" in result.stdout
    assert "[ok ] route all" in result.stdout
    report = json.loads(_run("gateway", "check", "--config", str(config), "--json", env=env).stdout)
    assert report["ok"] is True
    assert sorted(report["unresolved_keys"]) == ["actions.secret", "bots.ops"]


def test_check_strict_fails_on_an_unset_secret_and_passes_when_set(tmp_path: Path) -> None:
    config = _actions_config(tmp_path)
    unset = _run("gateway", "check", "--config", str(config), "--strict",
                 env=_env_without("WECOM_BOT_ACTIONS_SECRET", "WECOM_BOT_KEY"))  # fmt: skip
    assert unset.returncode == 2
    assert "--strict: not set: actions.secret, bots.ops" in unset.stderr
    key = "k" * 36
    both = _run("gateway", "check", "--config", str(config), "--strict",
                env=_env_without(WECOM_BOT_ACTIONS_SECRET=SECRET, WECOM_BOT_KEY=key))  # fmt: skip
    assert both.returncode == 0, both.stderr
    assert "not set" not in both.stdout
    for output in (unset.stdout + unset.stderr, both.stdout + both.stderr):
        assert SECRET not in output and key not in output


def _profile_file(tmp_path: Path, emulator_url: str, key: str, default: str = "ops") -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_text(
        f"default: {default}\n"
        "profiles:\n"
        f"  ops:\n    key: {key}\n    base_url: {emulator_url}\n"
        "  broken:\n    key_env: A\n    key_file: /b\n"
        "  typo:\n    kee: x\n",
        "utf-8",
    )
    return path


def test_a_broken_profile_does_not_break_the_others(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = _profile_file(tmp_path, emulator.url, key)
    named = cli("send", "text", "one", "--profile", "ops", "--config", str(path))
    assert named.code == 0, named.stderr
    by_default = cli("send", "text", "two", "--config", str(path))
    assert by_default.code == 0, by_default.stderr
    assert [m["payload"]["text"]["content"] for m in emulator.accepted(key)] == ["one", "two"]


def test_the_command_using_a_broken_profile_names_its_file_and_line(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = _profile_file(tmp_path, emulator.url, key)
    both = cli("send", "text", "x", "--profile", "broken", "--config", str(path))
    assert both.code == 2
    assert f"{path}, line 6: profiles.broken: needs exactly one of" in both.stderr
    typo = cli("send", "text", "x", "--profile", "typo", "--config", str(path))
    assert typo.code == 2
    assert f"{path}, line 9: profiles.typo." in typo.stderr and "kee" in typo.stderr
    as_default = _profile_file(tmp_path, emulator.url, key, default="typo")
    assert cli("send", "text", "x", "--config", str(as_default)).code == 2
    assert emulator.accepted(key) == []


def test_profiles_lists_the_usable_ones_and_names_the_broken_ones(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = _profile_file(tmp_path, emulator.url, key)
    listing = cli("profiles", "--config", str(path))
    assert listing.code == 2
    assert "3 profile(s)" in listing.stdout and "* ops · key" in listing.stdout
    assert f"! {path}, line 6: profiles.broken" in listing.stdout
    assert f"! {path}, line 9: profiles.typo" in listing.stdout
    assert key not in listing.output
    as_json = json.loads(cli("profiles", "--config", str(path), "--json").stdout)
    assert [p["name"] for p in as_json["profiles"]] == ["ops"]
    assert sorted(as_json["broken"]) == ["broken", "typo"]
