"""What a loaded configuration becomes: routes, renderer, bot targets and the dispatcher.

A :class:`Runtime` is built whole from a :class:`GatewayConfig` (keys resolved, templates
compiled, matchers parsed) or not at all, which is what lets ``POST /-/reload`` swap configs
atomically and keep the old one when the new one is bad.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..dispatcher import BotTarget, Dispatcher, DispatcherSettings, LocalLimiter, SendLimiter
from ..errors import ConfigError
from ..ratelimit import Rate, SlidingWindowLimiter, parse_rate
from ..retry import RetryPolicy
from ..store import Outbox
from .config import BotConfig, GatewayConfig, RouteConfig
from .metrics import GatewayMetrics, MetricsObserver
from .model import Notification
from .routing import MentionRules, Route, Router
from .templates import Renderer

logger = logging.getLogger("wecom_bot.gateway")


def _route(config: RouteConfig) -> Route:
    return Route(
        name=config.name,
        matchers=config.matchers,
        bots=config.bots,
        template=config.template,
        msgtype=config.msgtype,
        mentions=config.mentions or None,
        continue_=config.continue_,
        send_resolved=config.send_resolved,
    )


def _http_options(name: str, bot: BotConfig) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if bot.proxy:
        options["proxy"] = bot.proxy
    if bot.insecure_skip_verify:
        logger.warning(
            "bots.%s: insecure_skip_verify is on: TLS certificates are NOT verified for this bot",
            name,
        )
        options["verify"] = False
    elif bot.ca_bundle:
        if not bot.ca_bundle.is_file():
            raise ConfigError(f"bots.{name}.ca_bundle: no file at {bot.ca_bundle}")
        import ssl

        options["verify"] = ssl.create_default_context(cafile=str(bot.ca_bundle))
    return options


def safe_rate(rate: Rate, margin: float) -> Rate:
    """Widen the window by ``margin`` so clock and network jitter never push past the server's."""
    return Rate(rate.limit, rate.window * (1.0 + margin))


@dataclass
class Runtime:
    """A loaded configuration, ready to route, render and deliver."""

    config: GatewayConfig
    router: Router
    webhook_routes: dict[str, Route]
    global_mentions: MentionRules | None
    renderer: Renderer
    targets: dict[str, BotTarget]
    store: Outbox | None
    metrics: GatewayMetrics | None
    clock: Callable[[], float]
    dispatcher: Dispatcher | None = None

    @property
    def store_required(self) -> Outbox:
        """The outbox (a runtime built only to validate a config has none)."""
        if self.store is None:
            raise RuntimeError("this runtime was built without an outbox")
        return self.store

    def routes_for(self, notification: Notification, route_name: str | None) -> list[Route]:
        """The routes a notification takes (forced by name, or matched).

        Raises:
            LookupError: ``route_name`` names no route or webhook.
        """
        if route_name is None:
            return self.router.match(notification)
        if route_name.startswith("webhook:"):
            name = route_name.split(":", 1)[1]
            if name not in self.webhook_routes:
                raise LookupError(f"no webhook named {name!r}")
            return [self.webhook_routes[name]]
        return [self.router.route(route_name)]

    def render(self, route: Route, bot: str, notification: Notification) -> list[dict[str, Any]]:
        """The API payloads ``route`` sends to ``bot`` for ``notification`` (maybe none)."""
        selected = route.select(notification)
        if selected is None:
            return []
        mentions = route.mentions_for(selected)
        if self.global_mentions is not None:
            mentions = mentions | self.global_mentions.resolve(selected)
        msgtype = route.msgtype or self.config.bots[bot].msgtype
        return self.renderer.render(route.template, selected, msgtype=msgtype, mentions=mentions)

    def notify(self, bots: Iterable[str]) -> None:
        """Wake the dispatcher's workers for ``bots``."""
        if self.dispatcher is not None:
            for bot in bots:
                self.dispatcher.notify(bot)

    async def start(self) -> None:
        """Start delivering (recovering leases a previous run left)."""
        if self.dispatcher is not None:
            await self.dispatcher.start()

    async def stop(self) -> None:
        """Stop delivering after in-flight sends."""
        if self.dispatcher is not None:
            await self.dispatcher.stop()


