"""The gateway's configuration: a YAML file validated at start, errors that name the field.

Every section is a pydantic model with unknown keys forbidden; a typo gets a message naming
the key and the nearest valid one. Secrets (webhook keys, tokens, passwords) are read from
the environment or files by preference, and :meth:`GatewayConfig.masked` shows the config
with every secret masked.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError, SecretNotSetError
from ..limits import DEFAULT_BASE_URL
from ..masking import mask_key
from ..storm import DEFAULT_CONTEXT_LABELS
from .templates.sandbox import RenderLimits

MutedActionName = Literal["keep", "drop", "defer"]

MsgType = Literal["markdown", "markdown_v2", "text"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``30``, ``"30s"``, ``"10m"``, ``"500ms"``, ``"7d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"must be a duration like 30s, 10m, 2h or a number of seconds, got {value!r}")


def positive_duration(value: Any) -> float:
    """Like :func:`parse_duration`, refusing zero and negative durations."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {value!r}")
    return seconds


MIN_REMIND_EVERY = 60.0
"""The shortest ``remind_every``: a reminder a minute per open group already uses a good
share of a robot's 20 messages a minute."""

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
DAY = 86400.0


def _span(seconds: float) -> str:
    """A duration bound as written in a config: ``100ms``, ``30s``, ``10m``, ``2h``, ``30d``."""
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def duration_within(value: Any, low: float, high: float) -> float:
    """Like :func:`parse_duration`, refusing what lies outside ``low``..``high`` seconds (and
    ``nan``): the message gives the value and the range."""
    seconds = parse_duration(value)
    if not low <= seconds <= high:
        raise ValueError(f"must be between {_span(low)} and {_span(high)}, got {value!r}")
    return seconds


def count_within(value: int, low: int, high: int, unit: str = "") -> int:
    """``value`` itself, refused outside ``low``..``high``: the message gives both."""
    if not low <= value <= high:
        raise ValueError(
            f"must be between {_amount(low, unit)} and {_amount(high, unit)}, got {value}"
        )
    return value


def _amount(value: int, unit: str) -> str:
    if unit == "bytes":
        for name, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
            if value >= size and value % size == 0:
                return f"{value // size} {name} ({value})"
        return f"{value} bytes"
    return f"{value:,}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Section):
    """A secret given inline, from an environment variable, or from a file (first line)."""

    value: str | None = None
    env: str | None = None
    file: Path | None = None

    def resolve(self, field: str) -> str:
        """Read the secret; ConfigError naming ``field`` when it is missing."""
        if self.value:
            return self.value
        if self.env:
            found = os.environ.get(self.env, "").strip()
            if not found:
                raise SecretNotSetError(
                    f"{field}: environment variable {self.env} is not set or empty"
                )
            return found
        if self.file:
            try:
                text = self.file.read_text("utf-8").strip()
            except OSError as exc:
                raise SecretNotSetError(
                    f"{field}: cannot read {self.file}: {exc.strerror}"
                ) from None
            if not text:
                raise SecretNotSetError(f"{field}: {self.file} is empty")
            return text.splitlines()[0].strip()
        raise ConfigError(f"{field}: give one of key, key_env or key_file")


