"""The page in a real headless Chromium: every message type drawn live, hostile input inert,
unread badges, clearing a group, reconnecting, and the screenshot in docs/."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page

from tests.images import same_picture
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.masking import key_fingerprint, mask_key

from .conftest import Emu, FakeClock, Watched, chart_png, fit_viewport, open_page, running

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "emulator-page.png"

# Fixed keys and a fixed clock make the screenshot the same on every run.
SHOWCASE_KEY = "4f1c7a52-93be-4d1e-b0a8-6c2d95e7f3a1"
CI_KEY = "b83e0d6f-2a41-4c95-8e17-d4f6a0c9b2e8"
ONCALL_KEY = "e7a9c3b1-5d02-4f68-9a3c-1b8e6d4f0c27"
START = 1750210320.0  # 2025-06-18 09:32:00 in Shanghai

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
BAD_URL = "javascript:window.__pwned=1"


def text(content: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content, **extra}}


def image(data: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    return {"msgtype": "image", "image": {"base64": encoded, "md5": hashlib.md5(data).hexdigest()}}


MARKDOWN = """# 部署完成 <font color="info">成功</font>
> 服务：<font color="comment">payment-api</font>
> 版本：`v2.14.0`
> 错误率：<font color="warning">0.3%</font>
**负责人** <@lisi> 请查看 [发布记录](https://ci.example.com/runs/4812)"""

MARKDOWN_V2 = """## 每日巡检报告
*自动生成* · **3** 项需要关注

| 服务 | 状态 | 延迟 (ms) |
| :--- | :---: | ---: |
| gateway | 正常 | 42 |
| orders | 告警 | 2310 |

1. 扩容 orders
   - 检查连接池
   - 观察 GC
2. 安排复盘

```
kubectl -n prod rollout restart deploy/orders
```
---
> 详情见 [Grafana](https://grafana.example.com/d/orders)"""


def showcase_messages(pictures: str, file_id: str, voice_id: str) -> list[dict[str, Any]]:
    """One message of every type (cards with every part), as an alerting team sends them."""
    return [
        text(
            "【告警】订单服务 P99 延迟 2.3s，超过阈值 1s\n集群：prod-sh-01 · 已持续 5 分钟",
            mentioned_list=["zhangsan", "@all"],
            mentioned_mobile_list=["13800001111"],
        ),
        {"msgtype": "markdown", "markdown": {"content": MARKDOWN}},
        {"msgtype": "markdown_v2", "markdown_v2": {"content": MARKDOWN_V2}},
        image(chart_png()),
        {"msgtype": "news", "news": {"articles": [
            {"title": "6 月故障复盘：订单服务超时", "description": "根因、时间线与改进项",
             "url": "https://wiki.example.com/postmortem/0612", "picurl": f"{pictures}/cover.png"},
            {"title": "值班手册更新：数据库切换流程", "url": "https://wiki.example.com/runbook/db",
             "picurl": f"{pictures}/thumb-green.png"},
            {"title": "下周变更窗口安排", "url": "https://wiki.example.com/changes",
             "picurl": f"{pictures}/thumb-orange.png"},
        ]}},
        {"msgtype": "file", "file": {"media_id": file_id}},
        {"msgtype": "voice", "voice": {"media_id": voice_id}},
        {"msgtype": "template_card", "template_card": {
            "card_type": "text_notice",
            "source": {"icon_url": f"{pictures}/icon.png", "desc": "运维监控", "desc_color": 2},
            "main_title": {"title": "磁盘使用率告警", "desc": "prod-db-03 · /data"},
            "emphasis_content": {"title": "92%", "desc": "当前使用率"},
            "quote_area": {"type": 1, "url": "https://grafana.example.com/d/disk",
                           "title": "最近 24 小时", "quote_text": "增长 6%，预计 3 天后写满"},
            "sub_title_text": "请在今天 18:00 前清理或扩容",
            "horizontal_content_list": [
                {"keyname": "主机", "value": "prod-db-03"},
                {"keyname": "面板", "value": "Grafana", "type": 1,
                 "url": "https://grafana.example.com/d/disk"},
                {"keyname": "报告", "value": "nightly-report.pdf", "type": 2,
                 "media_id": file_id},
                {"keyname": "值班", "value": "王五", "type": 3, "userid": "wangwu"},
            ],
            "jump_list": [
                {"type": 1, "title": "查看详情", "url": "https://grafana.example.com/d/disk"},
                {"type": 2, "title": "值班小程序", "appid": "wx0123456789", "pagepath": "pages/a"},
            ],
            "card_action": {"type": 1, "url": "https://grafana.example.com/d/disk"},
        }},
        {"msgtype": "template_card", "template_card": {
            "card_type": "news_notice",
            "source": {"icon_url": f"{pictures}/icon.png", "desc": "发布平台", "desc_color": 3},
            "main_title": {"title": "v2.14.0 已发布", "desc": "payment-api · 生产环境"},
            "card_image": {"url": f"{pictures}/cover.png", "aspect_ratio": 2.25},
            "image_text_area": {"type": 1, "url": "https://ci.example.com/runs/4812",
                                "title": "流水线 #4812", "desc": "全部 212 个测试通过",
                                "image_url": f"{pictures}/thumb-green.png"},
            "quote_area": {"type": 0, "quote_text": "灰度 10% → 50% → 100%，无异常"},
            "vertical_content_list": [
                {"title": "变更内容", "desc": "支付回调重试改为指数退避"},
                {"title": "回滚方式", "desc": "一键回滚到 v2.13.2"},
            ],
            "horizontal_content_list": [{"keyname": "发布人", "value": "李四"}],
            "jump_list": [{"type": 1, "title": "发布记录", "url": "https://ci.example.com/4812"}],
            "card_action": {"type": 1, "url": "https://ci.example.com/runs/4812"},
        }},
    ]  # fmt: skip


OVERSIZE = {"msgtype": "markdown", "markdown": {"content": "## 日志摘要\n" + "超时" * 760}}


@dataclass
class Showcase:
    """The page showing a group that received every message type, live."""

    watched: Watched
    emu: Emu
    sent: list[dict[str, Any]]

    @property
    def page(self) -> Page:
        return self.watched.page

    def entry(self, msgtype: str, nth: int = 0) -> Locator:
        return self.page.locator(f"#ep-chat .ep-entry[data-msgtype={msgtype}]").nth(nth)


@pytest.fixture(scope="module")
def showcase(browser: Browser, pictures: str) -> Iterator[Showcase]:
    clock = FakeClock(START - 3600)
    with running(EmulatorSettings(rate=None, clock=clock)) as emu:
        emu.send_ok(CI_KEY, text("nightly build #1287 passed"))
        clock.now = START - 900
        emu.send_ok(ONCALL_KEY, text("交接：今晚值班 王五"))
        clock.now = START
        file_id = emu.upload(SHOWCASE_KEY, b"%PDF-1.7\n" + b"0" * 48204, "file",
                             "nightly-report.pdf")  # fmt: skip
        voice_id = emu.upload(SHOWCASE_KEY, b"#!AMR\n" + b"\x3c" * 6394, "voice", "standup.amr")
        messages = showcase_messages(pictures, file_id, voice_id)
        emu.send_ok(SHOWCASE_KEY, messages[0])
        group = key_fingerprint(SHOWCASE_KEY)
        with open_page(browser, f"{emu.url}/#{group}") as watched:
            watched.entries(1)
            watched.page.evaluate("window.__sameDocument = true")
            for index, message in enumerate(messages[1:], start=1):
                clock.now = START + 41 * index
                emu.send_ok(SHOWCASE_KEY, message)
            clock.now = START + 41 * len(messages)
            rejected = emu.send(SHOWCASE_KEY, OVERSIZE)
            assert rejected["errcode"] == 40058
            clock.now += 30
            emu.send_ok(CI_KEY, text("nightly build #1288 failed"))
            watched.entries(len(messages) + 1)
            watched.page.wait_for_selector(".ep-group .ep-badge")
            fit_viewport(watched)
            yield Showcase(watched, emu, messages)


def test_screenshot_of_every_message_type(showcase: Showcase) -> None:
    shot = showcase.page.screenshot(full_page=True)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    if not SCREENSHOT.exists() or not same_picture(SCREENSHOT.read_bytes(), shot):
        SCREENSHOT.write_bytes(shot)
    data = SCREENSHOT.read_bytes()
    assert same_picture(data, shot)
    assert data.startswith(b"\x89PNG") and len(data) > 50_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1280 and height > 2000


def test_messages_arrived_live_without_reload(showcase: Showcase) -> None:
    watched = showcase.watched
    assert watched.page.evaluate("window.__sameDocument") is True
    assert len(watched.navigations) == 1
    assert len(watched.event_requests) == 1  # one stream, never reopened
    ids = watched.page.eval_on_selector_all(
        "#ep-chat .ep-entry", "nodes => nodes.map(n => Number(n.dataset.entryId))"
    )
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == len(showcase.sent) + 1
    assert watched.dialogs == [] and watched.errors == [] and watched.violations() == []
    # Pictures that loaded after their message was drawn did not leave the view scrolled up.
    assert watched.page.locator("#ep-jump").is_hidden()


def test_sidebar_lists_groups_masked_with_counters_and_unread(showcase: Showcase) -> None:
    page = showcase.page
    groups = page.locator(".ep-group")
    assert groups.count() == 3
    keys = [groups.nth(i).locator(".ep-group-key").text_content() for i in range(3)]
    assert keys == [mask_key(CI_KEY), mask_key(ONCALL_KEY), mask_key(SHOWCASE_KEY)]
    html = page.content()
    assert all(key not in html for key in (CI_KEY, ONCALL_KEY, SHOWCASE_KEY))
    selected = page.locator(".ep-group--selected")
    assert selected.locator(".ep-group-key").text_content() == mask_key(SHOWCASE_KEY)
    assert selected.locator(".ep-group-counts").text_content() == "9 sent · 1 rejected"
    ci = page.locator(f".ep-group[data-group-id='{key_fingerprint(CI_KEY)}']")
    assert ci.locator(".ep-badge").text_content() == "1"
    assert ci.locator(".ep-group-counts").text_content() == "2 sent"
    assert selected.locator(".ep-badge").count() == 0
    assert page.locator("#ep-head-title").text_content() == mask_key(SHOWCASE_KEY)


def test_each_message_shows_time_type_and_size(showcase: Showcase) -> None:
    metas = showcase.page.locator("#ep-chat .ep-entry--accepted .ep-meta")
    assert metas.count() == len(showcase.sent)
    times = [metas.nth(i).locator(".ep-time").text_content() for i in range(metas.count())]
    assert times[0] == "09:32:00" and times[1] == "09:32:41"  # Shanghai time
    types = [metas.nth(i).locator(".ep-type").text_content() for i in range(metas.count())]
    assert types == [m["msgtype"] for m in showcase.sent]
    text_size = showcase.entry("text").locator(".ep-size")
    content = showcase.sent[0]["text"]["content"]
    assert text_size.text_content() == f"{len(content.encode())} / 2,048 B"
    assert "ep-size--over" not in (text_size.get_attribute("class") or "")
    assert showcase.entry("image").locator(".ep-size").text_content() == (
        f"{len(chart_png()):,} / 2,097,152 B"
    )
    assert showcase.entry("file").locator(".ep-size").text_content() == "48,213 / 20,971,520 B"
    card_size = showcase.entry("template_card").locator(".ep-size").text_content() or ""
    assert re.fullmatch(r"[\d,]+ B", card_size)
    download = showcase.entry("voice").locator("a.ep-download")
    assert download.text_content() == "download standup.amr"
    assert (download.get_attribute("href") or "").startswith("/api/media/")


def test_text_and_markdown(showcase: Showcase) -> None:
    text_entry = showcase.entry("text")
    assert "P99 延迟 2.3s" in (text_entry.locator(".wb-text").text_content() or "")
    mentions = text_entry.locator(".wb-mention").all_text_contents()
    assert mentions == ["@zhangsan", "@all", "@13800001111"]
    assert text_entry.locator(".wb-msg--at-all").count() == 1

    md = showcase.entry("markdown")
    assert md.locator("h1.wb-md-h1").text_content() == "部署完成 成功"
    colour = md.locator(".wb-font--warning").evaluate("n => getComputedStyle(n).color")
    assert colour == "rgb(245, 96, 44)"
    assert md.locator(".wb-font--info").text_content() == "成功"
    assert md.locator(".wb-font--comment").text_content() == "payment-api"
    assert md.locator(".wb-mention").text_content() == "@lisi"
    assert md.locator("code.wb-md-code").text_content() == "v2.14.0"
    assert md.locator("a").get_attribute("href") == "https://ci.example.com/runs/4812"


def test_markdown_v2(showcase: Showcase) -> None:
    md = showcase.entry("markdown_v2")
    assert md.locator(".wb-md-table th").all_text_contents() == ["服务", "状态", "延迟 (ms)"]
    right = md.locator(".wb-md-table td.wb-align-right").first
    assert right.evaluate("n => getComputedStyle(n).textAlign") == "right"
    assert md.locator("ol.wb-md-ol > li").count() == 2
    nested = md.locator("ol.wb-md-ol ul.wb-md-ul > li").all_text_contents()
    assert nested == ["检查连接池", "观察 GC"]
    assert "kubectl -n prod rollout restart" in (md.locator("pre").text_content() or "")
    assert md.locator("em").text_content() == "自动生成"
    assert md.locator("hr").count() == 1


def test_image_news_file_and_voice(showcase: Showcase) -> None:
    img = showcase.entry("image").locator("img.wb-image-img")
    assert img.evaluate("n => [n.naturalWidth, n.naturalHeight]") == [240, 150]
    news = showcase.entry("news")
    assert news.locator(".wb-news-main").count() == 1
    assert news.locator(".wb-news-row").count() == 2
    cover = news.locator("img.wb-news-cover-img")
    assert cover.evaluate("n => n.naturalWidth") == 534  # loaded from the picture server
    assert news.locator(".wb-news-main-title").text_content() == "6 月故障复盘：订单服务超时"
    file_entry = showcase.entry("file")
    assert file_entry.locator(".wb-attach-name").text_content() == "nightly-report.pdf"
    assert file_entry.locator(".wb-attach-size").text_content() == "47.1 KB"
    assert file_entry.locator(".wb-file-icon").text_content() == "PDF"
    voice = showcase.entry("voice")
    assert voice.locator(".wb-attach-name").text_content() == "standup.amr"
    assert voice.locator(".wb-attach-size").text_content() == "6.2 KB"


def test_template_cards_with_every_part(showcase: Showcase) -> None:
    notice = showcase.entry("template_card", 0)
    assert notice.locator(".wb-card-source-desc.wb-color--red").text_content() == "运维监控"
    assert notice.locator("img.wb-card-source-icon").evaluate("n => n.naturalWidth") == 32
    assert notice.locator(".wb-card-title").text_content() == "磁盘使用率告警"
    assert notice.locator(".wb-card-emphasis-title").text_content() == "92%"
    assert notice.locator("a.wb-card-quote").get_attribute("href") == (
        "https://grafana.example.com/d/disk"
    )
    assert notice.locator(".wb-card-subtitle").text_content() == "请在今天 18:00 前清理或扩容"
    rows = notice.locator(".wb-card-hc-item")
    assert rows.count() == 4
    assert rows.nth(1).locator("a").get_attribute("href") == "https://grafana.example.com/d/disk"
    assert "nightly-report.pdf" in (rows.nth(2).text_content() or "")
    assert rows.nth(3).locator(".wb-card-hc-member").count() == 1
    jumps = notice.locator(".wb-card-jump")
    assert jumps.all_text_contents()[0] == "查看详情"
    assert jumps.nth(1).locator(".wb-miniprogram-badge").count() == 1
    assert notice.locator("a.wb-card-action").count() == 1

    news_card = showcase.entry("template_card", 1)
    assert news_card.locator(".wb-card-source-desc.wb-color--green").count() == 1
    ratio = news_card.locator(".wb-card-image").evaluate("n => getComputedStyle(n).aspectRatio")
    assert ratio == "2.25 / 1"
    box = news_card.locator(".wb-card-image").bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 2.25) < 0.05
    assert news_card.locator(".wb-card-ita-title").text_content() == "流水线 #4812"
    assert news_card.locator(".wb-card-vertical-item").count() == 2
    quote = news_card.locator(".wb-card-quote-text").text_content()
    assert quote == "灰度 10% → 50% → 100%，无异常"


