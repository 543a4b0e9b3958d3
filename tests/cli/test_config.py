"""Target resolution: flags, environment, profile files (library functions and through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wecom_bot.errors import ConfigError
from wecom_bot.profiles import Profile, load_profiles, resolve_target

from .conftest import Cli, Emulator

PROFILES = """\
default: ops
profiles:
  ops:
    key_env: OPS_BOT_KEY
    base_url: {base_url}
  ci:
    key_file: {key_file}
  raw:
    webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=rawkey-0123456789
"""


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    key_file = tmp_path / "ci.key"
    key_file.write_text("cikey-0123456789\n", "utf-8")
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES.format(base_url="http://127.0.0.1:1", key_file=key_file), "utf-8")
    return path


def test_load_profiles_reads_every_source(profile_file: Path) -> None:
    profiles = load_profiles(profile_file)
    assert set(profiles) == {"ops", "ci", "raw"}
    assert profiles["ops"] == Profile(name="ops", key_env="OPS_BOT_KEY",
                                      base_url="http://127.0.0.1:1")  # fmt: skip


def test_flags_win_over_profile_and_environment(profile_file: Path) -> None:
    env = {"WECOM_BOT_KEY": "envkey-0123456789", "OPS_BOT_KEY": "opskey-0123456789"}
    target = resolve_target(key="flagkey-0123456789", config_path=profile_file, env=env)
    assert (target.key, target.source) == ("flagkey-0123456789", "--key")
    assert target.base_url == "https://qyapi.weixin.qq.com"


def test_profile_wins_over_environment(profile_file: Path) -> None:
    env = {"WECOM_BOT_KEY": "envkey-0123456789", "CI": "1"}
    target = resolve_target(profile="ci", config_path=profile_file, env=env)
    assert target.key == "cikey-0123456789"
    assert target.source == "profile 'ci'"


def test_environment_then_default_profile(profile_file: Path) -> None:
    env = {"WECOM_BOT_CONFIG": str(profile_file), "OPS_BOT_KEY": "opskey-0123456789"}
    from_default = resolve_target(env=env)
    assert (from_default.key, from_default.base_url) == ("opskey-0123456789", "http://127.0.0.1:1")
    env["WECOM_BOT_WEBHOOK"] = "http://127.0.0.1:2/cgi-bin/webhook/send?key=hookkey-0123456789"
    from_env = resolve_target(env=env)
    assert (from_env.key, from_env.base_url) == ("hookkey-0123456789", "http://127.0.0.1:2")


def test_base_url_precedence(profile_file: Path) -> None:
    env = {"WECOM_BOT_BASE_URL": "http://127.0.0.1:3", "OPS_BOT_KEY": "opskey-0123456789"}
    assert resolve_target(key="k-0123456789ab", env=env).base_url == "http://127.0.0.1:3"
    flag = resolve_target(key="k-0123456789ab", base_url="http://127.0.0.1:4", env=env)
    assert flag.base_url == "http://127.0.0.1:4"
    profile = resolve_target(profile="ops", config_path=profile_file, env=env)
    assert profile.base_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            "profiles:\n  ops:\n    kee: abc\n",
            "profiles.ops.kee: unknown field; did you mean 'key'?",
        ),
        ("profile:\n  ops: {}\n", "profile: unknown field; did you mean 'profiles'?"),
        ("profiles:\n  ops:\n    base_url: http://x\n", "needs exactly one of"),
        ("profiles:\n  ops:\n    key: a\n    key_env: B\n", "found key, key_env"),
        ("profiles:\n  ops: [1]\n", "profiles.ops: must be a mapping"),
        ("default: nope\nprofiles:\n  ops:\n    key: a\n", "default: names no profile"),
        ("profiles: [\n", "is not valid YAML at line"),
    ],
)
def test_profile_file_errors_name_the_field(tmp_path: Path, document: str, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(document, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profiles(path)
    assert expected in str(caught.value)


def test_profile_errors_at_resolution_name_the_field(profile_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"profiles\.ops\.key_env: .*OPS_BOT_KEY is not set"):
        resolve_target(profile="ops", config_path=profile_file, env={})
    with pytest.raises(ConfigError, match="no profile 'opz'.*did you mean 'ops'"):
        resolve_target(profile="opz", config_path=profile_file, env={})
    with pytest.raises(ConfigError, match="--webhook and --key"):
        resolve_target(webhook="http://h/?key=abc", key="abc", env={})
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_target(profile="ops", config_path=profile_file.with_name("none.yaml"), env={})


def test_profile_through_the_cli(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(f"profiles:\n  team:\n    key_env: TEAM_KEY\n    base_url: {emulator.url}\n")
    result = cli("send", "text", "via profile", "--profile", "team", "--config", str(path),
                 env={"TEAM_KEY": key})  # fmt: skip
    assert result.code == 0, result.stderr
    assert emulator.accepted(key)[0]["payload"]["text"]["content"] == "via profile"


def test_default_profile_file_in_home(cli: Cli, emulator: Emulator, key: str) -> None:
    config_dir = cli.home / ".config" / "wecom-bot"
    config_dir.mkdir(parents=True)
    (config_dir / "profiles.yaml").write_text(
        f"default: home\nprofiles:\n  home:\n    key: {key}\n    base_url: {emulator.url}\n"
    )
    result = cli("send", "text", "from home")
    assert result.code == 0, result.stderr
    assert len(emulator.accepted(key)) == 1


def test_environment_through_the_cli(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli("send", "text", "via env",
                 env={"WECOM_BOT_KEY": key, "WECOM_BOT_BASE_URL": emulator.url})  # fmt: skip
    assert result.code == 0, result.stderr
    assert len(emulator.accepted(key)) == 1


def test_bad_profile_exits_2_naming_the_field(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles:\n  ops:\n    key_fil: /x\n")
    result = cli("send", "text", "hi", "--profile", "ops", "--config", str(path))
    assert result.code == 2
    assert "profiles.ops.key_fil: unknown field; did you mean 'key_file'?" in result.stderr