class BotConfig(_Section):
    """One robot (or a pool of robots in the same group).

    Attributes:
        key / key_env / key_file: the webhook key (inline is discouraged: it is a secret).
        pool: more keys of robots in the same group, each ``{key|key_env|key_file}``;
            throughput multiplies with the pool size.
        msgtype: what alerts are rendered as by default.
        base_url: the API base URL (WeCom's by default; a proxy or the emulator).
        timeout: seconds per request.
        proxy: an HTTP(S) proxy URL for this bot.
        ca_bundle: a CA bundle file to verify TLS with.
        insecure_skip_verify: turn TLS verification off (logged as a warning at every start).
    """

    key: str | None = None
    key_env: str | None = None
    key_file: Path | None = None
    pool: list[dict[str, str]] = Field(default_factory=list)
    msgtype: MsgType = "markdown"
    base_url: str | None = None
    timeout: float = 10.0
    proxy: str | None = None
    ca_bundle: Path | None = None
    insecure_skip_verify: bool = False

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _check_base_url(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return duration_within(value, 0.1, 600.0)

    def keys(self, name: str, unresolved: dict[str, str] | None = None) -> tuple[str, ...]:
        """Resolve every key of the bot (main key first, then the pool).

        Args:
            name: the bot's name, for error messages.
            unresolved: when given, a key whose variable or file is not set is recorded here
                (field -> why) and stands as a placeholder instead of raising.

        Raises:
            ConfigError: a key cannot be resolved (a :class:`SecretNotSetError` only
                without ``unresolved``), or the pool repeats a key.
        """
        refs = [SecretRef(value=self.key, env=self.key_env, file=self.key_file)]
        for i, entry in enumerate(self.pool):
            unknown = set(entry) - {"key", "key_env", "key_file"}
            if unknown:
                raise ConfigError(f"bots.{name}.pool[{i}]: unknown field {sorted(unknown)[0]!r}")
            refs.append(
                SecretRef(
                    value=entry.get("key"),
                    env=entry.get("key_env"),
                    file=Path(entry["key_file"]) if entry.get("key_file") else None,
                )
            )
        keys = []
        for i, ref in enumerate(refs):
            field = f"bots.{name}" if i == 0 else f"bots.{name}.pool[{i - 1}]"
            try:
                keys.append(ref.resolve(field))
            except SecretNotSetError as exc:
                if unresolved is None:
                    raise
                unresolved[field] = str(exc).removeprefix(f"{field}: ")
                keys.append(f"unresolved:{field}")
        if len(set(keys)) != len(keys):
            raise ConfigError(f"bots.{name}: the same key appears twice in the pool")
        return tuple(keys)


class AuthConfig(_Section):
    """Inbound authentication for every endpoint but /healthz and /readyz.

    Attributes:
        bearer_token / bearer_token_env: accept ``Authorization: Bearer <token>``.
        username / password / password_env: accept HTTP basic auth.
    """

    bearer_token: str | None = None
    bearer_token_env: str | None = None
    username: str | None = None
    password: str | None = None
    password_env: str | None = None

    def token(self) -> str | None:
        """The bearer token, if configured."""
        if self.bearer_token or self.bearer_token_env:
            return SecretRef(value=self.bearer_token, env=self.bearer_token_env).resolve(
                "auth.bearer_token"
            )
        return None

    def basic(self) -> tuple[str, str] | None:
        """The basic-auth pair, if configured."""
        if not self.username:
            return None
        password = SecretRef(value=self.password, env=self.password_env).resolve("auth.password")
        return self.username, password


def _check_base_url(value: str | None) -> str | None:
    """A base URL must be ``http(s)://host[:port][/path]``: a malformed one would only fail
    at the first send, leaving messages queued."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError("must be a URL like https://qyapi.weixin.qq.com") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be a URL like https://qyapi.weixin.qq.com (http or https, a host)")
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ValueError("must be a URL like https://qyapi.weixin.qq.com (no query, no spaces)")
    return value


class ServerConfig(_Section):
    """How the gateway's HTTP server meets clients (see ``docs/security.md``).

    Attributes:
        allowed_hosts: names clients may reach the gateway by (the ``Host`` they send; any
            port). Default: the listen address, ``localhost``, ``127.0.0.1`` and ``::1``. When
            it listens on every interface (``0.0.0.0``) the names must be listed, or ``"*"``
            to accept any (only behind a proxy that checks ``Host`` itself). IP addresses are
            always accepted.
        header_timeout: a client that has not sent a request's headers within this is cut off.
        body_timeout: a client that has not sent a request's whole body within this gets 408.
        keep_alive: an idle kept-alive connection is closed after this.
        max_connections: connections (and requests) served at once; more get 503.
        max_connections_per_client: connections one client address may hold at once.
        max_api_body_bytes: largest body of any request but the inbound webhooks (413 above).
        max_inflight_body_bytes: the bytes of request bodies held at once, across every
            request; a body that does not fit waits (at most ``body_timeout``, then 503), and
            the journal's processor claims no more received bytes than this at a time.
    """

    allowed_hosts: list[str] = Field(default_factory=list)
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: float = 5.0
    max_connections: int = 1000
    max_connections_per_client: int = 200
    max_api_body_bytes: int = MiB
    max_inflight_body_bytes: int = 128 * MiB

    @field_validator("header_timeout", mode="before")
    @classmethod
    def _header_timeout(cls, value: Any) -> float:
        return duration_within(value, 0.1, 600.0)

    @field_validator("body_timeout", "keep_alive", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return duration_within(value, 0.1, 3600.0)

    @field_validator("max_connections", "max_connections_per_client")
    @classmethod
    def _connections(cls, value: int) -> int:
        return count_within(value, 1, 1_000_000)

    @field_validator("max_api_body_bytes")
    @classmethod
    def _api_body(cls, value: int) -> int:
        return count_within(value, KiB, GiB, "bytes")

    @field_validator("max_inflight_body_bytes")
    @classmethod
    def _inflight(cls, value: int) -> int:
        return count_within(value, MiB, 64 * GiB, "bytes")

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.strip() or any(c in name for c in "/ @?#"):
                raise ValueError(f"{name!r} is not a host name (give names like gw.example.com)")
        return value


class EscalationStep(_Section):
    """One step of a route's escalation (see ``docs/actions.md``).

    Attributes:
        after: how long after the group's first notification, unacknowledged and still
            firing, the step fires.
        mention: who the escalation message mentions: userids (``"@all"`` for everyone), or
            ``{users: [...], mobiles: [...]}``.
        bots: bots that get the escalation message too (beside the route's own).
    """

    after: float
    mention: Any = Field(default_factory=list)
    bots: list[str] = Field(default_factory=list)

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, value: Any) -> float:
        return duration_within(value, 1.0, 30 * DAY)

    @field_validator("mention")
    @classmethod
    def _mention(cls, value: Any) -> Any:
        from .routing import mention_list

        try:
            mention_list(value, "mention")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("mention: ").removeprefix("mention")) from None
        return value


class RouteConfig(_Section):
    """A route: which notifications (matchers on labels) go to which bots, how rendered.

    Attributes:
        name: shown in history and used as ``/alertmanager/{name}``.
        matchers: Alertmanager-style, all must match: ``severity="critical"``, ``team=~"db|ops"``.
        bots: bot names.
        template: a built-in or configured template name.
        msgtype: overrides the bot's msgtype.
        mentions: who to @mention, ``{"users": [...], "mobiles": [...], "by_label": {...}}``.
        continue_: keep matching later routes after this one (YAML key ``continue``).
        send_resolved: deliver resolved notifications too.
        active_time_intervals: names from ``time_intervals``; outside all of them the route
            is muted.
        mute_time_intervals: names from ``time_intervals``; inside any of them the route is
            muted.
        muted: what a notification arriving muted becomes: ``keep`` (kept in the history,
            not sent), ``drop`` (recorded as dropped) or ``defer`` (sent when the route is
            active again).
        oncall: a rotation name from ``oncall``: its current userid is mentioned when an alert
            of a firing notification has a severity in ``oncall_severities``.
        escalate: steps that post a short escalation message while a group this route sent
            fires unacknowledged (see ``docs/actions.md``).
        remind_every: post a short reminder this often while such a group fires
            unacknowledged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    matchers: list[str] = Field(default_factory=list)
    bots: list[str]
    template: str = "default"
    msgtype: MsgType | None = None
    mentions: dict[str, Any] = Field(default_factory=dict)
    continue_: bool = Field(default=False, alias="continue")
    send_resolved: bool = True
    active_time_intervals: list[str] = Field(default_factory=list)
    mute_time_intervals: list[str] = Field(default_factory=list)
    muted: MutedActionName = "keep"
    oncall: str | None = None
    escalate: list[EscalationStep] = Field(default_factory=list)
    remind_every: float | None = None

    @field_validator("remind_every", mode="before")
    @classmethod
    def _remind_every(cls, value: Any) -> float | None:
        return None if value is None else duration_within(value, MIN_REMIND_EVERY, 30 * DAY)

    @field_validator("escalate")
    @classmethod
    def _steps_in_order(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        for i in range(1, len(steps)):
            if steps[i].after <= steps[i - 1].after:
                raise ValueError(
                    f"step {i} fires after {steps[i].after:g}s, not later than step {i - 1} "
                    f"({steps[i - 1].after:g}s): list the steps in the order they fire"
                )
        return steps


class WebhookConfig(_Section):
    """A generic JSON endpoint ``/webhook/{name}``: any JSON rendered by a template."""

    bots: list[str]
    template: str = "generic"
    msgtype: MsgType | None = None
    mentions: dict[str, Any] = Field(default_factory=dict)


HEARTBEAT_FIELDS: tuple[str, ...] = (
    "title", "name", "last_seen", "source", "silent_for", "gap", "expect_every", "grace",
    "expected_by",
)  # fmt: skip
"""The ``{placeholders}`` a heartbeat's ``template`` and ``recovery_template`` may use."""

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEARTBEAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class HeartbeatConfig(_Section):
    """A heartbeat: a notification expected again and again, and a message when it stops
    (a dead man's switch; see ``docs/gateway.md``, "Heartbeats").

    Attributes:
        name: names it in messages, metrics and the console (letters, digits, ``_ . -``).
        title: what the messages call it; default: the source's kind and the name
            (``Alertmanager prod``).
        matchers: on each alert's labels (Alertmanager's syntax, all must match), plus
            ``__source__`` and ``__receiver__``; a generic webhook's call is matched whole.
            Default ``alertname="Watchdog"``. Matching alerts are taken, never routed.
        sources: where it comes from: ``alertmanager``, ``grafana``, or ``webhook:<name>``.
        expect_every: the longest time between two beats when all is well (longer than
            Alertmanager's ``repeat_interval`` of its route).
        grace: how much longer to wait before saying it is missing (shorter than
            ``expect_every``; default: 1m, or half of ``expect_every`` when that is shorter).
        bots: who is told.
        template: the missing message, with ``{placeholders}`` (see :data:`HEARTBEAT_FIELDS`);
            default: a built-in one in Chinese.
        recovery_template: the message when it comes back; default: a built-in one.
    """

    name: str
    title: str | None = None
    matchers: list[str] = Field(default_factory=lambda: ['alertname="Watchdog"'])
    sources: list[str] = Field(default_factory=lambda: ["alertmanager"])
    expect_every: float
    grace: float = None  # type: ignore[assignment]  # filled in by _grace_within
    bots: list[str]
    template: str | None = None
    recovery_template: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _HEARTBEAT_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a heartbeat name (1-64 letters, digits, _ . -, "
                "starting with a letter or digit)"
            )
        return value

    @field_validator("expect_every", mode="before")
    @classmethod
    def _expect_every(cls, value: Any) -> float:
        return duration_within(value, 1.0, 30 * DAY)

    @field_validator("grace", mode="before")
    @classmethod
    def _grace(cls, value: Any) -> float | None:
        return None if value is None else duration_within(value, 0.0, 30 * DAY)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        from .routing import parse_matchers

        try:
            parse_matchers(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one source (alertmanager, grafana, webhook:<name>)")
        for source in value:
            if source not in ("alertmanager", "grafana") and not (
                source.startswith("webhook:") and len(source) > len("webhook:")
            ):
                known = ["alertmanager", "grafana", "webhook:<name>"]
                raise ValueError(f"unknown source {source!r} ({_nearest(source, known)})")
        return value

    @field_validator("template", "recovery_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must not be empty (leave it out for the built-in message)")
        for field in _PLACEHOLDER.findall(value):
            if field not in HEARTBEAT_FIELDS:
                raise ValueError(
                    f"unknown placeholder {{{field}}} ({_nearest(field, HEARTBEAT_FIELDS)})"
                )
        return value

    @model_validator(mode="after")
    def _grace_within(self) -> HeartbeatConfig:
        if self.grace is None:
            object.__setattr__(self, "grace", min(60.0, self.expect_every / 2))
        if self.grace >= self.expect_every:
            raise ValueError(
                f"grace ({_span(self.grace)}) must be shorter than expect_every "
                f"({_span(self.expect_every)}): expect_every is the period, grace the slack "
                "for a late beat"
            )
        return self

    @property
    def group_id(self) -> str:
        """Its standing group in the store (the same name in every instance)."""
        from ..store import STANDING_PREFIX

        return STANDING_PREFIX + self.name

    @property
    def display(self) -> str:
        """What messages call it."""
        if self.title:
            return self.title
        kind = self.sources[0]
        head = {"alertmanager": "Alertmanager", "grafana": "Grafana"}.get(kind, "Webhook")
        return f"{head} {self.name}"


class ActionsConfig(_Section):
    """Action links in alert messages (see ``docs/actions.md``); used when ``external_url`` is set.

    Attributes:
        secret / secret_env: the HMAC secret that signs action links (at least 16 characters;
            from the environment by preference). Changing it voids every link sent.
        alertmanager_url: the short form of one Alertmanager: the same as an entry
            ``{name: am, url: ...}`` in ``alertmanagers`` (see there). It also serves
            groups whose notification carries no ``externalURL``.
        ttl: how long a link stays good (1 minute to 90 days).
        ack_bots: bots that get one short line when someone acknowledges.
    """

    secret: str | None = None
    secret_env: str | None = None
    alertmanager_url: str | None = None
    ttl: float = 7 * 86400.0
    ack_bots: list[str] = Field(default_factory=list)

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> float:
        seconds = parse_duration(value)
        # A link's expiry is 4 bytes of Unix seconds, and a page refuses an expiry further
        # away than the ttl: bounded, so that neither can overflow and a leaked link dies.
        if not MIN_LINK_TTL <= seconds <= MAX_LINK_TTL:
            raise ValueError(f"must be between 1m and 90d, got {value!r}")
        return seconds

    @field_validator("alertmanager_url")
    @classmethod
    def _am_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    def secret_bytes(self) -> bytes:
        """The signing secret; ConfigError naming ``actions.secret`` when missing or short."""
        secret = SecretRef(value=self.secret, env=self.secret_env).resolve("actions.secret")
        if len(secret) < 16:
            raise ConfigError("actions.secret: must be at least 16 characters")
        return secret.encode()


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    from ..masking import mask_url

    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in value.strip())
    ):
        raise ValueError(
            "must be an http(s) URL without query, like https://gw.example.com, "
            f"got {mask_url(value)!r}"
        )
    return value.strip().rstrip("/")


MIN_LINK_TTL = 60.0
"""The shortest ``actions.ttl``: one minute."""
MAX_LINK_TTL = 90 * 86400.0
"""The longest ``actions.ttl``: 90 days."""

_AM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
IMPLICIT_ALERTMANAGER = "am"
"""The name ``actions.alertmanager_url`` stands under in ``alertmanagers`` (short: every link
carries the name, and a link's bytes count against the message's budget)."""


class AlertmanagerConfig(_Section):
    """An Alertmanager the gateway may create silences in (see ``docs/actions.md``).

    The gateway never requests any other: an alert's ``externalURL`` only selects one of
    these (by scheme, host, port and path prefix), and a link names it by ``name``.

    Attributes:
        name: what links and logs call it (letters, digits, ``_.-``; at most 32).
        url: where the gateway reaches its API (``http://alertmanager:9093``).
        external_urls: the ``externalURL`` its notifications carry, when it is not ``url``
            (Alertmanager behind a proxy, a public name); the first one is also where the
            details page sends people.
        username / password_env / password_file: HTTP basic auth for its API.
        bearer_token_env / bearer_token_file: ``Authorization: Bearer`` for its API.
        timeout: seconds to wait for it.
    """

    name: str
    url: str
    external_urls: list[str] = Field(default_factory=list)
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    bearer_token_env: str | None = None
    bearer_token_file: Path | None = None
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _AM_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a name: letters, digits, '_', '.', '-', at most 32, like prod-eu"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("external_urls")
    @classmethod
    def _external_urls(cls, value: list[str]) -> list[str]:
        return [_http_url(v) for v in value]

    @model_validator(mode="after")
    def _credentials(self) -> AlertmanagerConfig:
        from urllib.parse import urlsplit

        basic = self.username is not None or self.password_env or self.password_file
        bearer = self.bearer_token_env or self.bearer_token_file
        if basic and bearer:
            raise ValueError("give basic auth (username) or a bearer token, not both")
        if basic and (not self.username or not (self.password_env or self.password_file)):
            raise ValueError("basic auth needs username and password_env (or password_file)")
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.bearer_token_env and self.bearer_token_file:
            raise ValueError("give bearer_token_env or bearer_token_file, not both")
        if urlsplit(self.url).username is not None and (basic or bearer):
            raise ValueError("url: has credentials in it and in the fields too: give them once")
        return self

    def credentials(self, field: str) -> tuple[tuple[str, str] | None, str | None]:
        """The basic-auth pair and the bearer token to send (either may be ``None``), read
        from the environment or files now.

        Raises:
            SecretNotSetError: a variable or a file is not set, empty or unreadable.
        """
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(self.url)
        if self.username:
            ref = SecretRef(env=self.password_env, file=self.password_file)
            return (self.username, ref.resolve(f"{field}.password")), None
        if self.bearer_token_env or self.bearer_token_file:
            ref = SecretRef(env=self.bearer_token_env, file=self.bearer_token_file)
            return None, ref.resolve(f"{field}.bearer_token")
        if parts.username is not None:
            return (unquote(parts.username), unquote(parts.password or "")), None
        return None, None


class TemplateLimitsConfig(_Section):
    """The bounds of one render (see "Render limits" in ``docs/gateway.md``).

    Attributes:
        timeout: how long a configured template may render.
        playground_timeout: how long a template typed in the console playground may render.
        max_text: the longest string (characters) or list (items) one operation may build.
        max_built: characters and items one render may build in all.
        max_steps: loop iterations, calls and filters one render may make.
        memory_mb: the memory (address space, MiB) of each render worker process.
        workers: render worker processes (configured and playground templates render there).
    """

    timeout: float = 5.0
    playground_timeout: float = 1.0
    max_text: int = 1_000_000
    max_built: int = 32_000_000
    max_steps: int = 5_000_000
    memory_mb: int = 512
    workers: int = 1

    @field_validator("timeout", "playground_timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        return duration_within(value, 0.01, 600.0)

    @field_validator("max_text")
    @classmethod
    def _max_text(cls, value: int) -> int:
        return count_within(value, 1000, 1_000_000_000)

    @field_validator("max_built", "max_steps")
    @classmethod
    def _max_work(cls, value: int) -> int:
        return count_within(value, 1000, 100_000_000_000)

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        return count_within(value, 128, 1024 * 1024)

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        return count_within(value, 1, 32)

    def limits(self, *, playground: bool = False) -> RenderLimits:
        """The sandbox's bounds for a configured template, or for a playground one."""
        return RenderLimits(
            timeout=self.playground_timeout if playground else self.timeout,
            max_text=self.max_text,
            max_built=self.max_built,
            max_steps=self.max_steps,
        )


class GraphSourceConfig(_Section):
    """A Prometheus or Grafana the gateway may query or fetch from (``graphs.prometheus``,
    ``graphs.grafana``); a plain URL in the list is an entry without credentials.

    An alert's ``generatorURL`` or ``imageURL`` is used only when it falls under ``url`` (the
    same scheme, host and port, its path under ``url``'s path) or one of ``external_urls``;
    the request always goes to ``url`` (``generatorURL`` only says which entry and what
    expression).

    Attributes:
        url: where the gateway reaches it (``http://prometheus:9090``).
        external_urls: the addresses its links carry when they are not ``url`` (Prometheus'
            ``--web.external-url``, a public name).
        username / password_env: HTTP basic auth (the password from the environment).
        bearer_token_env: ``Authorization: Bearer`` from the environment.
    """

    url: str
    external_urls: list[str] = Field(default_factory=list)
    username: str | None = None
    password_env: str | None = None
    bearer_token_env: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        url = _http_url(value)
        if urlsplit(url).username is not None:
            raise ValueError("must not hold credentials: give username/password_env instead")
        return url

    @field_validator("external_urls")
    @classmethod
    def _external_urls(cls, value: list[str]) -> list[str]:
        return [cls._url(v) for v in value]

    @model_validator(mode="after")
    def _credentials(self) -> GraphSourceConfig:
        if self.username is not None and not self.password_env:
            raise ValueError("basic auth needs username and password_env")
        if self.password_env and self.username is None:
            raise ValueError("password_env needs a username")
        if self.bearer_token_env and self.username is not None:
            raise ValueError("give basic auth (username) or bearer_token_env, not both")
        return self

    def credentials(self, field: str) -> tuple[tuple[str, str] | None, str | None]:
        """The basic-auth pair and the bearer token (either may be ``None``), read from the
        environment now.

        Raises:
            SecretNotSetError: a variable is not set or empty.
        """
        if self.username is not None:
            password = SecretRef(env=self.password_env).resolve(f"{field}.password_env")
            return (self.username, password), None
        if self.bearer_token_env:
            token = SecretRef(env=self.bearer_token_env).resolve(f"{field}.bearer_token_env")
            return None, token
        return None, None


class GraphsConfig(_Section):
    """Alert graphs (see "Graphs" in ``docs/gateway.md``): a chart of the alert's Prometheus
    expression, or Grafana's own image, sent as an image message after the alert's text.

    Nothing is fetched unless its address is listed here. Graphs are off while both lists
    are empty.

    Attributes:
        prometheus: the Prometheus servers whose ``generatorURL`` is queried.
        grafana: the Grafana servers whose ``imageURL`` is fetched.
        window: how long before the alert's ``startsAt`` the chart begins (it ends now).
        max_window: the longest span a chart covers (an alert firing for days is cut).
        query_timeout: the most one query or image fetch may take, answer included.
        max_points: the most points per series a query asks for (the step grows to fit).
        max_series: the series drawn besides the alert's own (the top ones by value).
        max_response_bytes: the largest answer read from Prometheus or Grafana.
        render_timeout: the most drawing one chart may take (its process is killed past it).
        wait_for_text: how long a graph waits for its alert's text to be delivered before it
            is dropped (it never goes ahead of it).
        in_storms: while a bot is in a storm, one graph (of the largest group of a summary)
            may still go once per rate window when the window has room; off: none.
        routes: the routes that send graphs (empty: all).
    """

    prometheus: list[GraphSourceConfig] = Field(default_factory=list)
    grafana: list[GraphSourceConfig] = Field(default_factory=list)
    window: float = 3600.0
    max_window: float = 86400.0
    query_timeout: float = 5.0
    max_points: int = 300
    max_series: int = 10
    max_response_bytes: int = 8 * MiB
    render_timeout: float = 10.0
    wait_for_text: float = 120.0
    in_storms: bool = False
    routes: list[str] = Field(default_factory=list)

    @field_validator("window", "max_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> float:
        return duration_within(value, 60.0, 30 * DAY)

    @field_validator("query_timeout", "render_timeout", mode="before")
    @classmethod
    def _timeouts(cls, value: Any) -> float:
        return duration_within(value, 0.1, 120.0)

    @field_validator("wait_for_text", mode="before")
    @classmethod
    def _wait(cls, value: Any) -> float:
        return duration_within(value, 1.0, DAY)

    @field_validator("max_points")
    @classmethod
    def _points(cls, value: int) -> int:
        return count_within(value, 10, 11_000, "points")

    @field_validator("max_series")
    @classmethod
    def _series(cls, value: int) -> int:
        return count_within(value, 0, 50, "series")

    @field_validator("max_response_bytes")
    @classmethod
    def _bytes(cls, value: int) -> int:
        return count_within(value, 64 * KiB, 256 * MiB, "bytes")

    @property
    def enabled(self) -> bool:
        """Whether any source is configured."""
        return bool(self.prometheus or self.grafana)

    def sends_for(self, route: str) -> bool:
        """Whether ``route`` sends graphs."""
        return self.enabled and (not self.routes or route in self.routes)


class GatewayConfig(_Section):
    """The whole gateway configuration (see ``docs/gateway.md`` for an annotated example).

    Attributes:
        max_alerts_per_message: the most alerts a route's template is tried with (1 to 1,000,
            default 20). A notification of several alerts is written with its route's
            template when that rendering fits one message (the msgtype's byte limit, mention
            line included), else as a storm summary; one with more alerts than this is
            summarised without trying. ``None``: never a summary.
        external_url: how people reach the gateway. Without it messages carry no action links
            and storm summaries no link to the console's history (``gateway check`` says so).
    """

    listen_host: str = "127.0.0.1"
    listen_port: int = 9095
    base_url: str = DEFAULT_BASE_URL
    store: str = "sqlite:///./wecom-bot.db"
    timezone: str = "Asia/Shanghai"
    rate: str = "20/60s"
    rate_margin: float = 0.05
    coalesce_after: float = 30.0
    storm_burst: int = 3
    storm_interval: float | None = None
    lease: float = 30.0
    idempotency_window: float = 600.0
    max_body_bytes: int = 64 * 1024 * 1024
    max_alerts_per_message: int | None = 20
    max_messages_per_notification: int = 3
    max_messages_per_summary: int = 10
    context_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_CONTEXT_LABELS))
    max_open_groups: int = 10_000
    auth: AuthConfig = Field(default_factory=AuthConfig)
    bots: dict[str, BotConfig]
    templates: dict[str, str] = Field(default_factory=dict)
    template_limits: TemplateLimitsConfig = Field(default_factory=TemplateLimitsConfig)
    routes: list[RouteConfig] = Field(default_factory=list)
    default_route: RouteConfig | None = None
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)
    mentions: dict[str, Any] = Field(default_factory=dict)
    time_intervals: dict[str, Any] = Field(default_factory=dict)
    oncall: dict[str, dict[str, Any]] = Field(default_factory=dict)
    oncall_severities: list[str] = Field(default_factory=lambda: ["critical"])
    history_retention: float = 7 * 86400.0
    external_url: str | None = None
    actions: ActionsConfig = Field(default_factory=ActionsConfig)
    alertmanagers: list[AlertmanagerConfig] = Field(default_factory=list)
    heartbeats: list[HeartbeatConfig] = Field(default_factory=list)
    server: ServerConfig = Field(default_factory=ServerConfig)
    graphs: GraphsConfig = Field(default_factory=GraphsConfig)

    # The folder of the file the config was read from (relative schedule files), if any.
    _base_dir: Path | None = PrivateAttr(default=None)

    @field_validator("coalesce_after", mode="before")
    @classmethod
    def _coalesce_after(cls, value: Any) -> float:
        return duration_within(value, 0.0, DAY)

    @field_validator("storm_interval", mode="before")
    @classmethod
    def _storm_interval(cls, value: Any) -> float | None:
        return None if value is None else duration_within(value, 0.0, DAY)

    @field_validator("lease", mode="before")
    @classmethod
    def _lease(cls, value: Any) -> float:
        return duration_within(value, 1.0, DAY)

    @field_validator("idempotency_window", mode="before")
    @classmethod
    def _idempotency_window(cls, value: Any) -> float:
        return duration_within(value, 0.0, 30 * DAY)

    @field_validator("history_retention", mode="before")
    @classmethod
    def _history_retention(cls, value: Any) -> float:
        return duration_within(value, 60.0, 3650 * DAY)

    @field_validator("rate_margin")
    @classmethod
    def _rate_margin(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"must be between 0 and 1, got {value!r} (a share of the window)")
        return value

    @field_validator("listen_port")
    @classmethod
    def _port(cls, value: int) -> int:
        return count_within(value, 0, 65535)

    @field_validator("storm_burst")
    @classmethod
    def _storm_burst(cls, value: int) -> int:
        return count_within(value, 1, 10_000)

    @field_validator("max_body_bytes")
    @classmethod
    def _max_body(cls, value: int) -> int:
        return count_within(value, KiB, GiB, "bytes")

    @field_validator("max_alerts_per_message")
    @classmethod
    def _max_alerts(cls, value: int | None) -> int | None:
        return None if value is None else count_within(value, 1, 1000)

    @field_validator("max_messages_per_notification")
    @classmethod
    def _max_messages(cls, value: int) -> int:
        return count_within(value, 1, 20)

    @field_validator("max_messages_per_summary")
    @classmethod
    def _max_summary_messages(cls, value: int) -> int:
        return count_within(value, 1, 20)

    @field_validator("context_labels")
    @classmethod
    def _context_labels(cls, value: list[str]) -> list[str]:
        if len(value) > 32:
            raise ValueError(f"at most 32 labels, not {len(value)} (each is on every line)")
        for name in value:
            if not name or len(name) > 128 or any(c.isspace() for c in name):
                raise ValueError(f"{name!r} is not a label name")
        return value

    @field_validator("max_open_groups")
    @classmethod
    def _max_open_groups(cls, value: int) -> int:
        return count_within(value, 1, 1_000_000)

    @field_validator("external_url")
    @classmethod
    def _external_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        url = _http_url(value)
        if urlsplit(url).username is not None:
            # Every action link starts with it, and links are posted into chat groups.
            raise ValueError("must not hold credentials (user:password@): links start with it")
        return url

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_base_url(value) or value

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from ..ratelimit import parse_rate

        rate = parse_rate(value)
        if not (1 <= rate.limit <= 10_000 and 0.01 <= rate.window <= DAY):
            raise ValueError(
                "must be 1 to 10,000 sends in a window of 10ms to 1d, like 20/60s, "
                f"got {value!r}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)"
            ) from None
        return value

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        if not self.bots:
            raise ValueError("bots: configure at least one bot")
        for name in self.bots:
            if not name or name.startswith("~"):
                # "~" names are the gateway's own queues (the journal of accepted notifications).
                raise ValueError(f"bots.{name}: a bot name cannot be empty or start with '~'")
        routes = list(self.routes) + ([self.default_route] if self.default_route else [])
        for where, bots in [(f"routes[{r.name}]", r.bots) for r in routes] + [
            (f"webhooks.{n}", w.bots) for n, w in self.webhooks.items()
        ]:
            for bot in bots:
                if bot not in self.bots:
                    raise ValueError(
                        f"{where}.bots: no bot named {bot!r} ({_nearest(bot, self.bots)})"
                    )
        for route in routes:
            for i, step in enumerate(route.escalate):
                for bot in step.bots:
                    if bot not in self.bots:
                        raise ValueError(
                            f"routes[{route.name}].escalate[{i}].bots: no bot named {bot!r} "
                            f"({_nearest(bot, self.bots)})"
                        )
        for bot in self.actions.ack_bots:
            if bot not in self.bots:
                raise ValueError(
                    f"actions.ack_bots: no bot named {bot!r} ({_nearest(bot, self.bots)})"
                )
        self._check_alertmanagers()
        names = {r.name for r in routes} | {"default"}
        for name in self.graphs.routes:
            if name not in names:
                raise ValueError(
                    f"graphs.routes: no route named {name!r} ({_nearest(name, names)})"
                )
        self._check_heartbeats()
        from .timeintervals import RouteSchedule

        intervals = self.intervals()
        for i, route in enumerate(routes):
            where = f"routes[{i}]" if i < len(self.routes) else "default_route"
            try:
                RouteSchedule(
                    route.active_time_intervals,
                    route.mute_time_intervals,
                    intervals,
                    muted=route.muted,
                    field=where,
                )
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if route.oncall is not None and route.oncall not in self.oncall:
                known = _nearest(route.oncall, self.oncall) if self.oncall else "none defined"
                raise ValueError(
                    f"{where}.oncall: no rotation named {route.oncall!r} under oncall ({known})"
                )
        return self

    def _check_alertmanagers(self) -> None:
        from .actions.registry import normalized_url

        seen: dict[str, str] = {}
        claimed: dict[Any, str] = {}
        for i, am in enumerate(self.alertmanager_entries()):
            where = f"alertmanagers[{i}]" if i < len(self.alertmanagers) else "actions"
            if am.name in seen:
                why = (
                    f"the name {am.name!r} is taken by actions.alertmanager_url"
                    if am.name == IMPLICIT_ALERTMANAGER and self.actions.alertmanager_url
                    else f"the name {am.name!r} is given twice"
                )
                raise ValueError(f"alertmanagers: {why}")
            seen[am.name] = where
            for url in dict.fromkeys([am.url, *am.external_urls]):
                key = normalized_url(url)
                if key in claimed and claimed[key] != am.name:
                    raise ValueError(
                        f"{where}: the URL {_mask_url_secrets(url)!r} is also "
                        f"alertmanager {claimed[key]!r}'s: an alert could not tell them apart"
                    )
                claimed[key] = am.name

    def _check_heartbeats(self) -> None:
        seen: set[str] = set()
        for i, beat in enumerate(self.heartbeats):
            where = f"heartbeats[{i}]"
            if beat.name in seen:
                raise ValueError(f"{where}.name: {beat.name!r} is given twice")
            seen.add(beat.name)
            for bot in beat.bots:
                if bot not in self.bots:
                    raise ValueError(
                        f"{where}.bots: no bot named {bot!r} ({_nearest(bot, self.bots)})"
                    )
            if not beat.bots:
                raise ValueError(f"{where}.bots: list at least one bot")
            shared = [s for s in beat.sources if not s.startswith("webhook:")]
            if not beat.matchers and shared:
                # no matcher matches every alert: a webhook of its own may be all beats, but
                # Alertmanager's or Grafana's alerts would all be taken and none routed
                raise ValueError(
                    f"{where}.matchers: list at least one matcher for {', '.join(shared)} "
                    "(none would take every alert it sends; only a webhook of its own may "
                    "do without)"
                )
            for source in beat.sources:
                hook = source.removeprefix("webhook:")
                if hook != source and hook not in self.webhooks:
                    known = _nearest(hook, self.webhooks) if self.webhooks else "none defined"
                    raise ValueError(
                        f"{where}.sources: no webhook named {hook!r} under webhooks ({known})"
                    )

    def alertmanager_entries(self) -> list[AlertmanagerConfig]:
        """Every configured Alertmanager: ``alertmanagers``, then ``actions.alertmanager_url``
        as the entry named ``am``."""
        entries = list(self.alertmanagers)
        if self.actions.alertmanager_url:
            entries.append(
                AlertmanagerConfig(name=IMPLICIT_ALERTMANAGER, url=self.actions.alertmanager_url)
            )
        return entries

    def intervals(self) -> Any:
        """The ``time_intervals`` section as :class:`~.timeintervals.TimeIntervals`.

        Raises:
            ValueError: an interval is malformed (the message names the field).
        """
        from .timeintervals import TimeIntervals

        try:
            return TimeIntervals.from_config(self.time_intervals, default_location=self.timezone)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def rotations(self) -> dict[str, Any]:
        """The ``oncall`` rotations, by name (schedule files are read now).

        Raises:
            ConfigError: a rotation is malformed or its schedule file unreadable.
        """
        from .oncall import Rotation

        return {
            name: Rotation.from_config(
                data,
                default_timezone=self.timezone,
                base_dir=self._base_dir,
                field=f"oncall.{name}",
            )  # fmt: skip
            for name, data in self.oncall.items()
        }

    def bot_keys(self, unresolved: dict[str, str] | None = None) -> dict[str, tuple[str, ...]]:
        """Resolve every bot's keys (environment, files); ConfigError names the bot.

        ``unresolved``: see :meth:`BotConfig.keys` (keys not set here are recorded, not fatal).
        """
        return {name: bot.keys(name, unresolved) for name, bot in self.bots.items()}

    def effective_default_route(self) -> RouteConfig:
        """The default route, or one that sends to every bot with the default template."""
        return self.default_route or RouteConfig(name="default", bots=list(self.bots))

    def masked(self) -> dict[str, Any]:
        """The configuration as a dict with every secret masked, for the console and logs."""
        data = self.model_dump(mode="json", by_alias=True)
        for bot in data["bots"].values():
            if bot.get("key"):
                bot["key"] = mask_key(bot["key"])
            for entry in bot.get("pool", []):
                if entry.get("key"):
                    entry["key"] = mask_key(entry["key"])
            for field in ("base_url", "proxy"):
                if bot.get(field):
                    bot[field] = _mask_url_secrets(bot[field])
        if data["actions"].get("secret"):
            data["actions"]["secret"] = "***"
        if data["actions"].get("alertmanager_url"):
            data["actions"]["alertmanager_url"] = _mask_url_secrets(
                data["actions"]["alertmanager_url"]
            )
        if data.get("external_url"):
            data["external_url"] = _mask_url_secrets(data["external_url"])
        for am in data["alertmanagers"]:
            am["url"] = _mask_url_secrets(am["url"])
            am["external_urls"] = [_mask_url_secrets(u) for u in am["external_urls"]]
        for kind in ("prometheus", "grafana"):
            for entry in data["graphs"][kind]:
                entry["url"] = _mask_url_secrets(entry["url"])
                entry["external_urls"] = [_mask_url_secrets(u) for u in entry["external_urls"]]
        for secret in ("bearer_token", "password"):
            if data["auth"].get(secret):
                data["auth"][secret] = "***"
        for field in ("store", "base_url"):
            data[field] = _mask_url_secrets(data[field])
        return data


def _mask_url_secrets(url: str) -> str:
    """A URL with its password (and any ``key=`` query value) masked."""
    from ..masking import mask_url

    return mask_url(url)


def _nearest(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(options))}"


