"""The action pages, ``/act/{token}``: GET shows what will happen, a confirming POST does it.

A GET never changes anything (link previews and crawlers open links). The POST must come from
the page itself: its form carries a CSRF token bound to the action token, and a cross-site
``Origin`` or ``Sec-Fetch-Site`` is refused. The person's name is kept in a cookie on that
phone. Every text on a page is HTML-escaped; no page names a webhook key, an Alertmanager's
credentials or what an Alertmanager answered. A link of the console's playground (signed with
the preview key) only gets a page that says it does nothing.

Every page is in the language :func:`wecom_bot.i18n.language_of` picks (``?lang=`` of the
switch at the top of each page, remembered in a cookie; else ``Accept-Language``); its texts
are the catalogue's ``act.*`` keys.
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

from ... import i18n
from ...store import Acknowledged, GroupRecord, StoreUnavailableError
from . import acting
from .alertmanager import SilenceError
from .groups import group_id
from .links import SILENCE_CHOICES
from .registry import Alertmanager
from .tokens import ActionToken, TokenError, csrf_token, preview_secret, verify

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
border:1px solid #c9cdd4}nav.lang{text-align:right;font-size:14px}nav.lang a{color:#1f2329;
margin-left:10px}nav.lang a[aria-current]{font-weight:600;text-decoration:none}
"""


