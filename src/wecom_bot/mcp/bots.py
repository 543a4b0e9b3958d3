"""The robots an MCP server may post to, by name, with one shared per-key rate limiter.

Where the bots come from (the same sources as the CLI, see :mod:`wecom_bot.profiles`):

* ``WECOM_BOT_WEBHOOK`` or ``WECOM_BOT_KEY`` (with ``WECOM_BOT_BASE_URL``): one bot named
  ``default``;
* the CLI's profile file (``--config``, ``WECOM_BOT_CONFIG`` or the default path, if it
  exists): one bot per profile, under the profile's name.

The default bot (used when a tool call names none) is the environment's bot, else the
profile file's ``default``, else the only bot there is. A profile whose key cannot be read
(an unset ``key_env``, say) is listed as unavailable with the reason instead of stopping the
server, so the other bots stay usable.

Keys stay inside this module and the clients: what the outside sees is a name, a masked key
and a base URL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import limits
from ..client import AsyncBot, Endpoint
from ..errors import ConfigError
from ..masking import mask_key
from ..ratelimit import Rate, SlidingWindowLimiter, parse_rate
from ..retry import RetryPolicy

__all__ = [
    "DEFAULT_BOT_NAME",
    "DEFAULT_MAX_WAIT",
    "ENV_MAX_WAIT",
    "ENV_RATE",
    "AgentRetryPolicy",
    "BotEntry",
    "BotRegistry",
    "read_limits",
]

ENV_RATE = "WECOM_BOT_RATE"
ENV_MAX_WAIT = "WECOM_BOT_MAX_WAIT"
DEFAULT_BOT_NAME = "default"
DEFAULT_MAX_WAIT = 10.0
"""Seconds a tool call may wait for the local limiter before it answers "rate limited"."""


@dataclass(frozen=True)
class BotEntry:
    """One named robot.

    Attributes:
        name: the name tools select it by.
        endpoint: base URL and key, or None when the key could not be resolved.
        source: where it was configured (``env WECOM_BOT_KEY``, ``profile 'ops'``).
        error: why it is unavailable (key-safe text), or ``""``.
    """

    name: str
    endpoint: Endpoint | None
    source: str
    error: str = ""

    @property
    def masked_key(self) -> str:
        """The key masked for display, or ``""`` when there is none."""
        return self.endpoint.masked_key if self.endpoint else ""


class AgentRetryPolicy(RetryPolicy):
    """Retries that suit an interactive tool call: a few quick ones, never a 45009 wait.

    A 45009 answer means the window is full for up to a minute; the agent is better told
    "retry after N s" than kept waiting, so this policy gives up on it at once.
    """

    def decide(
        self, attempt: int, error: BaseException, *, retry_after: float | None = None
    ) -> float | None:
        """Like :meth:`RetryPolicy.decide`, but gives up on errcode 45009."""
        if getattr(error, "errcode", None) == limits.ERRCODE_RATE_LIMITED:
            return None
        return super().decide(attempt, error, retry_after=retry_after)


def read_limits(
    env: Mapping[str, str] | None = None,
    *,
    rate: str | None = None,
    max_wait: float | None = None,
) -> tuple[Rate, float]:
    """Read the rate and the wait bound from arguments, else the environment, else defaults.

    Args:
        env: the environment (default ``os.environ``).
        rate: a rate such as ``"20/60s"``; overrides ``WECOM_BOT_RATE``.
        max_wait: seconds; overrides ``WECOM_BOT_MAX_WAIT``.

    Returns:
        The rate (default 20 per 60 s) and the wait bound (default 10 s).

    Raises:
        ConfigError: a value is malformed; the message names the variable.
    """
    env = os.environ if env is None else env
    rate_text = rate if rate is not None else env.get(ENV_RATE) or None
    try:
        parsed = parse_rate(rate_text) if rate_text else Rate()
    except ValueError as exc:
        raise ConfigError(f"{ENV_RATE} / --rate: {exc}") from None
    if max_wait is None:
        text = env.get(ENV_MAX_WAIT) or ""
        try:
            max_wait = float(text) if text.strip() else DEFAULT_MAX_WAIT
        except ValueError:
            raise ConfigError(
                f"{ENV_MAX_WAIT}: must be a number of seconds, got {text!r}"
            ) from None
    if not math.isfinite(max_wait) or max_wait < 0:
        raise ConfigError(f"{ENV_MAX_WAIT} / --max-wait: must be >= 0 seconds, got {max_wait!r}")
    return parsed, max_wait


class BotRegistry:
    """The named bots, their clients and the shared limiter.

    Args:
        entries: the bots, in listing order; names must be unique.
        default: the name used when a call names none, or None.
        limiter: the per-key limiter every send and upload goes through.
        max_wait: the longest a call waits for the limiter, in seconds.
        timeout: seconds for each HTTP request.
    """

    def __init__(
        self,
        entries: Sequence[BotEntry],
        default: str | None,
        *,
        limiter: SlidingWindowLimiter | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        timeout: float = 10.0,
    ) -> None:
        self._entries = {entry.name: entry for entry in entries}
        if len(self._entries) != len(entries):
            raise ConfigError("bot names must be unique")
        if default is not None and default not in self._entries:
            raise ConfigError(f"default bot {default!r} is not one of the configured bots")
        self.default = default
        self.limiter = limiter or SlidingWindowLimiter()
        self.max_wait = max_wait
        self.timeout = timeout
        self._clients: dict[str, AsyncBot] = {}

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        config_path: str | Path | None = None,
        rate: str | None = None,
        max_wait: float | None = None,
    ) -> BotRegistry:
        """Build the registry from the environment and the profile file.

        Args:
            env: the environment (default ``os.environ``).
            config_path: the profile file; when given it must exist. Otherwise
                ``WECOM_BOT_CONFIG`` or the default path is read if it exists.
            rate: the per-key rate (overrides ``WECOM_BOT_RATE``).
            max_wait: the wait bound in seconds (overrides ``WECOM_BOT_MAX_WAIT``).

        Raises:
            ConfigError: no bot is configured, the profile file is invalid, or the
                environment's key or a limit is malformed. Key-safe, names the field.
        """
        from ..profiles import (
            ENV_KEY,
            ENV_WEBHOOK,
            default_config_path,
            load_profiles,
            resolve_target,
        )

        env = os.environ if env is None else env
        parsed_rate, wait = read_limits(env, rate=rate, max_wait=max_wait)
        entries: list[BotEntry] = []
        default: str | None = None
        if env.get(ENV_WEBHOOK) or env.get(ENV_KEY):
            target = resolve_target(env=env)
            entries.append(BotEntry(DEFAULT_BOT_NAME, target.endpoint, target.source))
            default = DEFAULT_BOT_NAME

        path = Path(config_path).expanduser() if config_path else default_config_path(env)
        if config_path or path.exists():
            profiles = load_profiles(path)
            file_default = _file_default(path)
            for name in profiles:
                if any(e.name == name for e in entries):
                    continue  # the environment's bot keeps the name "default"
                try:
                    target = resolve_target(profile=name, config_path=path, env=env)
                except ConfigError as exc:
                    entries.append(BotEntry(name, None, f"profile {name!r}", error=str(exc)))
                else:
                    entries.append(BotEntry(name, target.endpoint, target.source))
            if default is None and file_default is not None:
                default = file_default

        if not entries:
            raise ConfigError(
                f"no bot configured: set {ENV_KEY} (or {ENV_WEBHOOK}), or give a profile file "
                f"with --config (looked for {path})"
            )
        if default is None and len(entries) == 1:
            default = entries[0].name
        return cls(
            entries,
            default,
            limiter=SlidingWindowLimiter(parsed_rate),
            max_wait=wait,
        )

    @property
    def entries(self) -> list[BotEntry]:
        """Every bot, available or not, in listing order."""
        return list(self._entries.values())

    def secrets(self) -> tuple[str, ...]:
        """Every key held, for redacting text that might contain one (never show these)."""
        return tuple(e.endpoint.key for e in self._entries.values() if e.endpoint is not None)

    def get(self, name: str | None) -> BotEntry:
        """The bot called ``name``, or the default bot when ``name`` is None or empty.

        Raises:
            ConfigError: no such bot, no default, or the bot is unavailable (says why).
        """
        known = ", ".join(self._entries) or "none"
        if not name:
            if self.default is None:
                raise ConfigError(f"several bots are configured and none is the default: "
                                  f"pass bot= one of {known}")  # fmt: skip
            name = self.default
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(f"no bot named {name!r}; configured bots: {known}")
        if entry.endpoint is None:
            raise ConfigError(f"bot {name!r} is unavailable: {entry.error}")
        return entry

    def client(self, entry: BotEntry) -> AsyncBot:
        """The client of an available bot (created once, sharing the registry's limiter)."""
        if entry.endpoint is None:
            raise ConfigError(f"bot {entry.name!r} is unavailable: {entry.error}")
        bot = self._clients.get(entry.name)
        if bot is None:
            bot = AsyncBot(
                entry.endpoint.key,
                base_url=entry.endpoint.base_url,
                timeout=self.timeout,
                rate_limit=self.limiter,
                retry=AgentRetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0),
                max_rate_wait=self.max_wait,
            )
            self._clients[entry.name] = bot
        return bot

    def retry_after(self, entry: BotEntry) -> float:
        """Seconds until the limiter lets the next message of ``entry`` go."""
        if entry.endpoint is None:
            return 0.0
        return self.limiter.wait_time(entry.endpoint.key)

    def eta(self, entry: BotEntry, count: int) -> float:
        """Seconds until ``count`` more messages of ``entry`` could all have been sent."""
        if entry.endpoint is None:
            return 0.0
        return self.limiter.eta(entry.endpoint.key, count)

    def describe(self) -> list[dict[str, object]]:
        """Key-safe facts about every bot: name, masked key, base URL, source, status."""
        return [
            {
                "name": e.name,
                "key": e.masked_key or None,
                "base_url": e.endpoint.base_url if e.endpoint else None,
                "source": e.source,
                "default": e.name == self.default,
                "available": e.endpoint is not None,
                "error": e.error or None,
            }
            for e in self._entries.values()
        ]

    async def aclose(self) -> None:
        """Close every client's connections."""
        clients, self._clients = list(self._clients.values()), {}
        for bot in clients:
            await bot.aclose()

    def __repr__(self) -> str:
        shown = ", ".join(f"{e.name}={mask_key(e.endpoint.key) if e.endpoint else '-'}"
                          for e in self._entries.values())  # fmt: skip
        return f"BotRegistry({shown})"


def _file_default(path: Path) -> str | None:
    # load_profiles checks `default` but does not return it; read it from the same document.
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    value = document.get("default") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None