def test_rejected_request_is_a_red_system_line(showcase: Showcase) -> None:
    line = showcase.page.locator("#ep-chat .ep-entry--rejected")
    assert line.count() == 1
    assert line.get_attribute("data-errcode") == "40058"
    assert line.locator(".ep-errcode").text_content() == "errcode 40058"
    assert line.locator(".ep-reason").text_content() == (
        "markdown.content exceed max length 4096. invalid Request Parameter"
    )
    assert line.locator(".ep-rejected-what").text_content() == "Rejected markdown"
    size = OVERSIZE["markdown"]["content"].encode()  # type: ignore[index]
    over = line.locator(".ep-size.ep-size--over")
    assert over.text_content() == f"{len(size):,} / 4,096 B"
    assert over.evaluate("n => getComputedStyle(n).color") == "rgb(245, 74, 69)"
    red = line.locator(".ep-rejected").evaluate("n => getComputedStyle(n).color")
    assert red == "rgb(216, 57, 49)"
    assert line.locator(".wb-msg").count() == 0  # not drawn as if it had arrived


def test_raw_json_toggle(showcase: Showcase) -> None:
    entry = showcase.entry("markdown")
    button = entry.locator(".ep-raw-toggle")
    assert entry.locator(".ep-raw").count() == 0
    button.click()
    raw = entry.locator("pre.ep-raw")
    assert raw.is_visible() and button.get_attribute("aria-expanded") == "true"
    assert json.loads(raw.text_content() or "") == showcase.sent[1]
    button.click()
    assert raw.is_hidden() and button.get_attribute("aria-expanded") == "false"