_SECTION_FIELDS: dict[str, type[BaseModel]] = {
    "": GatewayConfig,
    "auth": AuthConfig,
    "bots": BotConfig,
    "routes": RouteConfig,
    "default_route": RouteConfig,
    "webhooks": WebhookConfig,
    "actions": ActionsConfig,
    "alertmanagers": AlertmanagerConfig,
    "server": ServerConfig,
    "graphs": GraphsConfig,
    "heartbeats": HeartbeatConfig,
}


_NESTED: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (RouteConfig, "escalate"): EscalationStep,
    (GraphsConfig, "prometheus"): GraphSourceConfig,
    (GraphsConfig, "grafana"): GraphSourceConfig,
}


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        path = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            model = _model_for(loc[:-1])
            fields = set(model.model_fields) | {
                f.alias for f in model.model_fields.values() if f.alias
            }
            fields.discard("continue_")
            lines.append(f"{path}: unknown key; {_nearest(loc[-1], fields)}")
        elif err["type"] == "missing":
            lines.append(f"{path}: is required")
        else:
            lines.append(f"{path}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def _model_for(loc: list[str]) -> type[BaseModel]:
    if not loc:
        return GatewayConfig
    model = _SECTION_FIELDS.get(loc[0], GatewayConfig)
    # Deeper sections (a route's escalation steps): follow the field names down.
    for part in loc[1:]:
        field = model.model_fields.get(part)
        inner = _NESTED.get((model, part))
        if field is not None and inner is not None:
            model = inner
    return model


_SECRET_KEY = re.compile(
    r"[\w.-]*(?:key|secret|password|passwd|token|credential)[\w.-]*[\"']?\s*:", re.IGNORECASE
)
# Anything shaped like a key or a token (long, letters and digits): masked wherever it is.
_TOKEN_LIKE = re.compile(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{16,}")


def yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """Describe a YAML error by line and column, quoting the line with any secret masked.

    PyYAML's own message quotes the text around the error, and a key given inline sits on
    that line often enough: the value of a line whose key names a key, secret, password or
    token is shown as ``***`` whole, and ``key=`` values in URLs are masked.
    """
    from ..masking import redact

    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "cannot parse"
    context = getattr(exc, "context", None)
    what = f"{context}: {problem}" if context else str(problem)
    if mark is None:
        return redact(what)
    lines = text.splitlines()
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    if not 0 <= mark.line < len(lines):
        return redact(f"{what} ({where})")
    return redact(f"{what} ({where}: {masked_line(lines[mark.line])!r})")


def masked_line(line: str) -> str:
    """``line`` with everything after a key that names a secret masked, and anything shaped
    like a key or a token too; long lines cut."""
    match = _SECRET_KEY.search(line)
    if match:
        line = line[: match.end()] + " ***"
    line = _TOKEN_LIKE.sub("***", line)
    return line if len(line) <= 120 else line[:119] + "…"


def load_config(path: str | Path | None = None, *, text: str | None = None) -> GatewayConfig:
    """Read and validate a gateway config file (YAML).

    Raises:
        ConfigError: the file cannot be read, is not YAML, or breaks a rule; the message
            names the field (``bots.ops.key_env: ...``).
    """
    if text is None:
        if path is None:
            raise ConfigError("no config given: pass --config FILE")
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config is not valid YAML: {yaml_problem(exc, text)}") from None
    if not isinstance(data, dict):
        raise ConfigError("config must be a YAML mapping with at least a 'bots' section")
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {_explain(exc)}") from None
    if path is not None:
        config._base_dir = Path(path).resolve().parent
    return config
