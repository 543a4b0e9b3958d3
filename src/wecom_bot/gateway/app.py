"""The gateway's app factory: inbound webhooks in, durable outbox, dispatcher out.

``create_app(config)`` builds a FastAPI app whose lifespan owns the outbox, the dispatcher and
the metrics; nothing lives at module level. The request path is: read the body (capped),
parse and validate it (4xx with a reason when bad), route, render, and store every message
in the outbox *before* answering 200, so the sender's own retries make delivery
at-least-once end to end. Delivery happens in the background (:mod:`wecom_bot.dispatcher`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigError
from ..masking import install_log_redaction
from ..store import Outbox, StoreUnavailableError, open_store
from ..store.history import HistoryStore, MemoryHistory, open_history
from .config import GatewayConfig, load_config
from .console import ConsoleMetrics, HistoryRecorder
from .console import api as console_api
from .console import page as console_page
from .ingest import IngestOutcome, ingest
from .metrics import GatewayMetrics
from .runtime import Runtime, build_runtime
from .sources import PayloadError, parse_alertmanager, parse_generic, parse_grafana

logger = logging.getLogger("wecom_bot.gateway")

_OPEN_PATHS = ("/healthz", "/readyz")

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
        self.history = HistoryRecorder(
            history or MemoryHistory(), store, clock=clock, secrets=self._keys
        )
        self.runtime: Runtime = build_runtime(
            config, store=store, metrics=metrics, clock=clock, history=self.history
        )
        self.accepting = True
        self._reload_lock = asyncio.Lock()
        self.last_reload: dict[str, Any] = {"ok": True, "at": clock(), "message": "started"}

    def _keys(self) -> list[str]:
        runtime = getattr(self, "runtime", None)
        if runtime is None:
            return []
        return [key for target in runtime.targets.values() for key in target.keys]

    async def start(self) -> None:
        """Recover the outbox, start delivering and recording history."""
        self.history.start(
            retention=self.config.history_retention,
            purge_every=min(HISTORY_PURGE_EVERY, self.config.history_retention),
        )
        await self.runtime.start()

    async def stop(self) -> None:
        """Stop accepting, finish in-flight sends; the outbox keeps the rest."""
        self.accepting = False
        await self.runtime.stop()
        await self.history.stop()
        await self.history.history.close()
        await self.store.close()

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file and swap it in atomically; a bad file keeps the old one."""
        async with self._reload_lock:
            if self.config_path is None:
                result = {"ok": False, "message": "no config file to reload from"}
            else:
                try:
                    config = load_config(self.config_path)
                    if config.store != self.config.store:
                        raise ConfigError(
                            "store: changing the store needs a restart (the outbox moves)"
                        )
                    runtime = build_runtime(
                        config,
                        store=self.store,
                        metrics=self.metrics,
                        clock=self.clock,
                        history=self.history,
                    )
                except ConfigError as exc:
                    result = {"ok": False, "message": f"kept the running config: {exc}"}
                else:
                    old = self.runtime
                    await runtime.start()
                    self.config, self.runtime = config, runtime
                    await old.stop()
                    result = {"ok": True, "message": "config reloaded"}
            self.last_reload = {**result, "at": self.clock()}
            log = logger.info if result["ok"] else logger.error
            log("reload: %s", result["message"])
            return result