# -- pages of their own, on the module's shared emulator ---------------------------------------


def new_key() -> str:
    return str(uuid.uuid4())


def test_hostile_messages_stay_text(browser: Browser, emu: Emu) -> None:
    key = new_key()
    file_id = emu.upload(key, b"%PDF-1.4 x", "file", f"{HOSTILE}.pdf")
    emu.send_ok(key, text("first"))
    hostile: list[dict[str, Any]] = [
        text(HOSTILE, mentioned_list=[HOSTILE], mentioned_mobile_list=[HOSTILE]),
        {"msgtype": "markdown", "markdown": {"content": (
            f"# {HOSTILE}\n[click]({BAD_URL}) <@{HOSTILE}> `{HOSTILE}`\n"
            f'<font color="info" onclick="window.__pwned=1">{HOSTILE}</font>')}},
        {"msgtype": "markdown_v2", "markdown_v2": {"content": (
            f"| {HOSTILE} |\n| --- |\n| [x]({BAD_URL}) |\n\n![a]({BAD_URL})\n"
            f"```\n{HOSTILE}\n```\n- {HOSTILE}")}},
        {"msgtype": "news", "news": {"articles": [
            {"title": HOSTILE, "description": HOSTILE, "url": BAD_URL, "picurl": BAD_URL},
            {"title": HOSTILE, "url": 'https://e.com/"onmouseover="window.__pwned=1',
             "picurl": "data:image/svg+xml,<svg onload='window.__pwned=1'/>"},
        ]}},
        {"msgtype": "file", "file": {"media_id": file_id}},
        {"msgtype": "template_card", "template_card": {
            "card_type": "text_notice",
            "source": {"icon_url": BAD_URL, "desc": HOSTILE, "desc_color": 2},
            "main_title": {"title": HOSTILE, "desc": HOSTILE},
            "emphasis_content": {"title": HOSTILE, "desc": HOSTILE},
            "quote_area": {"type": 1, "url": BAD_URL, "title": HOSTILE, "quote_text": HOSTILE},
            "sub_title_text": HOSTILE,
            "horizontal_content_list": [
                {"keyname": HOSTILE, "value": HOSTILE, "type": 1, "url": BAD_URL},
                {"keyname": HOSTILE, "value": HOSTILE, "type": 3, "userid": HOSTILE},
            ],
            "jump_list": [{"type": 1, "title": HOSTILE, "url": BAD_URL}],
            "card_action": {"type": 1, "url": BAD_URL},
        }},
        {"msgtype": "template_card", "template_card": {
            "card_type": "news_notice",
            "source": {"icon_url": BAD_URL, "desc": HOSTILE},
            "main_title": {"title": HOSTILE, "desc": HOSTILE},
            "card_image": {"url": BAD_URL, "aspect_ratio": "1);background:url(x"},
            "image_text_area": {"type": 1, "url": BAD_URL, "title": HOSTILE, "desc": HOSTILE,
                                "image_url": BAD_URL},
            "vertical_content_list": [{"title": HOSTILE, "desc": HOSTILE}],
            "jump_list": [{"type": 2, "title": HOSTILE, "appid": HOSTILE}],
            "card_action": {"type": 1, "url": "https://example.com"},
        }},
    ]  # fmt: skip
    with open_page(browser, f"{emu.url}/#{key_fingerprint(key)}") as watched:
        watched.entries(1)
        accepted = 1
        for payload in hostile:
            if emu.send(key, payload)["errcode"] == 0:
                accepted += 1
        refused = [
            emu.send(key, {"msgtype": HOSTILE, HOSTILE: {"content": HOSTILE}}),
            emu.send_raw(key, f"{HOSTILE} not json".encode()),
        ]
        assert [a["errcode"] for a in refused] == [40008, 40008]
        watched.entries(accepted + len(refused))
        assert accepted >= 6
        page = watched.page
        for toggle in page.locator(".ep-raw-toggle").all():
            toggle.click()
        page.wait_for_timeout(150)  # time for any handler that could have slipped through
        assert page.evaluate("window.__pwned") is None
        assert watched.dialogs == []
        assert watched.violations() == []
        assert watched.errors == []
        scripts = page.eval_on_selector_all("script", "s => s.map(n => n.getAttribute('src'))")
        assert scripts == ["/page/assets/page.js"]
        dangerous = page.evaluate(
            """() => [...document.querySelectorAll('*')].flatMap(n =>
                [...n.attributes]
                    .filter(a => a.name.startsWith('on')
                        || /^\\s*(javascript|data:text|vbscript)/i.test(a.value))
                    .map(a => n.tagName + ' ' + a.name + '=' + a.value))"""
        )
        assert dangerous == []
        styled = page.eval_on_selector_all(
            "#ep-chat [style]", "ns => ns.map(n => n.className + '|' + n.getAttribute('style'))"
        )
        assert all(re.fullmatch(r"wb-card-image\|aspect-ratio: [\d.]+;", s) for s in styled)
        forbidden = "script, iframe, object, embed, svg, style, base, form, meta, link"
        assert page.locator(f"#ep-chat :is({forbidden})").count() == 0
        chat_text = page.locator("#ep-chat").text_content() or ""
        assert chat_text.count("<script>window.__pwned=1</script>") >= 10
        rejected = page.locator(".ep-entry--rejected .ep-rejected-what").all_text_contents()
        assert rejected[-2:] == [f"Rejected {HOSTILE}", "Rejected"]
        # the body that was not JSON is shown as sent, as text; its entry may have been
        # drawn again after the toggles above were clicked, so open its raw view itself
        last = page.locator(".ep-entry--rejected").last
        if last.locator("pre.ep-raw").count() == 0:
            last.locator(".ep-raw-toggle").click()
        raw = last.locator("pre.ep-raw")
        raw.wait_for(state="attached", timeout=5000)
        assert raw.text_content() == f"{HOSTILE} not json"