class _Lang:
    """The language of one request, and the texts of its pages."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.code = i18n.language_of(request)

    def __call__(self, key: str, /, **params: object) -> str:
        """The text ``key`` (of the catalogue's ``act.`` keys), not escaped."""
        return i18n.text(self.code, key, **params)

    def switch(self) -> str:
        """Links to this page in each language, keeping its silence choice."""
        links = []
        for code in i18n.LANGUAGES:
            query = f"lang={code}"
            d = self.request.query_params.get("d")
            if d in SILENCE_CHOICES:
                query = f"d={d}&{query}"
            current = ' aria-current="true"' if code == self.code else ""
            links.append(
                f'<a href="?{escape(query)}" lang="{code}" hreflang="{code}"{current}>'
                f"{escape(i18n.text(self.code, 'lang.' + code))}</a>"
            )
        label = escape(self("lang.switch"), quote=True)
        return f'<nav class="lang" aria-label="{label}">{"".join(links)}</nav>'


def _page(lang: _Lang, title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{lang.code}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{lang.switch()}<h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    response = HTMLResponse(html, status_code=status)
    i18n.remember(lang.request, response, lang.code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


def _refused(lang: _Lang, reason: str, status: int = 400) -> HTMLResponse:
    body = (
        f'<div class="card"><p class="warn">{escape(reason)}</p>'
        f'<p class="muted">{escape(lang("act.nothing_changed"))}</p></div>'
    )
    return _page(lang, lang("act.title.refused"), body, status)


def _matchers_html(lang: _Lang, token: ActionToken) -> str:
    items = "".join(
        f"<li><code>{escape(n)}=&quot;{escape(v)}&quot;</code></li>" for n, v in token.matchers
    )
    return f"<p>{escape(lang('act.group'))}</p><ul>{items}</ul>"


def _when(ts: float, gateway: Gateway) -> str:
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(gateway.config.timezone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def _secret(gateway: Gateway) -> bytes | None:
    linker = gateway.runtime.actions
    return linker.secret if linker is not None else None


def _check(
    request: Request, lang: _Lang, token: str
) -> tuple[Gateway, bytes, ActionToken] | HTMLResponse:
    gateway: Gateway = request.app.state.gateway
    secret = _secret(gateway)
    if secret is None:
        return _refused(lang, lang("act.refused.off"), 404)
    linker = gateway.runtime.actions
    max_ttl = linker.ttl if linker is not None else None
    try:
        return gateway, secret, verify(token, secret, now=gateway.clock(), max_ttl=max_ttl)
    except TokenError as exc:
        if _is_preview(token, secret, gateway.clock()):
            return _refused(lang, lang("act.refused.preview"), 404)
        gone = exc.code in ("expired", "older")
        return _refused(lang, lang(_TOKEN_REASONS.get(exc.code, _MALFORMED)), 410 if gone else 400)


def _is_preview(token: str, secret: bytes, now: float) -> bool:
    try:
        verify(token, preview_secret(secret), now=now)
    except TokenError:
        return False
    return True


_MALFORMED = "act.token.malformed"
_TOKEN_REASONS = {
    "malformed": _MALFORMED,
    "forged": "act.token.forged",
    "older": "act.token.older",
    "expired": "act.token.expired",
    "too_far": "act.token.too_far",
}
_NOT_CONFIGURED = "act.refused.not_configured"


def _silence_error(lang: _Lang, exc: SilenceError) -> str:
    """What went wrong with Alertmanager, in the page's words (never its answer)."""
    if exc.status is None:
        return lang("act.silence_error.no_answer", error=str(exc).rpartition(": ")[2])
    if exc.status == 200:
        return lang("act.silence_error.no_id")
    return lang("act.silence_error.refused", status=exc.status)


def _alertmanager(gateway: Gateway, action: ActionToken) -> Alertmanager | None:
    # The link names a configured Alertmanager by name; a name no longer configured (or
    # none) is no Alertmanager: nothing is requested.
    return acting.alertmanager_for(gateway, name=action.alertmanager)


@router.get("/act/{token}")
async def show(request: Request, token: str, d: str = "1h") -> HTMLResponse:
    """What the link will do, and a form to confirm it; changes nothing."""
    lang = _Lang(request)
    checked = _check(request, lang, token)
    if isinstance(checked, HTMLResponse):
        return checked
    gateway, secret, action = checked
    good_until = lang("act.good_until", time=_when(action.expires_at, gateway))
    info = _matchers_html(lang, action) + f'<p class="muted">{escape(good_until)}</p>'
    if action.kind == "d":
        am = _alertmanager(gateway, action)
        link = ""
        if am is not None:
            query = ",".join(f'{n}="{v}"' for n, v in action.matchers)
            href = f"{am.public_url}/#/alerts?filter={quote('{' + query + '}', safe='')}"
            link = f'<p><a href="{escape(href)}">{escape(lang("act.open_alertmanager"))}</a></p>'
        return _page(lang, lang("act.title.details"), f'<div class="card">{info}{link}</div>')
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
            return _refused(lang, lang("act.refused.store", error=exc), 503)
        if found is None:
            return _not_open(lang, action)
        said = _silenced_html(lang, found, gateway) + (
            _acked_html(lang, acked, gateway) if acked else ""
        )
        if said:
            done_by = f'<div class="card">{said}</div>'
    name = unquote(request.cookies.get(NAME_COOKIE, ""))[:MAX_NAME_CHARS]
    choices = ""
    if action.kind == "s":
        if _alertmanager(gateway, action) is None:
            return _refused(lang, lang(_NOT_CONFIGURED), 409)
        chosen = d if d in SILENCE_CHOICES else "1h"
        radios = "".join(
            f'<label><input type="radio" name="d" value="{k}"'
            f"{' checked' if k == chosen else ''}>{escape(lang(_SILENCE_FOR[k]))}</label>"
            for k in SILENCE_CHOICES
        )
        how_long = escape(lang("act.how_long"))
        choices = f'<label>{how_long}</label><div class="choices">{radios}</div>'
    title = lang("act.title.silence" if action.kind == "s" else "act.title.acknowledge")
    verb = escape(lang("act.do.silence" if action.kind == "s" else "act.do.acknowledge"))
    buttons = f'<button type="submit">{verb}</button>'
    if done_by:  # a later one: recorded quietly, unless the person chooses to tell the group
        title = lang("act.title.already_acknowledged" if acked else "act.title.already_silenced")
        buttons = (
            f'<button type="submit" name="post" value="0">{escape(lang("act.do.add_quietly"))}'
            '</button><button type="submit" name="post" value="1" class="second">'
            f"{escape(lang('act.do.add_and_tell'))}</button>"
        )
    # A language chosen on this page goes along with the form (in case cookies are off).
    chosen = f"?lang={lang.code}" if i18n.known(request.query_params.get(i18n.QUERY)) else ""
    form = (
        f'<form method="post" action="/act/{escape(token)}{chosen}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token(token, secret))}">'
        f'<label for="name">{escape(lang("act.your_name"))}</label>'
        f'<input type="text" id="name" name="name" maxlength="{MAX_NAME_CHARS}" required '
        f'autocomplete="name" value="{escape(name)}">{choices}'
        f"{buttons}</form>"
    )
    body = f'{done_by}<div class="card">{info}</div><div class="card">{form}</div>'
    return _page(lang, title, body)


_SILENCE_FOR = {"1h": "act.for_1h", "4h": "act.for_4h", "24h": "act.for_24h"}


def _silenced_html(lang: _Lang, group: GroupRecord, gateway: Gateway) -> str:
    """ "silenced by A until T" while a silence made here holds, else ""."""
    until = group.silenced_until
    if until is None or until <= gateway.clock() or not group.acknowledged_by:
        return ""
    said = lang("act.silenced_by", by=group.acknowledged_by, time=_when(until, gateway))
    return f'<p class="ok">{escape(said)}</p>'


def _acked_html(lang: _Lang, acked: Sequence[tuple[str, float]], gateway: Gateway) -> str:
    """ "acknowledged by A at T", then anyone who added themselves."""
    (first, at), others = acked[0], acked[1:]
    said = lang("act.acknowledged_by", by=first, time=_when(at, gateway))
    html = f'<p class="ok">{escape(said)}</p>'
    if others:
        items = "".join(f"<li>{escape(n)} · {escape(_when(t, gateway))}</li>" for n, t in others)
        html += f"<p>{escape(lang('act.also_acknowledged'))}</p><ul>{items}</ul>"
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
    lang = _Lang(request)
    checked = _check(request, lang, token)
    if isinstance(checked, HTMLResponse):
        return checked
    gateway, secret, action = checked
    if not _same_origin(request):
        return _refused(lang, lang("act.refused.cross_site"), 403)
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return _refused(lang, lang("act.refused.too_large"), 413)
    form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    if not hmac.compare_digest(form.get("csrf", ""), csrf_token(token, secret)):
        return _refused(lang, lang("act.refused.csrf"), 403)
    name = " ".join(form.get("name", "").split())[:MAX_NAME_CHARS]
    if not name:
        return _refused(lang, lang("act.refused.no_name"))
    if action.kind == "s":
        response = await _silence(lang, gateway, action, name, form.get("d", "1h"))
    elif action.kind == "a":
        response = await _acknowledge(lang, gateway, action, name, post=form.get("post") == "1")
    else:
        return _refused(lang, lang("act.refused.details_post"), 405)
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


async def _silence(
    lang: _Lang, gateway: Gateway, action: ActionToken, name: str, choice: str
) -> HTMLResponse:
    if choice not in SILENCE_CHOICES:
        return _refused(lang, lang("act.refused.duration", choices=", ".join(SILENCE_CHOICES)))
    am = _alertmanager(gateway, action)
    if am is None:
        return _refused(lang, lang(_NOT_CONFIGURED), 409)
    try:
        silence = await acting.silence(gateway, action.matchers, am, name, choice, via="link")
    except SilenceError as exc:  # logged with its details; the page quotes no answer
        return _refused(lang, _silence_error(lang, exc), 502)
    except StoreUnavailableError as exc:
        return _refused(lang, lang("act.refused.store_after_silence", error=exc), 503)
    expires = _when(silence.ends_at.timestamp(), gateway)
    done = lang("act.silenced_for", d=lang(_SILENCE_FOR[choice]))
    body = (
        f'<div class="card"><p class="ok">{escape(done)}</p>'
        f"<p>{escape(lang('act.silence_id'))} <code>{escape(silence.id)}</code></p>"
        f"<p>{escape(lang('act.expires', time=expires))}</p>"
        f"{_matchers_html(lang, action)}"
        f'<p class="muted">{escape(lang("act.by", name=name))}</p></div>'
    )
    return _page(lang, lang("act.title.silenced"), body)


async def _acknowledge(
    lang: _Lang, gateway: Gateway, action: ActionToken, name: str, *, post: bool
) -> HTMLResponse:
    try:
        before = await gateway.store.get_group(group_id(action.matchers))
        done = await acting.acknowledge(gateway, action.matchers, name, via="link", post=post)
    except StoreUnavailableError as exc:
        return _refused(lang, lang("act.refused.store", error=exc), 503)
    if done.entry is None:
        return _not_open(lang, action)
    if done.outcome is Acknowledged.FIRST:
        title, note = lang("act.title.acknowledged"), ""
        head = (
            f'<p class="ok">{escape(done.entry.title)}</p>'
            f"<p>{escape(_when(done.entry.received_at, gateway))}</p>"
        )
    else:
        title = lang("act.title.already_acknowledged")
        told = lang("act.told" if done.posted else "act.not_told")
        note = f'<p class="muted">{escape(lang("act.name_recorded", name=name))} {escape(told)}</p>'
        head = (_silenced_html(lang, before, gateway) if before is not None else "") + _acked_html(
            lang, done.acknowledgers or ((name, done.entry.received_at),), gateway
        )
    body = f'<div class="card">{head}{note}{_matchers_html(lang, action)}</div>'
    return _page(lang, title, body)


def _not_open(lang: _Lang, action: ActionToken) -> HTMLResponse:
    body = (
        f'<div class="card"><p class="ok">{escape(lang("act.resolved"))}</p>'
        f'<p class="muted">{escape(lang("act.nothing_changed"))}</p>'
        f"{_matchers_html(lang, action)}</div>"
    )
    return _page(lang, lang("act.title.resolved"), body, 409)
