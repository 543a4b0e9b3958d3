"""render_message_html draws every message type from its raw payload; payload_size and the CSS."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

import wecom_bot.preview as preview
from wecom_bot import limits
from wecom_bot.preview import PREVIEW_CSS, payload_size, preview_css, render_message_html

from .test_safety import assert_safe, url_attributes, visible_text

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(40))
GIF = b"GIF89a" + bytes(range(40))

TEXT_NOTICE: dict[str, Any] = {
    "msgtype": "template_card",
    "template_card": {
        "card_type": "text_notice",
        "source": {
            "icon_url": "https://wework.qpic.cn/icon/0",
            "desc": "企业微信",
            "desc_color": 2,
        },
        "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
        "emphasis_content": {"title": "100", "desc": "数据含义"},
        "quote_area": {
            "type": 1,
            "url": "https://work.weixin.qq.com/?from=openApi",
            "title": "引用文本标题",
            "quote_text": "Jack:企业微信真的很好用~\nBalian:超级好的一款软件!",
        },
        "sub_title_text": "下载企业微信还能抢红包!",
        "horizontal_content_list": [
            {"keyname": "邀请人", "value": "张三"},
            {
                "keyname": "企微官网",
                "value": "点击访问",
                "type": 1,
                "url": "https://work.weixin.qq.com/",
            },
            {"keyname": "企微下载", "value": "企业微信.apk", "type": 2, "media_id": "MEDIAID"},
            {"keyname": "负责人", "value": "李四", "type": 3, "userid": "lisi"},
        ],
        "jump_list": [
            {"type": 1, "url": "https://work.weixin.qq.com/?from=openApi", "title": "企业微信官网"},
            {"type": 2, "appid": "APPID", "pagepath": "PAGEPATH", "title": "跳转小程序"},
        ],
        "card_action": {"type": 1, "url": "https://work.weixin.qq.com/?from=card"},
    },
}

NEWS_NOTICE: dict[str, Any] = {
    "msgtype": "template_card",
    "template_card": {
        "card_type": "news_notice",
        "source": {"icon_url": "https://wework.qpic.cn/icon/0", "desc": "企业微信"},
        "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
        "card_image": {"url": "https://wework.qpic.cn/card/0", "aspect_ratio": 2.25},
        "image_text_area": {
            "type": 1,
            "url": "https://work.weixin.qq.com",
            "title": "左图右文标题",
            "desc": "左图右文描述",
            "image_url": "https://wework.qpic.cn/ita/0",
        },
        "quote_area": {"type": 0, "title": "引用", "quote_text": "引用文案"},
        "vertical_content_list": [{"title": "惊喜红包等你来拿", "desc": "下载企业微信还能抢红包!"}],
        "horizontal_content_list": [{"keyname": "邀请人", "value": "张三"}],
        "jump_list": [{"type": 1, "url": "https://work.weixin.qq.com/", "title": "官网"}],
        "card_action": {"type": 2, "appid": "APPID", "pagepath": "PAGEPATH"},
    },
}


def image_payload(data: bytes, md5: str | None = None) -> dict[str, Any]:
    return {
        "msgtype": "image",
        "image": {
            "base64": base64.b64encode(data).decode(),
            "md5": md5 or hashlib.md5(data).hexdigest(),
        },
    }


def news(*articles: dict[str, Any]) -> dict[str, Any]:
    return {"msgtype": "news", "news": {"articles": list(articles)}}


def article(n: int, **extra: Any) -> dict[str, Any]:
    return {"title": f"标题{n}", "url": f"https://news.example/{n}", **extra}


# -- the wrapper -------------------------------------------------------------------------------


def test_every_message_is_one_msg_row_with_avatar_and_body() -> None:
    html = render_message_html({"msgtype": "text", "text": {"content": "hi"}})
    assert html.startswith('<div class="wb-msg wb-msg--text" data-msgtype="text">')
    assert '<div class="wb-avatar" aria-hidden="true"></div><div class="wb-msg-body">' in html
    assert_safe(html)


# -- text --------------------------------------------------------------------------------------


def test_text_is_escaped_and_keeps_newlines() -> None:
    html = render_message_html({"msgtype": "text", "text": {"content": "a < b\n  c & d"}})
    assert '<div class="wb-text">a &lt; b\n  c &amp; d</div>' in html
    assert "wb-text {\n  white-space: pre-wrap;" in PREVIEW_CSS


def test_text_mentions_become_chips_in_order_without_duplicates() -> None:
    payload = {
        "msgtype": "text",
        "text": {
            "content": "广州今日天气",
            "mentioned_list": ["wangqing", "@all", 7, None],
            "mentioned_mobile_list": ["13800001111", "@all"],
        },
    }
    html = render_message_html(payload)
    assert_safe(html)
    chips = re.findall(r'<span class="(wb-mention[^"]*)">([^<]*)</span>', html)
    assert chips == [
        ("wb-mention", "@wangqing"),
        ("wb-mention wb-mention--all", "@all"),
        ("wb-mention", "@7"),
        ("wb-mention", "@13800001111"),
    ]
    assert 'class="wb-msg wb-msg--text wb-msg--at-all"' in html


def test_text_without_at_all_is_not_highlighted() -> None:
    html = render_message_html(
        {"msgtype": "text", "text": {"content": "x", "mentioned_list": ["a"]}}
    )
    assert "wb-msg--at-all" not in html


def test_empty_or_missing_content_shows_a_placeholder() -> None:
    for body in ({}, {"content": ""}, {"content": None}, {"content": ["x"]}):
        html = render_message_html({"msgtype": "text", "text": body})
        assert "wb-empty" in html


# -- markdown ----------------------------------------------------------------------------------


def test_markdown_is_drawn_in_a_bubble_and_at_all_is_highlighted() -> None:
    html = render_message_html({"msgtype": "markdown", "markdown": {"content": "**x** <@all>"}})
    assert 'class="wb-msg wb-msg--markdown wb-msg--at-all"' in html
    assert '<div class="wb-bubble wb-bubble--markdown"><div class="wb-md">' in html
    assert "<strong>x</strong>" in html


def test_markdown_v2_has_no_mentions() -> None:
    html = render_message_html({"msgtype": "markdown_v2", "markdown_v2": {"content": "<@all>"}})
    assert "wb-msg--at-all" not in html and "wb-mention" not in html
    assert '<div class="wb-md wb-md2">' in html


# -- image -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg")])
def test_image_mime_comes_from_magic_bytes(data: bytes, mime: str) -> None:
    html = render_message_html(image_payload(data))
    assert_safe(html, allow_data_image=True)
    expected = f'src="data:{mime};base64,{base64.b64encode(data).decode()}"'
    assert expected in html
    assert "wb-note" not in html


def test_image_base64_with_line_breaks_is_accepted() -> None:
    encoded = base64.encodebytes(PNG * 20).decode()
    assert "\n" in encoded
    html = render_message_html({"msgtype": "image", "image": {"base64": encoded}})
    assert "data:image/png;base64," in html


@pytest.mark.parametrize(
    ("value", "message"),
    [("not base64!", "invalid base64"), (None, "invalid base64"), (12, "invalid base64")],
)
def test_image_that_is_not_base64(value: object, message: str) -> None:
    html = render_message_html({"msgtype": "image", "image": {"base64": value}})
    assert message in html and "<img" not in html


def test_image_that_is_not_png_or_jpeg_is_not_embedded() -> None:
    html = render_message_html(image_payload(GIF))
    assert "not a PNG or JPEG" in html and "<img" not in html


def test_image_md5_mismatch_is_flagged() -> None:
    html = render_message_html(image_payload(PNG, md5="0" * 32))
    assert "md5 does not match" in html
    upper = render_message_html(image_payload(PNG, md5=hashlib.md5(PNG).hexdigest().upper()))
    assert "md5 does not match" not in upper


# -- news --------------------------------------------------------------------------------------


def test_single_article_is_large_with_picture_and_description() -> None:
    html = render_message_html(
        news(article(1, description="今年中秋节公司有豪礼相送", picurl="https://p.example/1.png"))
    )
    assert_safe(html)
    assert '<a class="wb-news-main" href="https://news.example/1"' in html
    assert 'src="https://p.example/1.png"' in html
    assert "今年中秋节公司有豪礼相送" in html
    assert "wb-news-row" not in html


def test_first_article_large_and_the_rest_as_rows() -> None:
    html = render_message_html(
        news(*(article(n, description="d", picurl=f"https://p.example/{n}") for n in range(3)))
    )
    assert html.count('class="wb-news-main"') == 1
    assert html.count('class="wb-news-row"') == 2
    assert html.count('class="wb-news-thumb"') == 2
    assert '<div class="wb-news-desc">' not in html
    assert [u for u in url_attributes(html) if "news" in u] == [
        f"https://news.example/{n}" for n in range(3)
    ]


def test_more_than_eight_articles_are_cut_with_a_note() -> None:
    html = render_message_html(news(*(article(n) for n in range(10))))
    assert html.count("https://news.example/") == 8
    assert "2 more article(s) over the limit of 8" in html


def test_titles_and_descriptions_are_truncated_like_the_server() -> None:
    title = "长" * 50  # 150 bytes
    description = "述" * 200  # 600 bytes
    html = render_message_html(news(article(0, title=title, description=description)))
    text = visible_text(html)
    assert "长" * 42 in text and "长" * 43 not in text
    assert "述" * 170 in text and "述" * 171 not in text


def test_article_url_without_scheme_is_not_a_link() -> None:
    html = render_message_html(news({"title": "中秋节礼品领取", "url": "www.qq.com"}))
    assert url_attributes(html) == []
    assert '<div class="wb-news-main wb-link--blocked">' in html


def test_news_without_articles() -> None:
    for body in ({}, {"articles": []}, {"articles": "x"}, {"articles": [1, "a"]}):
        assert "wb-empty" in render_message_html({"msgtype": "news", "news": body})


# -- file and voice ----------------------------------------------------------------------------


def test_file_with_a_known_name_and_size() -> None:
    names = {"m1": ("周报 <2024>.pdf", 1536)}
    html = render_message_html({"msgtype": "file", "file": {"media_id": "m1"}}, media_names=names)
    assert_safe(html)
    assert '<div class="wb-attach-name">周报 &lt;2024&gt;.pdf</div>' in html
    assert '<div class="wb-attach-size">1.5 KB</div>' in html
    assert '<div class="wb-file-icon" aria-hidden="true">PDF</div>' in html


def test_file_without_a_known_name_shows_the_media_id() -> None:
    html = render_message_html({"msgtype": "file", "file": {"media_id": "3a8asd892asd8asd"}})
    assert '<div class="wb-attach-name">3a8asd892asd8asd</div>' in html
    assert '<div class="wb-attach-size"></div>' in html


def test_voice_is_an_attachment_bubble() -> None:
    names = {"v": ("memo.amr", 2 * 1024 * 1024)}
    html = render_message_html({"msgtype": "voice", "voice": {"media_id": "v"}}, media_names=names)
    assert "wb-attach--voice" in html and "memo.amr" in html and "2.0 MB" in html


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KB"), (20 << 20, "20.0 MB")]
)
def test_human_sizes(size: int, text: str) -> None:
    html = render_message_html(
        {"msgtype": "file", "file": {"media_id": "m"}}, media_names={"m": ("f", size)}
    )
    assert f'<div class="wb-attach-size">{text}</div>' in html


# -- template cards ----------------------------------------------------------------------------


def test_text_notice_draws_every_part() -> None:
    html = render_message_html(TEXT_NOTICE, media_names={"MEDIAID": ("企业微信.apk", 3 << 20)})
    assert_safe(html)
    for part in (
        '<img class="wb-card-source-icon" src="https://wework.qpic.cn/icon/0"',
        '<span class="wb-card-source-desc wb-color--red">企业微信</span>',
        '<div class="wb-card-title">欢迎使用企业微信</div>',
        '<div class="wb-card-title-desc">您的好友正在邀请您加入企业微信</div>',
        '<div class="wb-card-emphasis-title">100</div>',
        '<div class="wb-card-emphasis-desc">数据含义</div>',
        '<a class="wb-card-quote" href="https://work.weixin.qq.com/?from=openApi"',
        '<div class="wb-card-quote-text">Jack:企业微信真的很好用~\nBalian:超级好的一款软件!</div>',
        '<div class="wb-card-subtitle">下载企业微信还能抢红包!</div>',
        '<span class="wb-card-hc-key">邀请人</span><span class="wb-card-hc-value">张三</span>',
        '<a class="wb-link wb-card-hc-value" href="https://work.weixin.qq.com/"',
        '企业微信.apk <span class="wb-attach-size">3.0 MB</span>',
        '<span class="wb-card-hc-value wb-card-hc-member">李四</span>',
        '<a class="wb-card-jump" href="https://work.weixin.qq.com/?from=openApi"',
        '<div class="wb-card-jump wb-miniprogram"><span class="wb-card-jump-title">跳转小程序',
        '<a class="wb-card-action" href="https://work.weixin.qq.com/?from=card"',
    ):
        assert part in html, part
    assert 'class="wb-card wb-tcard wb-tcard--text_notice wb-card--linked"' in html
    # The card action is a sibling overlay, never an <a> wrapping other links.
    assert html.index("wb-card-action") > html.index("wb-card-jumps")


@pytest.mark.parametrize(
    ("colour", "name"), [(0, "grey"), (1, "black"), (2, "red"), (3, "green"), (9, "grey")]
)
def test_source_desc_colours(colour: int, name: str) -> None:
    card = {"card_type": "text_notice", "source": {"desc": "来源", "desc_color": colour}}
    html = render_message_html({"msgtype": "template_card", "template_card": card})
    assert f'wb-card-source-desc wb-color--{name}"' in html


def test_news_notice_draws_every_part() -> None:
    html = render_message_html(NEWS_NOTICE)
    assert_safe(html)
    for part in (
        '<div class="wb-card-image" style="aspect-ratio: 2.25">'
        '<img class="wb-card-image-img" src="https://wework.qpic.cn/card/0"',
        '<a class="wb-card-ita" href="https://work.weixin.qq.com"',
        '<img class="wb-card-ita-img" src="https://wework.qpic.cn/ita/0"',
        '<div class="wb-card-ita-title">左图右文标题</div>',
        '<div class="wb-card-quote"><div class="wb-card-quote-title">引用</div>',
        '<div class="wb-card-vertical-title">惊喜红包等你来拿</div>',
        '<div class="wb-card-vertical-desc">下载企业微信还能抢红包!</div>',
        '<span class="wb-card-hc-key">邀请人</span>',
        '<a class="wb-card-jump" href="https://work.weixin.qq.com/"',
        '<div class="wb-card-action-mp"></div>',
    ):
        assert part in html, part
    assert 'wb-card-action"' not in html  # a mini-program action has no href


@pytest.mark.parametrize(
    ("ratio", "style"),
    [(1.5, "1.5"), (0.2, "1.3"), (9, "2.25"), ("2;background:red", "1.3"), (None, "1.3"),
     (float("nan"), "1.3"), (True, "1.3")],
)  # fmt: skip
def test_card_image_aspect_ratio_is_a_clamped_number(ratio: object, style: str) -> None:
    card = {
        "card_type": "news_notice",
        "card_image": {"url": "https://i.example/", "aspect_ratio": ratio},
    }
    html = render_message_html({"msgtype": "template_card", "template_card": card})
    assert f'style="aspect-ratio: {style}"' in html


def test_unknown_card_type_is_unsupported() -> None:
    html = render_message_html(
        {"msgtype": "template_card", "template_card": {"card_type": "vote_interaction"}}
    )
    assert "wb-unsupported" in html and "template_card vote_interaction" in html


def test_card_parts_with_wrong_types_are_skipped_not_fatal() -> None:
    card = {
        "card_type": "text_notice",
        "source": "x",
        "main_title": ["x"],
        "horizontal_content_list": {"a": 1},
        "jump_list": [1, None, {"type": "1", "title": 5}],
        "card_action": {"type": 1, "url": None},
    }
    html = render_message_html({"msgtype": "template_card", "template_card": card})
    assert_safe(html)
    assert "wb-card-action" not in html
    assert '<span class="wb-card-jump-title">5</span>' in html


# -- unsupported -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"msgtype": "miniprogram_notice", "miniprogram_notice": {}},
        {"msgtype": None},
        {},
        {"msgtype": ["text"]},
        {"msgtype": "__class__"},
        [],
        "text",
    ],
)
def test_unknown_or_malformed_payloads_are_a_neutral_bubble(payload: Any) -> None:
    html = render_message_html(payload)
    assert_safe(html)
    assert 'class="wb-msg wb-msg--unsupported" data-msgtype="unsupported"' in html
    assert "Unsupported message" in html


def test_body_of_the_wrong_type_is_drawn_as_empty() -> None:
    html = render_message_html({"msgtype": "markdown", "markdown": "**x**"})
    assert "wb-empty" in html


# -- payload_size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msgtype", "limit"),
    [("text", 2048), ("markdown", 4096), ("markdown_v2", 4096)],
)
def test_content_size_in_utf8_bytes(msgtype: str, limit: int) -> None:
    payload = {"msgtype": msgtype, msgtype: {"content": "中文ab"}}
    assert payload_size(payload) == (8, limit)


def test_image_size_is_the_decoded_image() -> None:
    assert payload_size(image_payload(PNG)) == (len(PNG), limits.IMAGE_MAX_BYTES)


def test_other_messages_measure_the_json_body_without_a_limit() -> None:
    payload = news(article(1))
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert payload_size(payload) == (len(raw), None)
    assert payload_size(TEXT_NOTICE)[1] is None


def test_size_of_malformed_payloads() -> None:
    assert payload_size({"msgtype": "text", "text": {"content": 5}})[1] is None
    assert payload_size({"msgtype": "text", "text": {"content": "\ud800"}}) == (3, 2048)
    assert payload_size({"msgtype": "image", "image": {"base64": "!!"}})[1] is None


# -- stylesheet and public API -----------------------------------------------------------------


def test_css_is_shipped_inlinable_and_offline() -> None:
    assert preview_css() == PREVIEW_CSS
    assert "url(" not in PREVIEW_CSS and "@import" not in PREVIEW_CSS
    assert "http" not in PREVIEW_CSS
    selectors = set(re.findall(r"\.([A-Za-z][\w-]*)", PREVIEW_CSS))
    assert selectors and all(name.startswith("wb-") for name in selectors)


def test_css_styles_the_classes_the_renderer_emits() -> None:
    payloads = [
        {"msgtype": "text", "text": {"content": "x", "mentioned_list": ["@all", "a"]}},
        {"msgtype": "markdown", "markdown": {"content": '# h\n> q\n<font color="info">i</font>'}},
        {"msgtype": "markdown_v2", "markdown_v2": {"content": "- a\n\n|a|\n|:-:|\n|b|\n---"}},
        image_payload(PNG),
        news(article(1, picurl="https://p.example/"), article(2)),
        {"msgtype": "file", "file": {"media_id": "m"}},
        TEXT_NOTICE,
        NEWS_NOTICE,
    ]
    emitted: set[str] = set()
    for payload in payloads:
        for value in re.findall(r'class="([^"]*)"', render_message_html(payload)):
            emitted.update(value.split())
    styled = set(re.findall(r"\.([A-Za-z][\w-]*)", PREVIEW_CSS))
    # Modifiers that only mark the element for pages and tests need no rule of their own.
    markers = {c for c in emitted if re.fullmatch(r"wb-(msg|tcard|bubble)--\w+", c)}
    markers |= {"wb-md2", "wb-font", "wb-card-main", "wb-attach", "wb-card-jump-title"}
    assert emitted - styled - markers == set()


def test_public_api_is_explicit_and_sorted() -> None:
    assert preview.__all__ == sorted(preview.__all__)
    public = {
        name
        for name in dir(preview)
        if not name.startswith("_")
        and name not in {"annotations", "files", "Final"}
        and not isinstance(getattr(preview, name), type(preview))
    }
    assert public == set(preview.__all__)


# -- in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 800, "height": 900})
        # Offline: any attempt to fetch something is answered locally with nothing.
        page.route("**/*", lambda route: route.fulfill(status=204, body=""))
        yield page
        browser.close()


def _page(*fragments: str) -> str:
    return (
        f"<!doctype html><meta charset='utf-8'><style>{PREVIEW_CSS}</style>"
        f"<div class='wb-chat'>{''.join(fragments)}</div>"
    )


@pytest.mark.browser
def test_hostile_messages_run_no_script_in_chromium(chromium_page: Any) -> None:
    from .test_safety import HOSTILE, every_payload

    dialogs: list[str] = []
    chromium_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    fragments = [
        render_message_html(payload, media_names={value: (value, 1)})
        for value in HOSTILE
        for payload in every_payload(value, value)
    ]
    chromium_page.set_content(_page(*fragments))
    chromium_page.wait_for_timeout(200)
    assert dialogs == []
    assert chromium_page.evaluate("document.scripts.length") == 0
    handlers = chromium_page.evaluate(
        "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes])"
        ".filter(a => a.name.startsWith('on')).length"
    )
    assert handlers == 0
    hrefs = chromium_page.evaluate("[...document.links].map(a => a.protocol)")
    assert set(hrefs) <= {"http:", "https:"}


@pytest.mark.browser
def test_card_layout_in_chromium(chromium_page: Any) -> None:
    chromium_page.set_content(
        _page(render_message_html(TEXT_NOTICE), render_message_html(NEWS_NOTICE))
    )
    # The card action covers the card, but links inside the card stay on top of it.
    hit = chromium_page.evaluate(
        """() => {
            const at = el => { const r = el.getBoundingClientRect();
                return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2); };
            const card = document.querySelector('.wb-tcard--text_notice');
            return {
                title: at(card.querySelector('.wb-card-title')).className,
                jump: at(card.querySelector('a.wb-card-jump')).closest('a').className,
                quote: at(card.querySelector('.wb-card-quote-text')).closest('a').className,
            };
        }"""
    )
    assert hit == {"title": "wb-card-action", "jump": "wb-card-jump", "quote": "wb-card-quote"}
    ratio = chromium_page.evaluate(
        "(() => { const r = document.querySelector('.wb-card-image').getBoundingClientRect();"
        " return r.width / r.height; })()"
    )
    assert ratio == pytest.approx(2.25, rel=0.02)
