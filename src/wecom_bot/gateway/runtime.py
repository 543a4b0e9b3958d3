"""What a loaded configuration becomes: routes, renderer, bot targets and the dispatcher.

A :class:`Runtime` is built whole from a :class:`GatewayConfig` (keys resolved, templates
compiled, matchers parsed) or not at all, which is what lets ``POST /-/reload`` swap configs
atomically and keep the old one when the new one is bad.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..digest import Syntax, item_content
from ..dispatcher import (
    BotTarget,
    Dispatcher,
    DispatcherSettings,
    DispatchObserver,
    LocalLimiter,
    NoticeFold,
    SendLimiter,
)
from ..errors import ConfigError, DeliveryError, SecretNotSetError
from ..ratelimit import Rate, SlidingWindowLimiter, parse_rate
from ..retry import RetryPolicy
from ..store import Outbox, OutboxRecord
from ..storm import AlertBrief
from .actions.links import ActionLinker
from .actions.notices import NoticeBrief, attach_notices, notices_of
from .actions.notices import fold as fold_briefs
from .actions.registry import AlertmanagerRegistry
from .config import BotConfig, GatewayConfig, RouteConfig
from .heartbeats import Heartbeat, compile_heartbeats
from .metrics import GatewayMetrics, MetricsObserver
from .model import Notification
from .oncall import Rotation
from .routing import MentionRules, Mentions, Route, Router
from .templates.render_pool import RenderPool, TemplateCutOff
from .templates.renderer import (
    SUMMARY_TEMPLATE,
    MsgType,
    Renderer,
    RendererSettings,
    RenderReport,
    TemplateError,
)
from .timeintervals import MutedAction, RouteSchedule
from .window import DurableWindow

if TYPE_CHECKING:
    from .graphs.drawing import DrawPool
    from .graphs.sending import Graphs
    from .recording import HistoryRecorder

logger = logging.getLogger("wecom_bot.gateway")


class ObserverChain(DispatchObserver):
    """Hands every dispatcher event to several observers (metrics, history), in order."""

    def __init__(self, observers: Sequence[DispatchObserver]) -> None:
        self.observers = tuple(observers)

    def sent(self, bot: str, record: OutboxRecord, seconds_since_created: float) -> None:
        """See :meth:`DispatchObserver.sent`."""
        for observer in self.observers:
            observer.sent(bot, record, seconds_since_created)

    def retried(self, bot: str, record: OutboxRecord, error: DeliveryError, delay: float) -> None:
        """See :meth:`DispatchObserver.retried`."""
        for observer in self.observers:
            observer.retried(bot, record, error, delay)

    def dead_lettered(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """See :meth:`DispatchObserver.dead_lettered`."""
        for observer in self.observers:
            observer.dead_lettered(bot, record, reason)

    def rate_limit_wait(self, bot: str, seconds: float) -> None:
        """See :meth:`DispatchObserver.rate_limit_wait`."""
        for observer in self.observers:
            observer.rate_limit_wait(bot, seconds)

    def digested(self, bot: str, items: int, messages: int, compact: bool) -> None:
        """See :meth:`DispatchObserver.digested`."""
        for observer in self.observers:
            observer.digested(bot, items, messages, compact)

    def dropped(self, bot: str, record: OutboxRecord, reason: str) -> None:
        """See :meth:`DispatchObserver.dropped`."""
        for observer in self.observers:
            observer.dropped(bot, record, reason)


@dataclass(frozen=True)
class Muting:
    """Why a route is muted right now, and what happens to what arrives.

    Attributes:
        action: ``keep``, ``drop`` or ``defer``.
        resumes_at: when the route is active again (``None``: not within a year).
        reason: the intervals that mute it, for history.
        inside: the ``mute_time_intervals`` it is inside (the pages say the reason in their
            language from these).
        outside: else the ``active_time_intervals`` it is outside.
        endless: a ``defer`` turned ``keep``: the muting does not end within a year.
    """

    action: str
    resumes_at: float | None
    reason: str
    inside: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    endless: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "action": self.action,
            "resumes_at": self.resumes_at,
            "reason": self.reason,
            "inside": list(self.inside),
            "outside": list(self.outside),
            "endless": self.endless,
        }


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
    intervals: Any = None
    limiter: SendLimiter | None = None
    history: HistoryRecorder | None = None
    schedules: Mapping[str, RouteSchedule] = field(default_factory=dict)
    rotations: Mapping[str, Rotation] = field(default_factory=dict)
    route_oncall: Mapping[str, str] = field(default_factory=dict)
    actions: ActionLinker | None = None
    """Signs action links (``None`` without ``external_url``)."""
    alertmanagers: AlertmanagerRegistry = field(default_factory=AlertmanagerRegistry)
    """The configured Alertmanagers (the only ones silences are created in)."""
    render_pool: RenderPool | None = None
    graphs: Graphs | None = None
    """Sends alert graphs after their texts (``None`` without ``graphs`` sources)."""
    heartbeats: tuple[Heartbeat, ...] = ()
    """The configured heartbeats, compiled (taken out of notifications before routing)."""
    _builtin: Renderer | None = field(default=None, repr=False)

    def muting(self, route_name: str, now: float) -> Muting | None:
        """How ``route_name`` is muted at ``now`` by its time intervals, or ``None`` if active."""
        schedule = self.schedules.get(route_name)
        if schedule is None or schedule.always_active:
            return None
        moment = datetime.fromtimestamp(now, UTC)
        if not schedule.is_muted(moment):
            return None
        inside = [n for n in schedule.mute if self._contains(n, moment)]
        reason = (
            f"inside mute_time_intervals {', '.join(inside)}"
            if inside
            else f"outside active_time_intervals {', '.join(schedule.active)}"
        )
        resumes = schedule.resumes_at(moment)
        action = schedule.muted_action.value
        endless = action == MutedAction.DEFER and resumes is None
        if endless:
            action = MutedAction.KEEP.value
            reason += "; it does not end within a year, so the notification is kept"
        outside = () if inside else tuple(schedule.active)
        return Muting(
            action, resumes.timestamp() if resumes else None, reason,
            inside=tuple(inside), outside=outside, endless=endless,
        )  # fmt: skip

    def _contains(self, name: str, moment: datetime) -> bool:
        return self.intervals is not None and self.intervals.contains(name, moment)

    def oncall_mentions(
        self, route: Route, notification: Notification, now: float | None = None
    ) -> Mentions:
        """The route's on-call at ``now`` (the clock when omitted), when the notification fires
        with a paging severity."""
        rotation = self.rotations.get(self.route_oncall.get(route.name, ""))
        if rotation is None or notification.status != "firing":
            return Mentions()
        severities = set(self.config.oncall_severities)
        paging = notification.common_labels.get("severity") in severities or any(
            a.firing and a.labels.get("severity") in severities for a in notification.alerts
        )
        if not paging:
            return Mentions()
        when = self.clock() if now is None else now
        user = rotation.current(datetime.fromtimestamp(when, UTC))
        return Mentions((user,)) if user else Mentions()

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

    def render(
        self, route: Route, bot: str, notification: Notification, now: float | None = None
    ) -> list[dict[str, Any]]:
        """The API payloads ``route`` sends to ``bot`` for ``notification`` (maybe none);
        ``now``: when it was received (who is on call then), the clock when omitted.

        Renders in this process (``gateway check``); the gateway uses :meth:`render_async`."""
        report = self.render_here(route, bot, notification, now)
        return [] if report is None else report.payloads

    def render_here(
        self, route: Route, bot: str, notification: Notification, now: float | None = None
    ) -> RenderReport | None:
        """:meth:`render` with its report (sizes, warnings, the template that wrote it);
        ``None`` when the route selects none of the alerts."""
        prepared = self._prepare(route, bot, notification, now)
        if prepared is None:
            return None
        selected, msgtype, mentions = prepared
        return self.renderer.render_check(
            route.template, selected, msgtype=msgtype, mentions=mentions
        )

    async def render_async(
        self, route: Route, bot: str, notification: Notification, now: float | None = None
    ) -> list[dict[str, Any]]:
        """:meth:`render`, with a configured template rendered in the render pool (away from
        the event loop, bounded in time and memory); built-in templates render here.

        Raises:
            TemplateError: as :meth:`Renderer.render`; :class:`TemplateLimitError` when the
                template went past its limits.
        """
        report = await self.render_route(route, bot, notification, now)
        return [] if report is None else report.payloads

    async def render_route(
        self, route: Route, bot: str, notification: Notification, now: float | None = None
    ) -> RenderReport | None:
        """:meth:`render_async` with its report (which template wrote it: a storm summary or
        the route's own); ``None`` when the route selects none of the alerts."""
        prepared = self._prepare(route, bot, notification, now)
        if prepared is None:
            return None
        selected, msgtype, mentions = prepared
        return await self.render_report(
            route.template, selected, msgtype=msgtype, mentions=mentions
        )

    async def render_report(
        self,
        template: str,
        notification: Notification,
        *,
        msgtype: MsgType,
        mentions: Mentions | None = None,
        settings: RendererSettings | None = None,
        pool: RenderPool | None = None,
        actions: Callable[[Notification], Any] | None = None,
    ) -> RenderReport:
        """Render ``notification`` with ``template``: in a render pool when the template is
        configured or ``settings`` (other templates or limits, e.g. the playground's) are
        given; built-in templates render here.

        It picks the form :meth:`Renderer.render_check` picks (the route's template when that
        fits one message, else the summary: see :meth:`Renderer.form_of`), rendering each
        form where its template runs.

        Args:
            template, notification, msgtype, mentions: see :meth:`Renderer.render_check`.
            settings: the renderer to use instead of the configured one.
            pool: the pool to render in instead of the runtime's (the playground has its own,
                so that nothing typed there delays the rendering of notifications).
            actions: writes the action links instead of the runtime's linker (the
                playground's inert preview links, or none at all for a test send).

        Raises:
            TemplateError: as :meth:`Renderer.render_check`.
        """
        renderer = self.renderer if actions is None else self.renderer.with_actions(actions)
        form = renderer.form_of(notification)
        args = (template, notification, msgtype, mentions, settings, pool, renderer)
        if form != "summary":
            report = await self._render_form(*args, summarize=False)
            if form == "alerts" or renderer.fits_alone(report):
                return report
        return await self._render_form(*args, summarize=True)

    async def _render_form(
        self,
        template: str,
        notification: Notification,
        msgtype: MsgType,
        mentions: Mentions | None,
        settings: RendererSettings | None,
        pool: RenderPool | None,
        renderer: Renderer,
        *,
        summarize: bool,
    ) -> RenderReport:
        """One form of :meth:`render_report`: the summary or the route's template."""
        # A storm renders the summary template, not the route's: where it runs depends on it.
        used = SUMMARY_TEMPLATE if summarize else template
        if settings is None and not renderer.is_configured(used, msgtype):
            return renderer.render_check(
                template, notification, msgtype=msgtype, mentions=mentions, summarize=summarize
            )
        own = settings is None  # the configured templates, not the playground's
        settings = settings or renderer.settings
        pool = pool or self.render_pool
        try:
            if pool is None:
                local = Renderer.from_settings(settings, clock=renderer.clock)
                return local.render_check(
                    template, notification, msgtype=msgtype, mentions=mentions,
                    summarize=summarize,
                )  # fmt: skip
            return await pool.render_check(
                settings, template, notification, msgtype=msgtype, mentions=mentions,
                now=renderer.clock(), links=renderer.action_links(notification),
                summarize=summarize,
            )  # fmt: skip
        except TemplateCutOff:
            if not own:
                raise
            # Logged once, when it was cut off; a notification is not held for it.
        except TemplateError as exc:
            if not own or used != SUMMARY_TEMPLATE:
                raise
            logger.error("the configured summary template failed (%s); the built-in one is used",
                         exc)  # fmt: skip
        fallback = "generic" if notification.source == "generic" else "default"
        if used == SUMMARY_TEMPLATE:
            fallback = SUMMARY_TEMPLATE
        return self.builtin_renderer.render_check(
            fallback, notification, msgtype=msgtype, mentions=mentions, summarize=summarize
        )

    @property
    def builtin_renderer(self) -> Renderer:
        """A renderer of the built-in templates alone, with this one's settings (what renders
        when a configured template is cut off, or a configured summary fails)."""
        if self._builtin is None:
            renderer = self.renderer
            self._builtin = Renderer(
                timezone=renderer.timezone, max_alerts=renderer.max_alerts,
                clock=renderer.clock, max_output_bytes=renderer.max_output_bytes,
                actions=renderer.actions, console_url=renderer.console_url,
                limits=renderer.limits,
            )  # fmt: skip
        return self._builtin

    def _prepare(
        self, route: Route, bot: str, notification: Notification, now: float | None
    ) -> tuple[Notification, MsgType, Mentions] | None:
        selected = route.select(notification)
        if selected is None:
            return None
        return selected, self.msgtype_for(route, bot), self.mentions_for(route, selected, now)

    async def summarize(
        self,
        briefs: Sequence[AlertBrief],
        *,
        syntax: Syntax,
        max_messages: int,
        notifications: int,
        running_total: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Storm summary contents for the dispatcher (the ``summary`` template): a configured
        one renders in the render pool, like every configured template; the built-in here.
        ``running_total``: see :class:`~wecom_bot.dispatcher.Summarizer`."""
        renderer = self.renderer
        configured = renderer.is_configured(SUMMARY_TEMPLATE, syntax)
        try:
            if self.render_pool is not None and configured:
                report = await self.render_pool.render_summary(
                    renderer.settings, briefs, msgtype=syntax, max_messages=max_messages,
                    notifications=notifications, running_total=running_total,
                    now=renderer.clock(),
                )  # fmt: skip
            else:
                report = renderer.render_summary(
                    briefs, msgtype=syntax, max_messages=max_messages,
                    notifications=notifications, running_total=running_total,
                )  # fmt: skip
        except TemplateError as exc:
            if not configured:
                raise
            if not isinstance(exc, TemplateCutOff):
                logger.error(
                    "the configured summary template failed (%s); the built-in one is used", exc
                )
            report = self.builtin_renderer.render_summary(
                briefs, msgtype=syntax, max_messages=max_messages,
                notifications=notifications, running_total=running_total,
            )  # fmt: skip
        return [item_content(p) for p in report.payloads]

    async def fold_notices(
        self, payloads: Sequence[Mapping[str, Any]], *, syntax: Syntax
    ) -> NoticeFold:
        """Queued escalation or reminder messages of several groups as one message, for the
        dispatcher (see :class:`~wecom_bot.dispatcher.NoticeFolder`): groups acknowledged,
        resolved or forgotten since they were queued are left out; a group's own notice, when
        it is the only one left, goes as it is (every part of its newest firing), with all its
        links; a message the escalator did not write goes as it is."""
        store = self.store_required
        open_: dict[str, bool] = {}
        carried = [notices_of(p) for p in payloads]
        kept = frozenset(i for i, briefs in enumerate(carried) if briefs is None)
        obsolete: set[int] = set()
        live: list[int] = []
        latest: dict[str, NoticeBrief] = {}
        stale = False  # a live message names a group that is no longer open
        for index, briefs in enumerate(carried):
            if briefs is None:
                continue
            alive = []
            for brief in briefs:
                if brief.group not in open_:
                    group = await store.get_group(brief.group)
                    open_[brief.group] = group is not None and group.acknowledged_by is None
                if open_[brief.group]:
                    alive.append(brief)
            if not alive:
                obsolete.add(index)
                continue
            stale = stale or len(alive) < len(briefs)
            live.append(index)
            for brief in alive:
                latest[brief.group] = brief
        if not live or (len(live) == 1 and not stale):
            return NoticeFold(None, frozenset(obsolete), kept)
        own = [i for i in live if len(carried[i] or ()) == 1]
        if len(latest) == 1 and own == live:
            newest = (carried[live[-1]] or [])[0].fire
            parts = [i for i in live if (carried[i] or [])[0].fire == newest]
            if parts == live:
                return NoticeFold(None, frozenset(obsolete), kept)
            return NoticeFold([dict(payloads[i]) for i in parts], frozenset(obsolete), kept)
        briefs = list(latest.values())
        body = fold_briefs(
            briefs, syntax=syntax, now=self.clock(), console_url=self.renderer.console_url
        )
        users = dict.fromkeys(u for b in briefs for u in b.users)
        mobiles = dict.fromkeys(m for b in briefs for m in b.mobiles)
        report = self.renderer.compose(
            f"{briefs[0].kind}-fold", body, msgtype=syntax,
            mentions=Mentions(tuple(users), tuple(mobiles)),
        )  # fmt: skip
        folded = [attach_notices(p, briefs) for p in report.payloads]
        return NoticeFold(folded, frozenset(obsolete), kept)

    def mentions_for(
        self, route: Route, notification: Notification, now: float | None = None
    ) -> Mentions:
        """Who ``route`` mentions for ``notification``: its rules, the global ones, on-call."""
        mentions = route.mentions_for(notification)
        if self.global_mentions is not None:
            mentions = mentions | self.global_mentions.resolve(notification)
        return mentions | self.oncall_mentions(route, notification, now)

    def msgtype_for(self, route: Route, bot: str) -> MsgType:
        """What ``route`` renders for ``bot``: the route's msgtype, else the bot's."""
        return route.msgtype or self.config.bots[bot].msgtype

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
        """Stop delivering after in-flight sends (graphs in progress are abandoned)."""
        if self.graphs is not None:
            await self.graphs.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()


def build_limiter(
    config: GatewayConfig,
    store: Outbox | None,
    clock: Callable[[], float] = time.time,
    previous: SendLimiter | None = None,
) -> SendLimiter:
    """The limiter: shared through Redis when the outbox is Redis, else in-process with its
    window kept in the outbox's send log (``previous``: the one a reload replaces)."""
    rate = safe_rate(parse_rate(config.rate), config.rate_margin)
    client = getattr(store, "client", None)
    if client is not None and config.store.startswith(("redis://", "rediss://")):
        from ..store.redis import RedisWindowLimiter

        return RedisLimiterAdapter(RedisWindowLimiter(client, rate=rate))
    if store is None:
        return LocalLimiter(SlidingWindowLimiter(rate))
    return DurableWindow(rate, store, clock=clock, previous=previous)


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

    async def used(self, key: str) -> int:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`."""
        return int(await self.limiter.used(key))

    async def answered(self, key: str, after: float, *, later: float = 0.0) -> None:
        """See :class:`~wecom_bot.dispatcher.SendLimiter`."""
        await self.limiter.answered(key, after, later=later)

    async def capacity(self, key: str, within: float, *, cap: int) -> int:
        """Estimate from the shared window: slots free now, plus ``limit`` per whole window."""
        rate = self.limiter.rate
        used = int(await self.limiter.used(key))
        if await self.limiter.wait_time(key) > within:
            return 0
        free = max(rate.limit - used, 0)
        return int(min(cap, free + rate.limit * int(within // rate.window)))

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


def _signing_secret(config: GatewayConfig, unresolved: dict[str, str] | None) -> bytes:
    """The secret that signs action links; for a check (``unresolved`` given) an unset one is
    recorded there and a throwaway secret stands in, so the links still render."""
    try:
        return config.actions.secret_bytes()
    except SecretNotSetError as exc:
        if unresolved is None:
            raise
        unresolved["actions.secret"] = str(exc).removeprefix("actions.secret: ")
        return os.urandom(32)


def build_runtime(
    config: GatewayConfig,
    *,
    store: Outbox | None,
    metrics: GatewayMetrics | None,
    clock: Callable[[], float],
    history: HistoryRecorder | None = None,
    previous: Runtime | None = None,
    unresolved: dict[str, str] | None = None,
    render_pool: RenderPool | None = None,
    graph_pool: DrawPool | None = None,
) -> Runtime:
    """Turn a config into a runtime; with a store it gets a dispatcher too.

    Args:
        config: the validated configuration.
        store: the outbox; ``None`` builds a runtime only to validate the config.
        metrics: the gateway's metrics (fed by the dispatcher).
        clock: wall-clock time.
        history: records what ingest and the dispatcher do (the console's history).
        previous: the runtime a reload replaces (its rate window is carried over).
        unresolved: for checks only: keys whose variable or file is not set are recorded
            here instead of failing (see :meth:`BotConfig.keys`).
        render_pool: where configured templates render (``None``: in this process).
        graph_pool: where graphs are drawn (``None``: no graphs are sent).

    Raises:
        ConfigError: a key cannot be resolved, a template does not compile, a matcher is bad.
    """
    keys = config.bot_keys(unresolved)
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
    alertmanagers = AlertmanagerRegistry.from_config(config, unresolved)
    linker = (
        ActionLinker(
            config.external_url,
            _signing_secret(config, unresolved),
            alertmanagers=alertmanagers,
            ttl=config.actions.ttl,
            clock=clock,
        )
        if config.external_url
        else None
    )
    renderer = Renderer(
        config.templates,
        timezone=config.timezone,
        max_alerts=config.max_alerts_per_message,
        max_parts=config.max_messages_per_notification,
        max_summary_parts=config.max_messages_per_summary,
        context_labels=config.context_labels,
        actions=linker,
        console_url=f"{config.external_url}/ui/" if config.external_url else None,
        limits=config.template_limits.limits(),
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
    try:
        intervals = config.intervals()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    route_configs = [*config.routes, config.effective_default_route()]
    schedules = {
        r.name: RouteSchedule(
            r.active_time_intervals,
            r.mute_time_intervals,
            intervals,
            muted=r.muted,
            field=f"routes[{r.name}]",
        )  # fmt: skip
        for r in route_configs
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
        history=history,
        intervals=intervals,
        schedules=schedules,
        rotations=config.rotations(),
        route_oncall={r.name: r.oncall for r in route_configs if r.oncall},
        actions=linker,
        alertmanagers=alertmanagers,
        render_pool=render_pool,
        heartbeats=compile_heartbeats(config),
    )
    if store is not None and graph_pool is not None and config.graphs.enabled:
        from .graphs.sending import Graphs

        runtime.graphs = Graphs(
            config.graphs, graph_pool, timezone=config.timezone, clock=clock, metrics=metrics
        )
    if store is not None:
        rate = parse_rate(config.rate)
        observers: list[DispatchObserver] = []
        if metrics is not None:
            observers.append(MetricsObserver(metrics))
        if history is not None:
            observers.append(history)
        runtime.limiter = build_limiter(
            config, store, clock, previous.limiter if previous is not None else None
        )
        runtime.dispatcher = Dispatcher(
            store,
            targets,
            limiter=runtime.limiter,
            retry=RetryPolicy(max_attempts=12, max_delay=60.0, rate_window=rate.window),
            settings=DispatcherSettings(
                coalesce_after=config.coalesce_after,
                lease_seconds=config.lease,
                storm_burst=config.storm_burst,
                storm_interval=(
                    rate.window / 10 if config.storm_interval is None else config.storm_interval
                ),
            ),
            observer=ObserverChain(observers),
            clock=clock,
            summarize=runtime.summarize,
            fold_notices=runtime.fold_notices,
        )
    return runtime
