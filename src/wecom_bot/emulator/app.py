"""The emulator's app factory.

``create_app(settings)`` builds a FastAPI app; everything it owns (the SQLite store, the rate
limiter, pending faults, the event fan-out) is created by its lifespan and lives in
``app.state.emulator`` (an :class:`~wecom_bot.emulator.state.Emulator`) while it runs. There
are no module-level singletons: two apps in one process are two independent emulators.

Routes:

- ``/cgi-bin/webhook/send`` and ``/cgi-bin/webhook/upload_media``: the WeCom API
  (:mod:`.webhook`). Whatever a client sends there gets an HTTP 200 WeCom-style answer:
  FastAPI's 422 and 500 answers are replaced for these paths.
- ``/api/...``: inspection and fault injection (:mod:`.inspection`).
- ``/``: the web page (:mod:`.page`); it reads the state as ``request.app.state.emulator``.

Everything but the WeCom API answers only to ``settings.allowed_hosts`` and refuses
state changes (fault injection, reset, deletes) from another site (:mod:`wecom_bot.exposure`):
a web page must not be able to reset the emulator or queue faults in it.

A server that embeds the app should call ``app.state.emulator.close_streams()`` when it is
asked to stop, so open event streams end at once (``wecom-bot emulator`` does); otherwise a
stream ends by itself after ``settings.sse_max_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from .. import limits
from ..exposure import Exposure, ExposureGuard
from . import inspection, page, webhook
from .settings import EmulatorSettings
from .state import Emulator
from .storage import Storage
from .validation import Answer, WeComError, invalid_parameter

logger = logging.getLogger("wecom_bot.emulator")


def create_app(settings: EmulatorSettings | None = None) -> FastAPI:
    """Build an emulator app.

    Args:
        settings: how it behaves; the defaults give an in-memory store, any key accepted and
            WeCom's rate limit (20 per 60 s).

    Returns:
        The ASGI app; serve it with uvicorn (lifespan on).
    """
    settings = settings or EmulatorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage = Storage(settings.db)
        emulator = Emulator(settings, storage, asyncio.get_running_loop())
        app.state.emulator = emulator
        try:
            yield
        finally:
            emulator.events.close()
            storage.close()

    app = FastAPI(
        title="wecom-bot emulator",
        summary="A local emulator of the WeCom (企业微信) group-robot webhook API",
        lifespan=lifespan,
    )
    app.include_router(webhook.router)
    app.include_router(inspection.router, prefix="/api")
    app.include_router(page.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
    exposure = Exposure(
        settings.allowed_hosts,
        hosts_hint="start the emulator with --allow-host NAME",
        open_prefixes=("/cgi-bin/",),
        require_json=False,
    )
    app.add_middleware(ExposureGuard, exposure=exposure)
    return app


def _is_wecom_path(request: Request) -> bool:
    return request.url.path.startswith("/cgi-bin/")


def _wecom_answer(request: Request, err: WeComError) -> Response:
    ip = request.client.host if request.client else "0.0.0.0"
    clock = request.app.state.emulator.settings.clock
    return Answer.error(err, ip, clock()).to_response()


async def _invalid_request(request: Request, exc: Exception) -> Response:
    if _is_wecom_path(request):
        return _wecom_answer(request, invalid_parameter("request", "invalid"))
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors
    ]  # no "input": it may echo what the client sent
    return JSONResponse({"error": "invalid request", "detail": detail}, status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unexpected error on %s", request.url.path, exc_info=exc)
    if _is_wecom_path(request):
        return _wecom_answer(request, WeComError.of(limits.ERRCODE_SYSTEM_BUSY))
    return JSONResponse({"error": "internal error"}, status_code=500)