def test_policy_stops_script_even_if_html_got_in(browser: Browser, emu: Emu) -> None:
    with open_page(browser, emu.url) as watched:
        page = watched.page
        page.evaluate(
            """() => {
                const holder = document.createElement('div');
                holder.innerHTML = '<img src="/nope.png" onerror="window.__pwned=1">'
                    + '<a id="js" href="javascript:window.__pwned=1">x</a>';
                document.body.append(holder);
                const script = document.createElement('script');
                script.textContent = 'window.__pwned = 1';
                document.body.append(script);
            }"""
        )
        page.click("#js")
        page.wait_for_function("() => window.__violations.length >= 3", timeout=5000)
        assert page.evaluate("window.__pwned") is None
        assert watched.dialogs == []


def test_unread_badges_and_switching_groups(browser: Browser, emu: Emu) -> None:
    first, second = new_key(), new_key()
    emu.send_ok(first, text("in the first group"))
    emu.send_ok(second, text("older message of the second group"))
    with open_page(browser, f"{emu.url}/#{key_fingerprint(first)}") as watched:
        page = watched.page
        watched.entries(1)
        other = page.locator(f".ep-group[data-group-id='{key_fingerprint(second)}']")
        assert other.locator(".ep-badge").count() == 0
        emu.send_ok(second, text("new one"))
        emu.send_ok(second, text("and another"))
        page.wait_for_function(
            "id => document.querySelector(`.ep-group[data-group-id='${id}'] .ep-badge`)"
            "?.textContent === '2'",
            arg=key_fingerprint(second),
            timeout=10_000,
        )
        assert page.locator("#ep-chat .ep-entry").count() == 1  # nothing leaked into this view
        other.click()
        watched.entries(3)
        texts = page.locator("#ep-chat .wb-text").all_text_contents()
        assert texts == ["older message of the second group", "new one", "and another"]
        assert other.locator(".ep-badge").count() == 0
        assert "ep-group--selected" in (other.get_attribute("class") or "")
        assert page.evaluate("location.hash") == f"#{key_fingerprint(second)}"
        emu.send_ok(second, text("live in the open group"))
        watched.entries(4)
        assert other.locator(".ep-badge").count() == 0