def create_app(
    config: GatewayConfig,
    *,
    config_path: str | Path | None = None,
    store: Outbox | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the gateway app.

    Args:
        config: the validated configuration.
        config_path: the file ``POST /-/reload`` and SIGHUP re-read.
        store: an outbox to use instead of opening ``config.store`` (tests).
        clock: wall-clock time (history, idempotency window, latency).

    Raises:
        ConfigError: a bot key is missing, a template does not compile, the store cannot open.
    """
    install_log_redaction()
    path = Path(config_path) if config_path else None
    # Fail fast, before the server starts listening: keys, templates and routes resolve now,
    # and the store opens now (a read-only or missing path is a ConfigError naming it).
    build_runtime(config, store=None, metrics=None, clock=clock)
    outbox_at_start = store or open_store(config.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        outbox = outbox_at_start
        try:
            await outbox.ping()
        except StoreUnavailableError as exc:
            # Keep running: /readyz says 503 and inbound requests get 503 until it answers.
            logger.error("the outbox does not answer yet: %s", exc)
        gateway = Gateway(
            config,
            outbox,
            GatewayMetrics(),
            config_path=path,
            clock=clock,
            history=open_history(outbox),
        )
        app.state.gateway = gateway
        await gateway.start()
        loop = asyncio.get_running_loop()
        hup = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(gateway.reload()))
            hup = True
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            await gateway.stop()

    app = FastAPI(
        title="wecom-bot gateway",
        summary="Alertmanager, Grafana and JSON webhooks into WeCom groups, nothing lost.",
        lifespan=lifespan,
    )
    app.include_router(console_api.router)
    app.include_router(console_page.router)

    app.add_middleware(_Authentication)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input back, and fails (500) on values JSON cannot
        # carry, such as an Infinity a client sent; say what is wrong without echoing it.
        problems = [
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()
        ]
        return JSONResponse(
            {"error": "; ".join(problems)[:2000] or "invalid request", "reason": "invalid"},
            status_code=422,
        )

    async def receive(
        request: Request, source: str, parse: Callable[[Any], Any], route: str | None
    ) -> Response:
        gateway: Gateway = request.app.state.gateway
        if not gateway.accepting:
            return _refuse(gateway, source, 503, "shutting_down", "the gateway is stopping; retry")
        body = await _read_capped(request, gateway.config.max_body_bytes)
        if body is None:
            return _refuse(
                gateway, source, 413, "too_large",
                f"body larger than max_body_bytes ({gateway.config.max_body_bytes})",
            )  # fmt: skip
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return _refuse(gateway, source, 400, "not_json", "the body is not valid JSON")
        try:
            notification = parse(payload)
        except PayloadError as exc:
            return _refuse(gateway, source, 422, "invalid", str(exc))
        try:
            outcome = await ingest(gateway.runtime, notification, route_name=route)
        except LookupError as exc:
            return _refuse(gateway, source, 404, "unknown_route", str(exc))
        except StoreUnavailableError as exc:
            logger.error("outbox unavailable, refusing a notification: %s", exc)
            return _refuse(
                gateway, source, 503, "store_unavailable",
                "the outbox is unavailable; nothing was stored, retry later",
            )  # fmt: skip
        return JSONResponse(_outcome_json(outcome))

    @app.post("/alertmanager", summary="Prometheus Alertmanager webhook (version 4)")
    async def alertmanager(request: Request) -> Response:
        return await receive(request, "alertmanager", parse_alertmanager, None)

    @app.post("/alertmanager/{route}", summary="Alertmanager webhook forced onto one route")
    async def alertmanager_route(request: Request, route: str) -> Response:
        return await receive(request, "alertmanager", parse_alertmanager, route)

    @app.post("/grafana", summary="Grafana unified alerting webhook")
    async def grafana(request: Request) -> Response:
        return await receive(request, "grafana", parse_grafana, None)

    @app.post("/grafana/{route}", summary="Grafana webhook forced onto one route")
    async def grafana_route(request: Request, route: str) -> Response:
        return await receive(request, "grafana", parse_grafana, route)

    @app.post("/webhook/{name}", summary="Any JSON, rendered by the template configured for it")
    async def webhook(request: Request, name: str) -> Response:
        gateway: Gateway = request.app.state.gateway
        if name not in gateway.config.webhooks:
            return _refuse(gateway, "generic", 404, "unknown_webhook", f"no webhook named {name!r}")
        return await receive(
            request, "generic", lambda p: parse_generic(name, p), f"webhook:{name}"
        )

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the outbox answers")
    async def readyz(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        try:
            await gateway.store.ping()
        except StoreUnavailableError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        if not gateway.accepting:
            return JSONResponse({"status": "stopping"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        with contextlib.suppress(StoreUnavailableError):
            depth = await gateway.store.depth_by_bot()
            for bot in gateway.config.bots:
                gateway.metrics.queue_depth.labels(bot).set(depth.get(bot, 0))
                gateway.metrics.dead_letters.labels(bot).set(await gateway.store.dead_count(bot))
        return PlainTextResponse(
            gateway.metrics.exposition(), media_type="text/plain; version=0.0.4"
        )

    @app.post("/-/reload", summary="Re-read the config file; a bad one keeps the old")
    async def reload(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        result = await gateway.reload()
        return JSONResponse(result, status_code=200 if result["ok"] else 400)

    return app


def _refuse(gateway: Gateway, source: str, status: int, reason: str, message: str) -> Response:
    gateway.metrics.rejected.labels(source, reason).inc()
    return JSONResponse({"error": message, "reason": reason}, status_code=status)


def _outcome_json(outcome: IngestOutcome) -> dict[str, Any]:
    return {
        "status": "duplicate" if outcome.duplicate else "queued",
        "notification_id": outcome.notification_id,
        "messages": outcome.messages,
        "routes": outcome.routes,
        "skipped": outcome.skipped,
        "muted": outcome.muted,
        "deferred": outcome.deferred,
        "state": outcome.state,
    }


def _source_of(path: str) -> str:
    head = path.strip("/").split("/", 1)[0]
    return {"alertmanager": "alertmanager", "grafana": "grafana", "webhook": "generic"}.get(
        head, "other"
    )


async def _read_capped(request: Request, cap: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Authentication:
    """Refuses requests without valid credentials (all paths but the probes).

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every request in
    extra tasks and streams, a measurable share of the ingest cost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        gateway: Gateway = scope["app"].state.gateway
        if _authorized(gateway.config, Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        gateway.metrics.rejected.labels(_source_of(scope["path"]), "auth").inc()
        refused = JSONResponse({"error": "authentication required"}, status_code=401)
        # One challenge per header: browsers (the console) pick Basic out of its own header,
        # not out of a comma-joined list that starts with a scheme they do not speak.
        refused.headers.append("WWW-Authenticate", 'Basic realm="wecom-bot", charset="UTF-8"')
        refused.headers.append("WWW-Authenticate", 'Bearer realm="wecom-bot"')
        await refused(scope, receive, send)


def _authorized(config: GatewayConfig, headers: Headers) -> bool:
    token = config.auth.token()
    basic = config.auth.basic()
    if token is None and basic is None:
        return True
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if token is not None and scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if basic is not None and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), basic[0].encode()) & hmac.compare_digest(
            password.encode(), basic[1].encode()
        )
    return False
