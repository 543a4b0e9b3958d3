"""The gateway's app factory: inbound webhooks in, durable outbox, dispatcher out.

``create_app(config)`` builds a FastAPI app whose lifespan owns the outbox, the dispatcher and
the metrics; nothing lives at module level. The request path is: read the body (capped),
parse and validate it (4xx with a reason when bad), route, and store the notification in the
journal *before* answering 200, so the sender's own retries make delivery at-least-once end
to end (:mod:`wecom_bot.gateway.intake.endpoints`). Rendering happens behind the answer
(:mod:`wecom_bot.gateway.intake.inbox`), delivery in the background (:mod:`wecom_bot.dispatcher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from ..clock import SteadyClock
from ..exposure import Exposure
from ..masking import install_log_redaction
from ..store import Outbox, StoreUnavailableError, open_store
from ..store.history import open_history
from . import heap, sdnotify
from .actions import pages as action_pages
from .auth import Authentication, source_of
from .config import GatewayConfig
from .console import api as console_api
from .console import page as console_page
from .gateway import Gateway
from .intake.bodies import BodyBudget, BodyBusy, CappedBodies, Reservation, read_body, too_busy
from .intake.endpoints import Endpoint, endpoint_for, receive, serve_endpoint, wants_wait
from .metrics import GatewayMetrics
from .model import INBOX_BOT
from .runtime import build_runtime
from .serving import exposure_for, unauthenticated_exposure

logger = logging.getLogger("wecom_bot.gateway")


def create_app(
    config: GatewayConfig,
    *,
    config_path: str | Path | None = None,
    store: Outbox | None = None,
    clock: Callable[[], float] | None = None,
    settle_heap: bool = False,
) -> FastAPI:
    """Build the gateway app.

    Args:
        config: the validated configuration.
        config_path: the file ``POST /-/reload`` and SIGHUP re-read.
        store: an outbox to use instead of opening ``config.store`` (tests).
        clock: wall-clock time (history, idempotency window, latency, queue and timers); by
            default a :class:`~wecom_bot.clock.SteadyClock`, so that a step of the system
            clock neither stops delivery nor fires a backlog of timers at once.
        settle_heap: once started, take the process's long-lived objects out of the garbage
            collector's full passes (:func:`wecom_bot.gateway.heap.settle`); for the process
            that exists to serve this app (``wecom-bot gateway``), not for an embedding one.

    Raises:
        ConfigError: a bot key is missing, a template does not compile, the store cannot open.
    """
    install_log_redaction()
    if clock is None:
        clock = SteadyClock()
    path = Path(config_path) if config_path else None
    # Fail fast, before the server starts listening: keys, templates and routes resolve now,
    # and the store opens now (a read-only or missing path is a ConfigError naming it).
    build_runtime(config, store=None, metrics=None, clock=clock)
    exposure = exposure_for(config)
    warning = unauthenticated_exposure(config)
    if warning is not None:
        logger.warning(warning)
    # exclusive: a second gateway on the same SQLite file refuses to start (store.filelock).
    outbox_at_start = store or open_store(config.store, exclusive=True, clock=clock)

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
        if settle_heap:
            heap.settle()
        loop = asyncio.get_running_loop()
        _on_stop_signal(loop, gateway.on_stop_signal)
        watchdog = asyncio.create_task(sdnotify.watchdog(), name="systemd-watchdog")
        sdnotify.notify("READY=1")
        hup = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(gateway.reload()))
            hup = True
        try:
            yield
        finally:
            sdnotify.notify("STOPPING=1")
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            watchdog.cancel()
            await gateway.stop()

    app = _GatewayApp(
        title="wecom-bot gateway",
        summary="Alertmanager, Grafana and JSON webhooks into WeCom groups, nothing lost.",
        lifespan=lifespan,
        # The interactive docs load scripts from a CDN into the gateway's origin: off. The
        # OpenAPI document stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.exposure = exposure
    app.include_router(console_api.router)
    app.include_router(console_page.router)
    app.include_router(action_pages.router)

    app.add_middleware(CappedBodies, limits=_body_limits, budget=_body_budget)
    app.add_middleware(Authentication)

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

    async def declared(request: Request, endpoint: Endpoint) -> Response:
        # Served by IngestEndpoints before the router; declared for the OpenAPI document.
        gateway: Gateway = request.app.state.gateway
        config = gateway.config
        reservation = Reservation(gateway.body_budget)
        try:
            try:
                body = await read_body(
                    request.scope, request.receive, config.max_body_bytes,
                    config.server.body_timeout, reservation,
                )  # fmt: skip
            except BodyBusy:
                busy = too_busy(config.server.body_timeout)
                return JSONResponse({"error": busy.message, "reason": busy.reason}, 503)
            answer = await receive(gateway, endpoint, body, wants_wait(request.url.query))
        finally:
            reservation.close()
        return JSONResponse(answer.body, status_code=answer.status)

    @app.post("/alertmanager", summary="Prometheus Alertmanager webhook (version 4)")
    async def alertmanager(request: Request) -> Response:
        return await declared(request, Endpoint("alertmanager"))

    @app.post("/alertmanager/{route}", summary="Alertmanager webhook forced onto one route")
    async def alertmanager_route(request: Request, route: str) -> Response:
        return await declared(request, Endpoint("alertmanager", route))

    @app.post("/grafana", summary="Grafana unified alerting webhook")
    async def grafana(request: Request) -> Response:
        return await declared(request, Endpoint("grafana"))

    @app.post("/grafana/{route}", summary="Grafana webhook forced onto one route")
    async def grafana_route(request: Request, route: str) -> Response:
        return await declared(request, Endpoint("grafana", route))

    @app.post("/webhook/{name}", summary="Any JSON, rendered by the template configured for it")
    async def webhook(request: Request, name: str) -> Response:
        return await declared(request, Endpoint("generic", f"webhook:{name}", name))

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: the outbox takes writes and is the one opened, delivery runs",
    )
    async def readyz(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        try:
            await gateway.store.ping()
        except StoreUnavailableError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        if not gateway.accepting:
            return JSONResponse({"status": "stopping"}, status_code=503)
        try:
            reason = await gateway.not_ready()
        except StoreUnavailableError as exc:
            reason = str(exc)
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        with contextlib.suppress(StoreUnavailableError):
            depth = await gateway.store.depth_by_bot()
            for bot in gateway.config.bots:
                gateway.metrics.queue_depth.labels(bot).set(depth.get(bot, 0))
                gateway.metrics.dead_letters.labels(bot).set(await gateway.store.dead_count(bot))
            gateway.metrics.inbox_depth.set(depth.get(INBOX_BOT, 0))
            gateway.metrics.inbox_dead.set(await gateway.store.dead_count(INBOX_BOT))
        return PlainTextResponse(
            gateway.metrics.exposition(), media_type="text/plain; version=0.0.4"
        )

    @app.post("/-/reload", summary="Re-read the config file; a bad one keeps the old")
    async def reload(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        result = await gateway.reload()
        return JSONResponse(result, status_code=200 if result["ok"] else 400)

    return app


def _body_limits(scope: Scope) -> tuple[int, float]:
    # Every body but the inbound webhooks': the console API and /-/reload take small JSON.
    config: GatewayConfig = scope["app"].state.gateway.config
    return config.server.max_api_body_bytes, config.server.body_timeout


def _body_budget(scope: Scope) -> BodyBudget:
    gateway: Gateway = scope["app"].state.gateway
    return gateway.body_budget


def _on_stop_signal(loop: asyncio.AbstractEventLoop, callback: Callable[[str], None]) -> None:
    """Run ``callback(signal name)`` on the loop as soon as SIGTERM or SIGINT arrives, before
    the server's own handler (which waits for open requests: a render must not make it wait)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            loop.call_soon_threadsafe(callback, signal.Signals(signum).name)
            previous(signum, frame)

        with contextlib.suppress(ValueError):  # not the main thread (an embedding app)
            signal.signal(sig, handler)


class _GatewayApp(FastAPI):
    """FastAPI, with the inbound webhook endpoints answered before its middleware stack.

    Those ``POST`` requests are the hot path (see :mod:`wecom_bot.gateway.intake.endpoints`); the
    stack's layers cost more than the work they wrap. Everything else goes through FastAPI.
    Every request meets the exposure rules first (:mod:`wecom_bot.exposure`).
    """

    exposure: Exposure | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway | None = getattr(self.state, "gateway", None)
        if scope["type"] == "http" and self.exposure is not None:
            refused = self.exposure.refusal(scope)
            if refused is not None:
                if gateway is not None:
                    source = source_of(scope["path"])
                    gateway.metrics.rejected.labels(source, refused.reason).inc()
                await refused(scope, receive, send)
                return
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = endpoint_for(scope["path"])
            if endpoint is not None and gateway is not None:
                scope["app"] = self
                await serve_endpoint(gateway, endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)
