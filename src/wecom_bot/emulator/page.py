"""The emulator's web page: every group as a WeCom-style chat view, updated live.

Routes (outside the OpenAPI description; the JSON API under ``/api`` stays the documented one):

- ``GET /``: the page shell, in English or Chinese (:mod:`wecom_bot.i18n`). No inline script
  or style; it loads ``page.js`` and the stylesheets
  below and is served with a strict Content-Security-Policy (``script-src 'self'``), so even a
  bug in the renderer could not run script.
- ``GET /page/assets/{name}``: ``page.js``, ``page.css`` (shipped in ``emulator/static``) and
  ``preview.css`` (the stylesheet of :mod:`wecom_bot.preview`).
- ``GET /page/groups/{group_id}/entries``: a group's entries as the page shows them: the inspection
  fields plus ``html``, the message drawn on the server by
  :func:`wecom_bot.preview.render_message_html` (escaped there), so one renderer serves this page
  and the gateway's console alike; ``reason`` (the errmsg without its hint tail) and the size of
  the limited part against its limit.

The page reads the state as ``request.app.state.emulator`` and shows keys only masked.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from functools import cache
from html import escape
from importlib.resources import files
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .. import i18n
from ..preview import (
    PAGE_CONTENT_SECURITY_POLICY,
    payload_size,
    preview_css,
    render_message_html,
)
from .storage import Entry
from .webhook import emulator_of

__all__ = ["CONTENT_SECURITY_POLICY", "entry_view", "router"]

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY: Final[str] = PAGE_CONTENT_SECURITY_POLICY
"""The page's policy (shared with every page that shows previews)."""

_SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_ASSETS: Final[Mapping[str, str]] = {
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "preview.css": "text/css; charset=utf-8",
}

_GROUP_ID = re.compile(r"^[0-9a-f]{8}$")
_HINT_TAIL = ", hint: ["
_PAGE_SIZE = 200
# The preview writes a card image's aspect ratio as an inline style, which the policy above
# refuses to apply; it becomes a data attribute that page.js applies through the CSSOM. Payload
# text is escaped (no literal quote survives), so only the renderer can produce this pattern.
_ASPECT_STYLE = re.compile(r' style="aspect-ratio: ([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"')

_SHELL = """<!doctype html>
<html lang="{{lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{emulator.title}}</title>
<meta name="wecom-bot-i18n" content="{texts}">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/page/assets/preview.css">
<link rel="stylesheet" href="/page/assets/page.css">
<script src="/page/assets/page.js" defer></script>
</head>
<body data-last-entry-id="{last_entry_id}">
<div class="ep-app">
  <aside class="ep-side" aria-label="{{emulator.groups}}">
    <header class="ep-side-head">
      <div class="ep-brand">wecom-bot <span class="ep-brand-sub">{{emulator.brand}}</span></div>
      <div class="ep-conn" id="ep-conn" data-state="connecting">
        <span class="ep-conn-dot" aria-hidden="true"></span>
        <span class="ep-conn-text">{{emulator.conn.connecting}}</span>
      </div>
    </header>
    <ul class="ep-groups" id="ep-groups"></ul>
    <div class="ep-side-empty" id="ep-side-empty">{{emulator.no_groups}}</div>
    <nav class="ep-lang" id="ep-lang" aria-label="{{lang.switch}}">
      <a href="?lang=zh-CN" lang="zh-CN" hreflang="zh-CN" data-lang="zh-CN">{{lang.zh-CN}}</a>
      <a href="?lang=en" lang="en" hreflang="en" data-lang="en">{{lang.en}}</a>
    </nav>
  </aside>
  <main class="ep-main">
    <header class="ep-head" id="ep-head" hidden>
      <div class="ep-head-info">
        <div class="ep-head-title" id="ep-head-title"></div>
        <div class="ep-head-stats" id="ep-head-stats"></div>
      </div>
      <button type="button" class="ep-clear" id="ep-clear">{{emulator.clear}}</button>
    </header>
    <div class="ep-scroll" id="ep-scroll">
      <div class="ep-welcome" id="ep-welcome">
        <h1>{{emulator.welcome.title}}</h1>
        <p>{{emulator.welcome.before}} <code>https://qyapi.weixin.qq.com</code>{{emulator.welcome.after}}</p>
        <pre class="ep-example" id="ep-example"></pre>
        <p>{{emulator.welcome.api}} <a href="/api/groups"><code>/api/groups</code></a> &middot;
        <a href="/docs"><code>/docs</code></a></p>
      </div>
      <div class="wb-chat ep-chat" id="ep-chat" hidden></div>
    </div>
    <button type="button" class="ep-jump" id="ep-jump" hidden>{{emulator.jump}}</button>
  </main>
</div>
</body>
</html>
"""