def build_limiter(config: GatewayConfig, store: Outbox | None) -> SendLimiter:
    """The limiter: shared through Redis when the outbox is Redis, else in-process."""
    rate = safe_rate(parse_rate(config.rate), config.rate_margin)
    client = getattr(store, "client", None)
    if client is not None and config.store.startswith(("redis://", "rediss://")):
        from ..store.redis import RedisWindowLimiter

        return RedisLimiterAdapter(RedisWindowLimiter(client, rate=rate))
    return LocalLimiter(SlidingWindowLimiter(rate))


class RedisLimiterAdapter:
    """Adapts the Redis limiter (shared by every gateway instance) to the dispatcher."""

    def __init__(self, limiter: Any) -> None:
        self.limiter = limiter

    async def try_acquire(self, key: str) -> float:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`."""
        return float(await self.limiter.try_acquire(key))

    async def record_rejection(self, key: str) -> float:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`."""
        return float(await self.limiter.record_rejection(key))

    async def eta(self, key: str, count: int) -> float:
        """Estimate from the shared window: slots free now, then one window per ``limit``."""
        if count <= 0:
            return 0.0
        used = int(await self.limiter.used(key))
        rate = self.limiter.rate
        free = max(rate.limit - used, 0)
        if count <= free:
            return 0.0
        return float(rate.window * -(-(count - free) // rate.limit))


def build_runtime(
    config: GatewayConfig,
    *,
    store: Outbox | None,
    metrics: GatewayMetrics | None,
    clock: Callable[[], float],
) -> Runtime:
    """Turn a config into a runtime; with a store it gets a dispatcher too.

    Raises:
        ConfigError: a key cannot be resolved, a template does not compile, a matcher is bad.
    """
    keys = config.bot_keys()
    routes = [_route(r) for r in config.routes]
    default = _route(config.effective_default_route())
    router = Router(routes, default)
    webhook_routes = {
        name: Route(
            name=f"webhook:{name}",
            bots=hook.bots,
            template=hook.template,
            msgtype=hook.msgtype,
            mentions=hook.mentions or None,
        )
        for name, hook in config.webhooks.items()
    }
    global_mentions = (
        MentionRules.from_config(config.mentions, field="mentions") if config.mentions else None
    )
    renderer = Renderer(
        config.templates,
        timezone=config.timezone,
        max_alerts=config.max_alerts_per_message,
    )
    known = set(renderer.template_names())
    for route in [*routes, default, *webhook_routes.values()]:
        if route.template not in known:
            raise ConfigError(
                f"route {route.name!r}: template {route.template!r} is not defined "
                f"(built-in and configured: {', '.join(sorted(known))})"
            )
    targets = {
        name: BotTarget(
            name=name,
            keys=keys[name],
            base_url=bot.base_url or config.base_url,
            timeout=bot.timeout,
            http=_http_options(name, bot) if store is not None else {},
        )
        for name, bot in config.bots.items()
    }
    runtime = Runtime(
        config=config,
        router=router,
        webhook_routes=webhook_routes,
        global_mentions=global_mentions,
        renderer=renderer,
        targets=targets,
        store=store,
        metrics=metrics,
        clock=clock,
    )
    if store is not None:
        rate = parse_rate(config.rate)
        runtime.dispatcher = Dispatcher(
            store,
            targets,
            limiter=build_limiter(config, store),
            retry=RetryPolicy(max_attempts=12, max_delay=60.0, rate_window=rate.window),
            settings=DispatcherSettings(
                coalesce_after=config.coalesce_after, lease_seconds=config.lease
            ),
            observer=MetricsObserver(metrics) if metrics is not None else None,
            clock=clock,
        )
    return runtime
