"""The running gateway: what one gateway owns and how it starts, reloads and stops.

:class:`Gateway` holds the outbox, the history, the render pools, the runtime (routes, bots,
dispatcher), the journal's processor and the escalator. :mod:`.app` builds the HTTP app around
one; modules that only need its type import it from here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..store import Outbox
from ..store.history import HistoryStore, MemoryHistory
from . import heap
from .actions.escalation import Escalator
from .config import GatewayConfig, load_config
from .console import ConsoleMetrics, HistoryRecorder
from .graphs.drawing import DrawPool
from .intake.bodies import BodyBudget
from .intake.inbox import InboxProcessor
from .metrics import GatewayMetrics
from .runtime import Runtime, build_runtime
from .storewatch import StoreWatch
from .templates.render_pool import CUT_OFF_SECONDS, RenderPool

__all__ = ["HISTORY_PURGE_EVERY", "Gateway"]

logger = logging.getLogger("wecom_bot.gateway")


HISTORY_PURGE_EVERY = 600.0
"""Seconds between purges of history (and delivered messages) past ``history_retention``."""


class Gateway:
    """Everything one running gateway owns; ``app.state.gateway`` while the app runs."""

    def __init__(
        self,
        config: GatewayConfig,
        store: Outbox,
        metrics: GatewayMetrics,
        *,
        config_path: Path | None,
        clock: Callable[[], float],
        history: HistoryStore | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.console_metrics = ConsoleMetrics(metrics.registry)
        self.config_path = config_path
        self.clock = clock
        self.inflight = 0
        """Inbound webhook requests being answered right now."""
        self.body_budget = BodyBudget(lambda: self.config.server.max_inflight_body_bytes)
        """The bytes of request bodies held at once (``server.max_inflight_body_bytes``)."""
        self.history = HistoryRecorder(
            history or MemoryHistory(),
            store,
            clock=clock,
            secrets=self._keys,
            busy=lambda: self.inflight > 0,
            busy_share=0.05,
        )
        limits = config.template_limits  # the pool outlives reloads: sized at start
        self.render_pool = RenderPool(
            workers=limits.workers, memory_bytes=limits.memory_mb << 20, cut_off=CUT_OFF_SECONDS
        )
        self.playground_pool = RenderPool(workers=1, memory_bytes=limits.memory_mb << 20)
        self.graph_pool = DrawPool(workers=1)  # its process starts with the first graph
        self.runtime: Runtime = build_runtime(
            config, store=store, metrics=metrics, clock=clock, history=self.history,
            render_pool=self.render_pool, graph_pool=self.graph_pool,
        )  # fmt: skip
        self.inbox = InboxProcessor(
            lambda: self.runtime, clock=clock, busy=lambda: self.inflight > 0, busy_share=0.05,
            budget=self.body_budget,
        )  # fmt: skip
        self.escalator = Escalator(lambda: self.runtime, clock=clock)
        self.watch = StoreWatch(store, metrics, lambda: self.config.bots, clock=clock)
        self.accepting = True
        self.stop_signal: str | None = None
        """The signal that stops the gateway (``SIGTERM``) once it arrived, for the last line."""
        self._reload_lock = asyncio.Lock()
        self.last_reload: dict[str, Any] = {
            "ok": True, "at": clock(), "message": "started", "code": "reload.started", "params": {},
        }  # fmt: skip

    def _keys(self) -> list[str]:
        runtime = getattr(self, "runtime", None)
        if runtime is None:
            return []
        return [key for target in runtime.targets.values() for key in target.keys]

    async def start(self) -> None:
        """Recover the outbox, start delivering, recording history and firing escalations."""
        self.history.start(
            retention=self.config.history_retention,
            purge_every=min(HISTORY_PURGE_EVERY, self.config.history_retention),
        )
        await self.watch.prime()
        await self.runtime.start()
        self.inbox.start()
        self.escalator.start()
        self.watch.start()

    async def not_ready(self) -> str | None:
        """Why the gateway cannot keep its promise right now (``/readyz``, after the store's
        ping), or ``None``: the store is not the one opened, delivery is not running or stuck.

        Raises:
            StoreUnavailableError: the store does not answer.
        """
        problem = await self.store.check_identity()
        if problem is not None:
            return problem
        if not self.delivering:
            return "the dispatcher or the journal's processor is not running"
        if self.watch.stuck:
            return "; ".join(self.watch.stuck.values())
        return None

    @property
    def delivering(self) -> bool:
        """Whether the dispatcher and the journal's processor run (readiness)."""
        dispatcher = self.runtime.dispatcher
        return dispatcher is not None and dispatcher.running and self.inbox.running

    def on_stop_signal(self, name: str) -> None:
        """A stop signal arrived: remember which, and abandon the renders in progress."""
        self.stop_signal = name
        self.close_render_pools()

    def close_render_pools(self) -> None:
        """Abandon the renders in progress (at stop: a render must not hold the stop up)."""
        self.render_pool.close()
        self.playground_pool.close()
        self.graph_pool.close()

    async def stop(self) -> None:
        """Stop accepting, finish in-flight sends; the outbox keeps the rest."""
        self.accepting = False
        self.close_render_pools()
        await self.watch.stop()
        await self.inbox.stop()
        await self.escalator.stop()
        await self.runtime.stop()
        await self.history.stop()
        await self.history.history.close()
        await self._log_stop()
        await self.store.close()

    async def _log_stop(self) -> None:
        # One line saying why the gateway stops and what it leaves for the next start.
        why = f": signal {self.stop_signal}" if self.stop_signal else ""
        try:
            queued = f"{await self.store.pending_count()} message(s) stay queued in the outbox"
        except Exception as exc:  # the store may be the reason it stops: still say goodbye
            queued = f"the outbox does not answer ({type(exc).__name__})"
        logger.info("stopping%s; %s", why, queued, extra={"event": "stopping"})

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file and swap it in atomically; a bad file keeps the old one.

        The result: ``ok``, ``message`` (English, as logged), and ``code`` with ``params``
        naming what the message says, for the console to say in its language (``reload.ok``,
        ``reload.kept`` with the config error as ``params.detail``, ``reload.no_file``)."""
        async with self._reload_lock:
            if self.config_path is None:
                result = {
                    "ok": False, "message": "no config file to reload from",
                    "code": "reload.no_file", "params": {},
                }  # fmt: skip
            else:
                try:
                    config = load_config(self.config_path)
                    if config.store != self.config.store:
                        raise ConfigError(
                            "store: changing the store needs a restart (the outbox moves)"
                        )
                    if config.server != self.config.server:
                        raise ConfigError("server: changing it needs a restart")
                    runtime = build_runtime(
                        config,
                        store=self.store,
                        metrics=self.metrics,
                        clock=self.clock,
                        history=self.history,
                        previous=self.runtime,
                        render_pool=self.render_pool,
                        graph_pool=self.graph_pool,
                    )
                except ConfigError as exc:
                    result = {
                        "ok": False, "message": f"kept the running config: {exc}",
                        "code": "reload.kept", "params": {"detail": str(exc)},
                    }  # fmt: skip
                else:
                    old = self.runtime
                    await runtime.start()
                    self.config, self.runtime = config, runtime
                    await old.stop()
                    heap.resettle()
                    result = {
                        "ok": True, "message": "config reloaded", "code": "reload.ok", "params": {}
                    }
            self.last_reload = {**result, "at": self.clock()}
            log = logger.info if result["ok"] else logger.error
            log("reload: %s", result["message"])
            return result