def test_clear_group_button(browser: Browser, emu: Emu) -> None:
    key = new_key()
    emu.send_ok(key, text("to be cleared"))
    group = key_fingerprint(key)
    with open_page(browser, f"{emu.url}/#{group}") as watched:
        page = watched.page
        watched.entries(1)
        page.click("#ep-clear")
        assert page.locator("#ep-clear").text_content() == "Click again to clear"
        assert emu.client.get(f"/api/groups/{group}").status_code == 200  # one click: nothing
        page.click("#ep-clear")
        page.wait_for_selector(f".ep-group[data-group-id='{group}']", state="detached")
        # The view moves on to another group (or the welcome text): nothing of this one stays.
        assert "to be cleared" not in (page.locator("#ep-chat").text_content() or "")
        assert page.locator("#ep-head-title").text_content() != mask_key(key)
        assert emu.client.get(f"/api/groups/{group}").status_code == 404
        assert watched.dialogs == []


def test_page_reconnects_when_the_stream_ends(browser: Browser) -> None:
    key = new_key()
    with running(EmulatorSettings(rate=None, sse_max_seconds=0.5)) as emu:
        emu.send_ok(key, text("before"))
        with open_page(browser, f"{emu.url}/#{key_fingerprint(key)}") as watched:
            watched.entries(1)
            watched.page.wait_for_function(
                "() => document.querySelector('#ep-conn').dataset.state !== 'live'", timeout=5000
            )  # the stream ended (sse_max_seconds) ...
            watched.page.wait_for_selector("#ep-conn[data-state=live]", timeout=10_000)
            emu.send_ok(key, text("after the reconnect"))
            watched.entries(2)  # ... and the reopened one delivered the next message
            assert len(watched.event_requests) >= 2
            last = watched.page.locator("#ep-chat .wb-text").last.text_content()
            assert last == "after the reconnect"