@cache
def _asset(name: str) -> str:
    if name == "preview.css":
        return preview_css()
    return files(__package__ or "wecom_bot.emulator").joinpath("static", name).read_text("utf-8")


def _not_found(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=404)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    """The page shell; ``page.js`` fills it from the JSON API and the event stream.

    In the language :func:`wecom_bot.i18n.language_of` picks; the texts ``page.js`` draws ride
    along as JSON in a ``<meta>`` tag."""
    last = emulator_of(request).storage.last_entry_id()
    language = i18n.language_of(request)
    texts = escape(i18n.script_catalogue(language, ("emulator.",)), quote=True)
    shell = i18n.fill(_SHELL, language)
    shell = shell.replace("{last_entry_id}", str(int(last))).replace("{texts}", texts, 1)
    response = HTMLResponse(shell, headers=_SECURITY_HEADERS)
    i18n.remember(request, response, language)
    return response


@router.get("/page/assets/{name}")
async def asset(name: str) -> Response:
    """A script or stylesheet of the page, from the installed package (no CDN, no network)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        return _not_found("no such asset")
    return Response(
        _asset(name),
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )


@router.get("/page/groups/{group_id}/entries")
async def group_entries(
    request: Request,
    group_id: str,
    since_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
    tail: bool = False,
) -> Response:
    """Entries of a group after ``since_id``, oldest first, each with its drawn ``html``.

    With ``tail=true`` the newest ``limit`` entries after ``since_id`` are returned instead of
    the oldest, and ``skipped`` counts the older ones left out.
    """
    emulator = emulator_of(request)
    if not _GROUP_ID.match(group_id) or emulator.storage.get_group(group_id) is None:
        return _not_found("no such group")
    limit = min(limit, emulator.settings.max_page_size)
    skipped = 0
    if tail:
        kept: deque[Entry] = deque(maxlen=limit)
        cursor = since_id
        while True:
            page = emulator.storage.list_entries(group_id, since_id=cursor, limit=_PAGE_SIZE)
            skipped += max(0, len(kept) + len(page) - limit)
            kept.extend(page)
            if len(page) < _PAGE_SIZE:
                break
            cursor = page[-1].id
        entries = list(kept)
        more = False
    else:
        entries = emulator.storage.list_entries(group_id, since_id=since_id, limit=limit)
        more = len(entries) == limit
    return JSONResponse(
        {
            "group_id": group_id,
            "entries": [entry_view(e) for e in entries],
            "next_since_id": entries[-1].id if entries else since_id,
            "more": more,
            "skipped": skipped,
        },
        headers={"Cache-Control": "no-store"},
    )


def entry_view(entry: Entry) -> dict[str, Any]:
    """One entry as the page shows it.

    Args:
        entry: a stored entry.

    Returns:
        The inspection API's fields plus ``reason`` (the errmsg before its ``, hint:`` tail),
        ``size`` and ``size_limit`` (bytes of the limited part and the documented limit, or the
        JSON body and ``None`` for types without one), ``over_limit``, and ``html``: the
        message drawn by the preview for an accepted send, ``None`` otherwise.
    """
    view = entry.to_json()
    view["reason"] = entry.errmsg.split(_HINT_TAIL, 1)[0]
    size, size_limit = entry.content_bytes, entry.limit
    payload = entry.payload if isinstance(entry.payload, dict) else None
    if size is None and payload is not None and entry.endpoint == "send":
        size, size_limit = payload_size(payload)
    view["size"] = size
    view["size_limit"] = size_limit
    view["over_limit"] = size is not None and size_limit is not None and size > size_limit
    view["html"] = None
    if entry.status == "accepted" and entry.endpoint == "send" and payload is not None:
        names = {
            str(m["media_id"]): (str(m.get("filename") or m["media_id"]), int(m.get("size") or 0))
            for m in entry.media
            if isinstance(m, dict) and "media_id" in m
        }
        html = render_message_html(payload, media_names=names)
        view["html"] = _ASPECT_STYLE.sub(r' data-wb-aspect-ratio="\1"', html)
    return view
