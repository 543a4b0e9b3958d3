"""Which language a page is served in, over HTTP: the console, the /act/ pages and the
emulator's page follow ``Accept-Language``, a ``?lang=`` of the switch wins and is remembered
in a cookie, and a ``?lang=`` that names no known language is ignored, never reflected."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.emulator.conftest import Emu, new_key
from tests.gateway.harness import Running, running_gateway
from tests.gateway.test_ack_once import _ack_link, _config
from wecom_bot import i18n
from wecom_bot.gateway.samples import alertmanager_firing

from .support import BASIC, PASSWORD, USER, canary_key, console_config

HOSTILE = '"><script>alert(1)</script>'


def _lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found, page[:200]
    return found.group(1)


@pytest.fixture
def served(emu: Emu) -> Iterator[Running]:
    with running_gateway(console_config(emu.url, canary_key(), "memory://")) as gw:
        yield gw


def _get(
    client: httpx.Client, path: str, accept: str | None = None, **kwargs: object
) -> httpx.Response:
    headers = {"Authorization": BASIC}
    if accept is not None:
        headers["Accept-Language"] = accept
    answer = client.get(path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return answer


def test_the_console_follows_accept_language_and_english_is_the_default(served: Running) -> None:
    client = served.client
    for accept, language, title in [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN", "wecom-bot 网关控制台"),
        ("zh-TW", "zh-CN", "wecom-bot 网关控制台"),
        ("en-GB,en;q=0.9", "en", "wecom-bot gateway console"),
        ("de-DE, fr;q=0.5, zh;q=0.2", "zh-CN", "wecom-bot 网关控制台"),
        ("de-DE", "en", "wecom-bot gateway console"),
        (None, "en", "wecom-bot gateway console"),
    ]:
        answer = _get(client, "/ui", accept)
        assert _lang(answer.text) == language, accept
        assert f"<title>{title}</title>" in answer.text
        assert "Accept-Language" in answer.headers["vary"]
        assert "set-cookie" not in answer.headers  # asking is not choosing
        # The script's texts ride along, in the same language, and only the console's.
        meta = re.search(r'<meta name="wecom-bot-i18n" content="([^"]*)">', answer.text)
        assert meta is not None
        texts = json.loads(html.unescape(meta.group(1)))
        assert texts["console.tab.history"] == i18n.text(language, "console.tab.history")
        assert not any(k.startswith(("act.", "emulator.")) for k in texts)


def test_the_switch_is_remembered_in_a_cookie_that_beats_the_header(served: Running) -> None:
    client = served.client
    chosen = _get(client, "/ui?lang=zh-CN", "en-US")
    assert _lang(chosen.text) == "zh-CN"
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith(f"{i18n.COOKIE}=zh-CN;") and "Path=/" in cookie
    assert "SameSite=lax" in cookie and "Max-Age=31536000" in cookie
    assert client.cookies.get(i18n.COOKIE) == "zh-CN"
    assert _lang(_get(client, "/ui", "en-US").text) == "zh-CN"  # remembered
    assert _lang(_get(client, "/ui?lang=en", "zh-CN").text) == "en"  # switched back
    assert _lang(_get(client, "/ui", "zh-CN").text) == "en"


def test_an_unknown_lang_is_ignored_and_never_reflected(served: Running) -> None:
    client = served.client
    for value in (HOSTILE, "klingon", "zh-CN\r\nX-Evil: 1", "en" * 100):
        answer = _get(client, "/ui", "zh-CN", params={"lang": value})
        assert _lang(answer.text) == "zh-CN"  # the header decides
        assert "set-cookie" not in answer.headers
        assert "<script>alert" not in answer.text and "klingon" not in answer.text
    client.cookies.set(i18n.COOKIE, HOSTILE)
    answer = _get(client, "/ui", "en")
    assert _lang(answer.text) == "en" and "<script>alert" not in answer.text


def test_the_act_pages_follow_the_header_the_switch_and_the_cookie(
    emu: Emu, tmp_path: Path
) -> None:
    alerts_key, acks_key = new_key(), new_key()
    with running_gateway(_config(emu, alerts_key, acks_key, tmp_path, "markdown")) as gw:
        assert gw.post("/alertmanager", alertmanager_firing()).status_code == 200
        token = _ack_link(emu, alerts_key)
        path = f"/act/{token}"
        zh = gw.client.get(path, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert _lang(zh.text) == "zh-CN" and "<h1>认领</h1>" in zh.text
        assert "Acknowledge" not in zh.text
        # The switch offers the other language; a language chosen there goes with the form.
        assert 'href="?lang=en"' in zh.text and 'aria-current="true">中文</a>' in zh.text
        assert f'action="{path}"' in zh.text
        en = gw.client.get(path, headers={"Accept-Language": "en"})
        assert _lang(en.text) == "en" and "<h1>Acknowledge</h1>" in en.text
        switched = gw.client.get(path, params={"lang": "en"}, headers={"Accept-Language": "zh"})
        assert _lang(switched.text) == "en" and i18n.COOKIE in switched.headers["set-cookie"]
        assert f'action="{path}?lang=en"' in switched.text
        # Remembered by this phone: the next link opens in English though it asks for Chinese.
        again = gw.client.get(path, headers={"Accept-Language": "zh-CN"})
        assert _lang(again.text) == "en"
        bad = gw.client.get(path, params={"lang": HOSTILE})
        assert "<script>alert" not in bad.text and "set-cookie" not in bad.headers
        # A refusal speaks the page's language too.
        gw.client.cookies.clear()
        refused = gw.client.get(path + "x", headers={"Accept-Language": "zh-CN"})
        assert refused.status_code == 400 and "什么也没有改变。" in refused.text


def test_the_emulator_page_follows_the_header_and_the_switch(emu: Emu) -> None:
    with httpx.Client(base_url=emu.url) as client:
        zh = client.get("/", headers={"Accept-Language": "zh-CN"})
        assert _lang(zh.text) == "zh-CN" and "<title>wecom-bot 模拟器</title>" in zh.text
        assert "Accept-Language" in zh.headers["vary"]
        en = client.get("/", headers={"Accept-Language": "en-US"})
        assert _lang(en.text) == "en" and "<title>wecom-bot emulator</title>" in en.text
        chosen = client.get("/", params={"lang": "zh-CN"}, headers={"Accept-Language": "en"})
        assert _lang(chosen.text) == "zh-CN" and i18n.COOKIE in chosen.headers["set-cookie"]
        assert _lang(client.get("/", headers={"Accept-Language": "en"}).text) == "zh-CN"
        hostile = client.get("/", params={"lang": HOSTILE})
        assert "<script>alert" not in hostile.text


@pytest.mark.browser
def test_the_switch_in_the_browser_keeps_the_view_and_is_remembered(
    browser: Browser, served: Running
) -> None:
    context = browser.new_context(
        locale="zh-CN", http_credentials={"username": USER, "password": PASSWORD}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(served.url + "/ui#history")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("button[data-view=history]")).to_have_text("历史")
        expect(page.locator("#gc-lang a[aria-current]")).to_have_text("中文")
        page.click("#gc-lang a[data-lang=en]")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("button[data-view=history]")).to_have_text("History")
        assert page.url.endswith("/ui?lang=en#history")  # the same view, in English
        expect(page.locator("#view-history")).to_be_visible()
        page.goto(served.url + "/ui#status")  # a later visit: remembered, though it asks zh
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#gc-lang a[aria-current]")).to_have_text("English")
    finally:
        context.close()
