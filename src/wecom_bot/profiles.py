"""Where a message goes: the webhook target from flags, environment or a profile file.

A plain library module (no Typer, no printing): the CLI and the MCP server both call
:func:`resolve_target`. The first source that names a key wins, in this order:

1. ``--webhook URL`` or ``--key KEY`` (giving both is an error);
2. ``--profile NAME``, read from the profile file;
3. the environment: ``WECOM_BOT_WEBHOOK`` or ``WECOM_BOT_KEY``;
4. the profile file's ``default`` profile, if it names one.

The API base URL is, first found: ``--base-url``; the profile's ``base_url``;
``WECOM_BOT_BASE_URL``; the scheme and host of a webhook URL; WeCom's own host.

The profile file (``--config PATH``, else ``WECOM_BOT_CONFIG``, else
``$XDG_CONFIG_HOME/wecom-bot/profiles.yaml``, else ``~/.config/wecom-bot/profiles.yaml``)::

    default: ops            # optional: the profile used when nothing else names a target
    profiles:
      ops:
        key_env: OPS_BOT_KEY          # exactly one of webhook, key, key_env, key_file
        base_url: https://proxy.example.com   # optional
      ci:
        key_file: ~/.secrets/ci-bot.key

Every error is a :class:`~wecom_bot.errors.ConfigError` that names the field it is about
(``profiles.ops.key_env``); no message ever shows a key unmasked.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import Endpoint, parse_endpoint
from .errors import ConfigError
from .masking import mask_key

__all__ = [
    "ENV_BASE_URL",
    "ENV_CONFIG",
    "ENV_KEY",
    "ENV_WEBHOOK",
    "Profile",
    "Target",
    "default_config_path",
    "describe_profile",
    "describe_target",
    "load_profile_file",
    "load_profiles",
    "read_profile_file",
    "resolve_target",
]

ENV_WEBHOOK = "WECOM_BOT_WEBHOOK"
ENV_KEY = "WECOM_BOT_KEY"
ENV_BASE_URL = "WECOM_BOT_BASE_URL"
ENV_CONFIG = "WECOM_BOT_CONFIG"

_TOP_FIELDS = ("default", "profiles")
_PROFILE_FIELDS = ("base_url", "key", "key_env", "key_file", "webhook")
_KEY_SOURCES = ("webhook", "key", "key_env", "key_file")


@dataclass(frozen=True)
class Profile:
    """One named target in the profile file; exactly one key source is set.

    Attributes:
        name: the profile's name.
        webhook: a full webhook URL (holds the key).
        key: the key itself (prefer ``key_env`` or ``key_file`` to keep it out of the file).
        key_env: the name of an environment variable that holds the key.
        key_file: a file whose content (stripped) is the key; ``~`` is expanded.
        base_url: the API base URL for this profile (a proxy, the emulator).
    """

    name: str
    webhook: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    key_env: str | None = None
    key_file: str | None = None
    base_url: str | None = None


@dataclass(frozen=True)
class Target:
    """A resolved webhook target.

    Attributes:
        endpoint: base URL and key (the key is masked in its ``repr``).
        source: where the key came from, for messages (``--key``, ``profile 'ops'`` ...).
    """

    endpoint: Endpoint
    source: str

    @property
    def key(self) -> str:
        """The webhook key: a secret, never print it (use :attr:`masked_key`)."""
        return self.endpoint.key

    @property
    def base_url(self) -> str:
        """The API base URL."""
        return self.endpoint.base_url

    @property
    def masked_key(self) -> str:
        """The key masked for display (``693a…5aaa``)."""
        return self.endpoint.masked_key


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The profile file used when ``--config`` is not given.

    Args:
        env: the environment to read (default: ``os.environ``).

    Returns:
        ``WECOM_BOT_CONFIG`` if set, else ``wecom-bot/profiles.yaml`` under
        ``XDG_CONFIG_HOME`` or ``~/.config``.
    """
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        base = Path(env["XDG_CONFIG_HOME"])
    elif env.get("HOME"):
        base = Path(env["HOME"]) / ".config"
    else:
        base = Path.home() / ".config"
    return base / "wecom-bot" / "profiles.yaml"


def _unknown_field(where: str, name: object, valid: tuple[str, ...]) -> ConfigError:
    text = f"{where}{name}: unknown field"
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    if close:
        text += f"; did you mean '{close[0]}'?"
    return ConfigError(text + f" (valid: {', '.join(valid)})")


def _optional_str(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}{name}: must be a non-empty string")
    return value.strip()


