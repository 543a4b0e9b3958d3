"""The action pages, ``/act/{token}``: GET shows what will happen, a confirming POST does it.

A GET never changes anything (link previews and crawlers open links). The POST must come from
the page itself: its form carries a CSRF token bound to the action token, and a cross-site
``Origin`` or ``Sec-Fetch-Site`` is refused. The person's name is kept in a cookie on that
phone. Every text on a page is HTML-escaped; no page names a webhook key, an Alertmanager's
credentials or what an Alertmanager answered. A link of the console's playground (signed with
the preview key) only gets a page that says it does nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ...store import Acknowledged, GroupRecord, StoreUnavailableError
from . import acting
from .alertmanager import SilenceError
from .groups import group_id
from .links import SILENCE_CHOICES
from .registry import Alertmanager
from .tokens import KINDS, ActionToken, TokenError, csrf_token, preview_secret, verify

if TYPE_CHECKING:
    from ..gateway import Gateway

logger = logging.getLogger("wecom_bot.gateway.actions")
router = APIRouter(include_in_schema=False)

NAME_COOKIE = "wecom_bot_name"
MAX_FORM_BYTES = 4096
MAX_NAME_CHARS = acting.MAX_NAME_CHARS

_STYLE = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 -apple-system,system-ui,"PingFang SC",
"Microsoft YaHei",sans-serif;background:#f2f3f5;color:#1f2329}main{max-width:480px;margin:0 auto;
padding:16px}h1{font-size:20px;margin:8px 0 12px}.card{background:#fff;border-radius:12px;
padding:16px;margin-bottom:12px}code{background:#f2f3f5;border-radius:4px;padding:1px 4px;
word-break:break-all}ul{padding-left:18px;margin:4px 0}label{display:block;margin:10px 0 4px;
font-weight:600}input[type=text]{width:100%;font-size:17px;padding:10px;border:1px solid #c9cdd4;
border-radius:8px}.choices{display:flex;gap:8px}.choices label{flex:1;font-weight:400;margin:0;
text-align:center;border:1px solid #c9cdd4;border-radius:8px;padding:10px 0}
.choices input{margin-right:4px}button{width:100%;margin-top:16px;font-size:18px;padding:12px;
border:0;border-radius:8px;background:#07c160;color:#fff}.warn{color:#b42318}.ok{color:#067647}
.muted{color:#646a73;font-size:14px}button.second{background:#fff;color:#1f2329;
border:1px solid #c9cdd4}
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


def _refused(reason: str, status: int = 400) -> HTMLResponse:
    body = (
        f'<div class="card"><p class="warn">{escape(reason)}</p>'
        '<p class="muted">什么也没有改变。Nothing was changed.</p></div>'
    )
    return _page("无法执行 · Cannot act", body, status)


def _matchers_html(token: ActionToken) -> str:
    items = "".join(
        f"<li><code>{escape(n)}=&quot;{escape(v)}&quot;</code></li>" for n, v in token.matchers
    )
    return f"<p>告警组 Alert group:</p><ul>{items}</ul>"


def _when(ts: float, gateway: Gateway) -> str:
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(gateway.config.timezone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def _secret(gateway: Gateway) -> bytes | None:
    linker = gateway.runtime.actions
    return linker.secret if linker is not None else None


def _check(request: Request, token: str) -> tuple[Gateway, bytes, ActionToken] | HTMLResponse:
    gateway: Gateway = request.app.state.gateway
    secret = _secret(gateway)
    if secret is None:
        return _refused("action links are off on this gateway (no external_url)", 404)
    linker = gateway.runtime.actions
    max_ttl = linker.ttl if linker is not None else None
    try:
        return gateway, secret, verify(token, secret, now=gateway.clock(), max_ttl=max_ttl)
    except TokenError as exc:
        if _is_preview(token, secret, gateway.clock()):
            return _refused(
                "this link is from a preview in the gateway's console: it does nothing", 404
            )
        gone = "expired" in exc.reason or "older version" in exc.reason
        return _refused(exc.reason, 410 if gone else 400)


def _is_preview(token: str, secret: bytes, now: float) -> bool:
    try:
        verify(token, preview_secret(secret), now=now)
    except TokenError:
        return False
    return True


_NOT_CONFIGURED = (
    "the Alertmanager this alert came from is not configured on this gateway "
    "(alertmanagers), so it cannot be silenced from here; silence it in Alertmanager itself"
)


def _alertmanager(gateway: Gateway, action: ActionToken) -> Alertmanager | None:
    # The link names a configured Alertmanager by name; a name no longer configured (or
    # none) is no Alertmanager: nothing is requested.
    return acting.alertmanager_for(gateway, name=action.alertmanager)


@router.get("/act/{token}")
async def show(request: Request, token: str, d: str = "1h") -> HTMLResponse:
    """What the link will do, and a form to confirm it; changes nothing."""
    checked = _check(request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    gateway, secret, action = checked
    info = (
        _matchers_html(action)
        + '<p class="muted">链接有效至 Link good until '
        + f"{escape(_when(action.expires_at, gateway))}</p>"
    )
    if action.kind == "d":
        am = _alertmanager(gateway, action)
        link = ""
        if am is not None:
            query = ",".join(f'{n}="{v}"' for n, v in action.matchers)
            href = f"{am.public_url}/#/alerts?filter={quote('{' + query + '}', safe='')}"
            link = (
                f'<p><a href="{escape(href)}">在 Alertmanager 中查看 Open in Alertmanager</a></p>'
            )
        return _page("详情 · Details", f'<div class="card">{info}{link}</div>')
    done_by = ""
    acked: tuple[tuple[str, float], ...] = ()
    if action.kind == "a":
        try:
            found = await gateway.store.get_group(group_id(action.matchers))
            acked = (
                await acting.acknowledgers(gateway, action.matchers, found.opened_at)
                if found is not None and found.acknowledged_by
                else ()
            )
        except StoreUnavailableError as exc:
            return _refused(f"the store does not answer, try again: {exc}", 503)
        if found is None:
            return _not_open(action)
        said = _silenced_html(found, gateway) + (_acked_html(acked, gateway) if acked else "")
        if said:
            done_by = f'<div class="card">{said}</div>'
    name = unquote(request.cookies.get(NAME_COOKIE, ""))[:MAX_NAME_CHARS]
    choices = ""
    if action.kind == "s":
        if _alertmanager(gateway, action) is None:
            return _refused(_NOT_CONFIGURED, 409)
        chosen = d if d in SILENCE_CHOICES else "1h"
        radios = "".join(
            f'<label><input type="radio" name="d" value="{k}"'
            f"{' checked' if k == chosen else ''}>{k}</label>"
            for k in SILENCE_CHOICES
        )
        choices = f'<label>静默多久 For how long</label><div class="choices">{radios}</div>'
    title = "静默 · Silence" if action.kind == "s" else "认领 · Acknowledge"
    verb = "创建静默 Create silence" if action.kind == "s" else "认领 Acknowledge"
    buttons = f'<button type="submit">{verb}</button>'
    if done_by:  # a later one: recorded quietly, unless the person chooses to tell the group
        title = "已有人认领 · Already acknowledged" if acked else "已静默 · Already silenced"
        buttons = (
            '<button type="submit" name="post" value="0">也认领（不发群消息） '
            "Add my name (no group message)</button>"
            '<button type="submit" name="post" value="1" class="second">'
            "也认领并告知群 Add my name and tell the group</button>"
        )
    form = (
        f'<form method="post" action="/act/{escape(token)}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token(token, secret))}">'
        f'<label for="name">你的名字 Your name</label>'
        f'<input type="text" id="name" name="name" maxlength="{MAX_NAME_CHARS}" required '
        f'autocomplete="name" value="{escape(name)}">{choices}'
        f"{buttons}</form>"
    )
    return _page(title, f'{done_by}<div class="card">{info}</div><div class="card">{form}</div>')


def _silenced_html(group: GroupRecord, gateway: Gateway) -> str:
    """ "已由 A 静默至 T · silenced by A until T" while a silence made here holds, else ""."""
    until = group.silenced_until
    if until is None or until <= gateway.clock() or not group.acknowledged_by:
        return ""
    who, when = escape(group.acknowledged_by), escape(_when(until, gateway))
    return f'<p class="ok">已由 {who} 静默至 {when} · silenced by {who} until {when}</p>'


def _acked_html(acked: Sequence[tuple[str, float]], gateway: Gateway) -> str:
    """ "已由 A 于 T 认领 · acknowledged by A at T", then anyone who added themselves."""
    (first, at), others = acked[0], acked[1:]
    when = escape(_when(at, gateway))
    html = (
        f'<p class="ok">已由 {escape(first)} 于 {when} 认领 · '
        f"acknowledged by {escape(first)} at {when}</p>"
    )
    if others:
        items = "".join(f"<li>{escape(n)} · {escape(_when(t, gateway))}</li>" for n, t in others)
        html += f"<p>也认领 Also acknowledged by:</p><ul>{items}</ul>"
    return html


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin == "null":
        # A page that sends no referrer posts with an opaque origin; the browser's own
        # Sec-Fetch-Site still says where the form was.
        return site == "same-origin"
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


@router.post("/act/{token}")
async def confirm(request: Request, token: str) -> HTMLResponse:
    """Do what the page showed, once the same-origin form with its CSRF token is posted."""
    checked = _check(request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    gateway, secret, action = checked
    if not _same_origin(request):
        return _refused("this confirmation came from another site: refused", 403)
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return _refused("the form is too large", 413)
    form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    if not hmac.compare_digest(form.get("csrf", ""), csrf_token(token, secret)):
        return _refused(
            "the form is not from this page (CSRF check failed): open the link again", 403
        )
    name = " ".join(form.get("name", "").split())[:MAX_NAME_CHARS]
    if not name:
        return _refused("give your name, so the group knows who acted")
    if action.kind == "s":
        response = await _silence(gateway, action, name, form.get("d", "1h"))
    elif action.kind == "a":
        response = await _acknowledge(gateway, action, name, post=form.get("post") == "1")
    else:
        return _refused(f"a {KINDS[action.kind]} link does nothing when posted", 405)
    # Lax, not Strict: the chat app opens the link as a cross-site navigation, and the cookie
    # only fills in a name (the CSRF token guards the action).
    response.set_cookie(
        NAME_COOKIE,
        quote(name, safe=""),
        max_age=365 * 86400,
        path="/act",
        httponly=True,
        samesite="lax",
    )
    return response


async def _silence(gateway: Gateway, action: ActionToken, name: str, choice: str) -> HTMLResponse:
    if choice not in SILENCE_CHOICES:
        return _refused(f"a silence lasts {', '.join(SILENCE_CHOICES)}, not {choice!r}")
    am = _alertmanager(gateway, action)
    if am is None:
        return _refused(_NOT_CONFIGURED, 409)
    try:
        silence = await acting.silence(gateway, action.matchers, am, name, choice, via="link")
    except SilenceError as exc:  # logged with its details; the page quotes no answer
        return _refused(str(exc), 502)
    except StoreUnavailableError as exc:
        return _refused(f"the silence was made, but the store does not answer: {exc}", 503)
    body = (
        f'<div class="card"><p class="ok">已静默 Silenced for {escape(choice)}</p>'
        f"<p>静默 ID Silence id: <code>{escape(silence.id)}</code></p>"
        f"<p>到期 Expires: {escape(_when(silence.ends_at.timestamp(), gateway))}</p>"
        f'{_matchers_html(action)}<p class="muted">by {escape(name)}</p></div>'
    )
    return _page("已静默 · Silenced", body)


async def _acknowledge(
    gateway: Gateway, action: ActionToken, name: str, *, post: bool
) -> HTMLResponse:
    try:
        before = await gateway.store.get_group(group_id(action.matchers))
        done = await acting.acknowledge(gateway, action.matchers, name, via="link", post=post)
    except StoreUnavailableError as exc:
        return _refused(f"the store does not answer, try again: {exc}", 503)
    if done.entry is None:
        return _not_open(action)
    if done.outcome is Acknowledged.FIRST:
        title, note = "已认领 · Acknowledged", ""
        head = (
            f'<p class="ok">{escape(done.entry.title)}</p>'
            f"<p>{escape(_when(done.entry.received_at, gateway))}</p>"
        )
    else:
        title = "已有人认领 · Already acknowledged"
        told = (
            "已在群里告知。 The group was told you acknowledged too."
            if done.posted
            else "群里已经发过认领消息，不再重复发送。 "
            "The group was told already; nothing is posted again."
        )
        note = (
            f'<p class="muted">你的名字已记录 Your name is recorded: {escape(name)}. '
            f"{escape(told)}</p>"
        )
        head = (_silenced_html(before, gateway) if before is not None else "") + _acked_html(
            done.acknowledgers or ((name, done.entry.received_at),), gateway
        )
    body = f'<div class="card">{head}{note}{_matchers_html(action)}</div>'
    return _page(title, body)


def _not_open(action: ActionToken) -> HTMLResponse:
    body = (
        '<div class="card"><p class="ok">此告警组已恢复，无需认领。 This alert group has resolved '
        "(it is no longer open): there is nothing to acknowledge.</p>"
        '<p class="muted">什么也没有改变。Nothing was changed.</p>'
        f"{_matchers_html(action)}</div>"
    )
    return _page("已恢复 · Resolved", body, 409)
