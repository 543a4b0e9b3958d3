"""The emulator's web page (a placeholder until the chat view lands).

Interface kept for its replacement: a module-level ``router: APIRouter`` that ``create_app``
includes at the root; it reads the running state as ``request.app.state.emulator`` (an
:class:`~wecom_bot.emulator.state.Emulator`) and must never show a whole key.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wecom-bot emulator</title></head>
<body>
<h1>wecom-bot emulator</h1>
<p>Point your client at this server instead of <code>https://qyapi.weixin.qq.com</code>.</p>
<ul>
  <li><a href="/api/groups">/api/groups</a>: groups (keys masked) and their counters</li>
  <li><a href="/api/messages">/api/messages</a>: every stored entry</li>
  <li><a href="/api/events">/api/events</a>: live Server-Sent Events</li>
  <li><a href="/api/info">/api/info</a>: configuration</li>
  <li><a href="/docs">/docs</a>: the OpenAPI description</li>
</ul>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    """The placeholder page linking the JSON API."""
    return HTMLResponse(_PAGE)
