"""The console page ``/ui``: a shell, a script and stylesheets shipped in the package.

- ``GET /``: a redirect to ``/ui``, so the gateway's address alone opens the console.
- ``GET /ui``: the shell. No inline script or style, served with a strict
  Content-Security-Policy (``script-src 'self'``, ``style-src 'self'``), so even a bug could not
  run script that came with an alert.
- ``GET /ui/assets/{name}``: ``console.js``, ``console.css`` (``console/static``) and
  ``preview.css`` (the stylesheet of :mod:`wecom_bot.preview`, shared with the emulator).

The page is in the language :func:`wecom_bot.i18n.language_of` picks (``?lang=``, the
remembered switch, ``Accept-Language``): the shell's texts are filled in here, and the texts
``console.js`` draws ride along, as JSON in a ``<meta>`` tag (no inline script).

``console.js`` fills the shell from ``/api/v1``: every string goes in through ``textContent``;
the only HTML it inserts are message fragments drawn (and escaped) on the server by
:func:`wecom_bot.preview.render_message_html`. Same authentication as every gateway endpoint.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ... import i18n
from ...preview import PAGE_CONTENT_SECURITY_POLICY, preview_css

__all__ = ["CONTENT_SECURITY_POLICY", "router"]

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY: Final[str] = PAGE_CONTENT_SECURITY_POLICY
"""The page's policy (shared with every page that shows previews)."""

_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_ASSETS: Final[Mapping[str, str]] = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "preview.css": "text/css; charset=utf-8",
}


_SCRIPT_TEXTS: Final[tuple[str, ...]] = ("console.",)
"""The catalogue keys ``console.js`` may look up."""


@cache
def _asset(name: str) -> str:
    if name == "preview.css":
        return preview_css()
    return files(__package__ or __name__).joinpath("static", name).read_text("utf-8")


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    """The gateway's address opens the console."""
    return RedirectResponse(request.scope.get("root_path", "") + "/ui", status_code=307)


@router.get("/ui", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    """The console shell; ``console.js`` fills it from the JSON API.

    The gateway's time zone rides along in a ``<meta>`` tag, so the first times the page draws
    are already in it (``/api/v1/status`` gives it too, after a reload changed it)."""
    gateway = getattr(request.app.state, "gateway", None)
    zone = gateway.runtime.config.timezone if gateway is not None else ""
    language = i18n.language_of(request)
    texts = i18n.script_catalogue(language, _SCRIPT_TEXTS)
    meta = (
        f'<meta name="gateway-timezone" content="{html.escape(zone, quote=True)}">\n'
        f'<meta name="wecom-bot-i18n" content="{html.escape(texts, quote=True)}">\n'
    )
    page = i18n.fill(_asset("console.html"), language).replace("<title>", meta + "<title>", 1)
    response = HTMLResponse(page, headers=_HEADERS)
    i18n.remember(request, response, language)
    return response


@router.get("/ui/assets/{name}")
async def asset(name: str) -> Response:
    """A script or stylesheet of the console, from the installed package (no CDN)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        return JSONResponse({"error": "no such asset"}, status_code=404)
    return Response(
        _asset(name),
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