def _parse_profile(name: str, data: Any, origin: str) -> Profile:
    where = f"{origin}: profiles.{name}."
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: profiles.{name}: must be a mapping of fields")
    for item in data:
        if item not in _PROFILE_FIELDS:
            raise _unknown_field(where, item, _PROFILE_FIELDS)
    given = [s for s in _KEY_SOURCES if data.get(s) is not None]
    if len(given) != 1:
        found = f"found {', '.join(given)}" if given else "found none"
        raise ConfigError(
            f"{origin}: profiles.{name}: needs exactly one of {', '.join(_KEY_SOURCES)} ({found})"
        )
    return Profile(
        name=name,
        webhook=_optional_str(data, "webhook", where),
        key=_optional_str(data, "key", where),
        key_env=_optional_str(data, "key_env", where),
        key_file=_optional_str(data, "key_file", where),
        base_url=_optional_str(data, "base_url", where),
    )


def _read_document(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"profile file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"profile file {path} cannot be read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"profile file {path} is not valid YAML{at}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"profile file {path}: the top level must be a mapping with 'profiles'")
    return document


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """Read and check the profiles of a profile file.

    Args:
        path: the YAML file.

    Returns:
        The profiles by name.

    Raises:
        ConfigError: the file is missing or unreadable, is not YAML, has an unknown field
            (the message suggests the nearest valid one), or a profile has not exactly one
            of ``webhook``, ``key``, ``key_env``, ``key_file``.
    """
    return _load(Path(path).expanduser()).strict()[0]


def load_profile_file(path: str | Path) -> tuple[dict[str, Profile], str | None]:
    """Read a profile file: its profiles by name and its ``default`` (None if it names none).

    Raises:
        ConfigError: as :func:`load_profiles`.
    """
    return _load(Path(path).expanduser()).strict()


def read_profile_file(
    path: str | Path,
) -> tuple[dict[str, Profile], str | None, dict[str, str]]:
    """Read a profile file, keeping the profiles that are fine when others are broken.

    Returns:
        The usable profiles by name, the ``default`` (None if it names none), and each broken
        profile's error (naming the file and line) by name.

    Raises:
        ConfigError: the file as a whole is unusable (missing, not YAML, unknown top field).
    """
    loaded = _load(Path(path).expanduser())
    return loaded.profiles, loaded.default, {k: str(v) for k, v in loaded.broken.items()}


def describe_profile(
    profile: Profile, env: Mapping[str, str], origin: str = "profiles"
) -> dict[str, Any]:
    """A key-safe description of a profile, for listings.

    Returns:
        ``name``; ``source``: where its key comes from (``key_env OPS_BOT_KEY``, ``key_file
        PATH``, ``key``, ``webhook``); ``key``: the key masked, or None when it cannot be read
        here; ``problem``: why not (None when it can); ``base_url`` (None: the default).
    """
    if profile.webhook is not None:
        source = "webhook"
    elif profile.key is not None:
        source = "key (inline)"
    elif profile.key_env is not None:
        source = f"key_env {profile.key_env}"
    else:
        source = f"key_file {profile.key_file}"
    try:
        raw = _profile_key(profile, env, origin)
        key: str | None = mask_key(parse_endpoint(raw).key if profile.webhook else raw)
        problem = None
    except ConfigError as exc:
        key, problem = None, str(exc)
    return {
        "name": profile.name,
        "source": source,
        "key": key,
        "problem": problem,
        "base_url": profile.base_url,
    }


def _profile_lines(path: Path) -> dict[str, int]:
    """The line (1-based) where each profile starts in the file, for error messages."""
    import yaml

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "profiles" and isinstance(value, yaml.MappingNode):
            return {str(k.value): k.start_mark.line + 1 for k, _ in value.value}
    return {}


@dataclass
class _Loaded:
    profiles: dict[str, Profile]
    default: str | None
    broken: dict[str, ConfigError]
    """Profiles that cannot be used, each with its error (naming the file and line)."""

    def strict(self) -> tuple[dict[str, Profile], str | None]:
        if self.broken:
            raise next(iter(self.broken.values()))
        return self.profiles, self.default


def _load(path: Path) -> _Loaded:
    document = _read_document(path)
    origin = str(path)
    for name in document:
        if name not in _TOP_FIELDS:
            raise _unknown_field(f"{origin}: ", name, _TOP_FIELDS)
    raw = document.get("profiles") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: profiles: must be a mapping of profile names to fields")
    profiles: dict[str, Profile] = {}
    broken: dict[str, ConfigError] = {}
    lines: dict[str, int] | None = None
    for name, data in raw.items():
        try:
            profiles[str(name)] = _parse_profile(str(name), data, origin)
        except ConfigError as exc:
            # One broken profile fails only the commands that use it (issue 27).
            lines = _profile_lines(path) if lines is None else lines
            line = lines.get(str(name))
            at = f"{origin}, line {line}: " if line else f"{origin}: "
            broken[str(name)] = ConfigError(at + str(exc).removeprefix(f"{origin}: "))
    default = document.get("default")
    if default is not None:
        if not isinstance(default, str) or (default not in profiles and default not in broken):
            raise ConfigError(
                f"{origin}: default: names no profile ({default!r}); "
                f"profiles: {', '.join(sorted([*profiles, *broken])) or 'none'}"
            )
    return _Loaded(profiles, default, broken)


def _profile_key(profile: Profile, env: Mapping[str, str], origin: str) -> str:
    where = f"{origin}: profiles.{profile.name}"
    if profile.webhook is not None:
        return profile.webhook
    if profile.key is not None:
        return profile.key
    if profile.key_env is not None:
        value = env.get(profile.key_env, "").strip()
        if not value:
            raise ConfigError(
                f"{where}.key_env: the environment variable {profile.key_env} is not set"
            )
        return value
    if profile.key_file is None:
        raise ConfigError(f"{where}: needs one of {', '.join(_KEY_SOURCES)}")
    key_path = Path(profile.key_file).expanduser()
    try:
        value = key_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}.key_file: cannot read {key_path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{where}.key_file: {key_path} is empty")
    return value


def _endpoint(webhook_or_key: str, base_url: str | None, what: str) -> Endpoint:
    try:
        return parse_endpoint(webhook_or_key, base_url)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def resolve_target(
    *,
    webhook: str | None = None,
    key: str | None = None,
    base_url: str | None = None,
    profile: str | None = None,
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Find the webhook target from explicit values, a profile or the environment.

    Args:
        webhook: a full webhook URL (``--webhook``).
        key: a bare key (``--key``).
        base_url: the API base URL (``--base-url``), overriding every other source.
        profile: a profile name (``--profile``).
        config_path: the profile file (``--config``); default :func:`default_config_path`.
        env: the environment to read (default: ``os.environ``).

    Returns:
        The target; its key is validated for shape but not checked with the API.

    Raises:
        ConfigError: no source names a key, both ``webhook`` and ``key`` are given, the
            profile or its file is wrong, or the key or base URL is malformed. The message
            names the flag, variable or profile field at fault.
    """
    env = os.environ if env is None else env
    if webhook and key:
        raise ConfigError("--webhook and --key: give one of them, not both")
    env_base = env.get(ENV_BASE_URL) or None
    if webhook:
        return Target(_endpoint(webhook, base_url or env_base, "--webhook"), "--webhook")
    if key:
        return Target(_endpoint(key, base_url or env_base, "--key"), "--key")

    path = Path(config_path).expanduser() if config_path else default_config_path(env)
    if profile:
        return _from_profile(_load(path), profile, path, base_url, env)

    if env.get(ENV_WEBHOOK):
        return Target(
            _endpoint(env[ENV_WEBHOOK], base_url or env_base, ENV_WEBHOOK), f"env {ENV_WEBHOOK}"
        )
    if env.get(ENV_KEY):
        return Target(_endpoint(env[ENV_KEY], base_url or env_base, ENV_KEY), f"env {ENV_KEY}")

    if config_path or path.exists():
        loaded = _load(path)
        if loaded.default is not None:
            return _from_profile(loaded, loaded.default, path, base_url, env)
    raise ConfigError(
        "no webhook target: pass --webhook URL or --key KEY, set "
        f"{ENV_WEBHOOK} or {ENV_KEY}, or name a profile with --profile "
        f"(profiles are read from {path})"
    )


def _from_profile(
    loaded: _Loaded,
    name: str,
    path: Path,
    base_url: str | None,
    env: Mapping[str, str],
) -> Target:
    if name in loaded.broken:
        raise loaded.broken[name]
    profiles = loaded.profiles
    found = profiles.get(name)
    if found is None:
        close = difflib.get_close_matches(name, list(profiles), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"--profile: no profile {name!r} in {path}{hint} (profiles: {known})")
    secret = _profile_key(found, env, str(path))
    base = base_url or found.base_url or env.get(ENV_BASE_URL) or None
    endpoint = _endpoint(secret, base, f"{path}: profiles.{name}")
    return Target(endpoint, f"profile {name!r}")


def describe_target(target: Target) -> str:
    """A one-line, key-safe description: ``693a…5aaa at https://qyapi... (from --key)``."""
    return f"{mask_key(target.key)} at {target.base_url} (from {target.source})"
