"""Nothing in a message can inject markup, script or a dangerous URL into a preview page.

Every output is parsed with the stdlib HTML parser and audited against an allowlist: known tags
only, balanced, known attributes only (so no ``on*`` handler), ``href``/``src`` only http(s) (plus
a PNG/JPEG ``data:`` URL for the image message), ``style`` only our own aspect-ratio number.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_bot.preview import render_markdown, render_markdown_v2, render_message_html

ALLOWED_TAGS = frozenset(
    "div span a img strong em code pre blockquote p br ul ol li hr table thead tbody tr th td "
    "h1 h2 h3 h4 h5 h6".split()
)
VOID_TAGS = frozenset({"img", "br", "hr"})
ALLOWED_ATTRS = frozenset(
    "class href src alt loading referrerpolicy target rel style start role aria-label aria-hidden "
    "data-msgtype".split()
)
TEXT_ATTRS = frozenset({"alt", "aria-label"})  # shown as text, never followed as a URL
HTTP_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")
DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg);base64,[A-Za-z0-9+/]*={0,2}")
STYLE = re.compile(r"aspect-ratio: \d+(?:\.\d+)?")


class _Audit(HTMLParser):
    def __init__(self, allow_data_image: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.allow_data_image = allow_data_image
        self.problems: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"unknown declaration {data!r}")

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.extend((tag, name, value) for name, value in attrs)
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name not in ALLOWED_ATTRS:
                self.problems.append(f"attribute {name} on <{tag}>")
                continue
            if value is None:
                self.problems.append(f"bare attribute {name}")
                continue
            lowered = value.lower()
            if name not in TEXT_ATTRS and ("javascript:" in lowered or "vbscript:" in lowered):
                self.problems.append(f"script URL in {name}={value!r}")
            if name == "href" and not HTTP_URL.fullmatch(value):
                self.problems.append(f"href {value!r}")
            if name == "src":
                data_ok = self.allow_data_image and tag == "img" and DATA_IMAGE.fullmatch(value)
                if not (HTTP_URL.fullmatch(value) or data_ok):
                    self.problems.append(f"src {value!r}")
            if name == "style" and not STYLE.fullmatch(value):
                self.problems.append(f"style {value!r}")
            if name == "class" and not all(c.startswith("wb-") for c in value.split()):
                self.problems.append(f"class {value!r}")


def audit_html(fragment: str, *, allow_data_image: bool = False) -> list[str]:
    """Return every safety problem found in ``fragment`` (empty when it is safe)."""
    audit = _Audit(allow_data_image)
    audit.feed(fragment)
    audit.close()
    problems = list(audit.problems)
    if audit.stack:
        problems.append(f"unclosed tags {audit.stack[-3:]}")
    if re.search(r"<\s*/?\s*(script|style|iframe|object|embed|svg|math)", fragment, re.I):
        problems.append("dangerous tag text")
    return problems


def assert_safe(fragment: str, *, allow_data_image: bool = False) -> None:
    problems = audit_html(fragment, allow_data_image=allow_data_image)
    assert not problems, f"{problems[:5]} in {fragment[:500]!r}"


def visible_text(fragment: str) -> str:
    """The text a reader sees (character references decoded)."""
    audit = _Audit(allow_data_image=True)
    audit.feed(fragment)
    audit.close()
    return "".join(audit.text)


def url_attributes(fragment: str) -> list[str]:
    """Every ``href``/``src`` value in ``fragment``, as the browser would read it."""
    audit = _Audit(allow_data_image=True)
    audit.feed(fragment)
    audit.close()
    return [value or "" for _, name, value in audit.attrs if name in ("href", "src")]


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    " \tjavascript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "&#106;avascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "\\\\evil.example\\x",
    'https://ok.example/" onmouseover="alert(1)',
    "https://ok.example/' onmouseover='alert(1)",
    "</font><script>alert(1)</script>",
    '<font color="info" onclick="alert(1)">x</font>',
    "</div></div></a><a href=javascript:alert(1)>",
    "<!-- x --><![CDATA[y]]><?pi?>",
    "<style>*{display:none}</style>",
    "\ud800 lone surrogate",
]

URL_ATTACKS = [value for value in HOSTILE if ":" in value or value.startswith(("/", "\\"))]


def every_payload(value: Any, url: Any) -> list[dict[str, Any]]:
    """One payload per message type with every field (URLs included) set from the arguments."""
    action = {"type": 1, "url": url, "appid": value, "pagepath": value}
    quote = {
        "type": 1,
        "url": url,
        "appid": value,
        "pagepath": value,
        "title": value,
        "quote_text": value,
    }
    horizontal = [
        {"keyname": value, "value": value},
        {"keyname": value, "value": value, "type": 1, "url": url},
        {"keyname": value, "value": value, "type": 2, "media_id": value},
        {"keyname": value, "value": value, "type": 3, "userid": value},
    ]
    jumps = [
        {"type": 1, "url": url, "title": value},
        {"type": 2, "appid": value, "pagepath": value, "title": value},
        {"type": 0, "title": value},
    ]
    source = {"icon_url": url, "desc": value, "desc_color": value}
    return [
        {
            "msgtype": "text",
            "text": {
                "content": value,
                "mentioned_list": [value, "@all"],
                "mentioned_mobile_list": [value],
            },
        },
        {"msgtype": "markdown", "markdown": {"content": f"{value}\n[{value}]({url})\n<@{value}>"}},
        {
            "msgtype": "markdown_v2",
            "markdown_v2": {"content": f"{value}\n[{value}]({url})\n![{value}]({url})"},
        },
        {"msgtype": "image", "image": {"base64": value, "md5": value}},
        {
            "msgtype": "news",
            "news": {
                "articles": [
                    {"title": value, "description": value, "url": url, "picurl": url},
                    {"title": value, "description": value, "url": url, "picurl": url},
                ]
            },
        },
        {"msgtype": "file", "file": {"media_id": value}},
        {"msgtype": "voice", "voice": {"media_id": value}},
        {
            "msgtype": "template_card",
            "template_card": {
                "card_type": "text_notice",
                "source": source,
                "main_title": {"title": value, "desc": value},
                "emphasis_content": {"title": value, "desc": value},
                "quote_area": quote,
                "sub_title_text": value,
                "horizontal_content_list": horizontal,
                "jump_list": jumps,
                "card_action": action,
            },
        },
        {
            "msgtype": "template_card",
            "template_card": {
                "card_type": "news_notice",
                "source": source,
                "main_title": {"title": value, "desc": value},
                "card_image": {"url": url, "aspect_ratio": value},
                "image_text_area": {
                    "type": 1,
                    "url": url,
                    "title": value,
                    "desc": value,
                    "image_url": url,
                },
                "quote_area": quote,
                "vertical_content_list": [{"title": value, "desc": value}],
                "horizontal_content_list": horizontal,
                "jump_list": jumps,
                "card_action": action,
            },
        },
        {"msgtype": value, value: {"content": value}},
    ]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_every_field_of_every_message_are_inert(value: str) -> None:
    for payload in every_payload(value, value):
        html = render_message_html(payload, media_names={value: (value, 10)})
        assert_safe(html)
        assert "<script" not in html.lower()


@pytest.mark.parametrize("url", URL_ATTACKS)
def test_no_hostile_url_becomes_a_link_or_image(url: str) -> None:
    for payload in every_payload("label", url):
        html = render_message_html(payload)
        assert_safe(html)
        assert url_attributes(html) == [], payload


def test_script_text_stays_visible_as_text() -> None:
    value = "<script>alert(1)</script>"
    for render in (render_markdown, render_markdown_v2):
        html = render(value)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert visible_text(html) == value
    text = render_message_html({"msgtype": "text", "text": {"content": value}})
    assert value in visible_text(text)


def test_quotes_in_an_accepted_url_cannot_break_out_of_the_attribute() -> None:
    html = render_markdown('[x](https://ok.example/"onmouseover="alert(1))')
    assert_safe(html)
    assert 'href="https://ok.example/&quot;onmouseover=&quot;alert(1"' not in html
    assert "&quot;onmouseover=&quot;" in html


@pytest.mark.parametrize(
    "content",
    [
        '<font color="info"></font></font><script>alert(1)</script>',
        '<font color="info"><font color="comment">x</font>',
        '<font color="info"">x</font>',
        "<font color=info onmouseover=alert(1)>x</font>",
        '<font color="info">**[a](javascript:alert(1))**</font>',
        '<font color="warning">a</font ><font\ncolor="info">b</font>',
        "**bold [link](https://a.example/**) still**",
        "`code <b>` **`x**`",
        "[a](https://a.example)[b](",
        '> <font color="info">quote</font> </blockquote>',
        '<@<script>> <@a"b> <@all>',
    ],
)
def test_font_games_and_unbalanced_markup(content: str) -> None:
    for render in (render_markdown, render_markdown_v2):
        assert_safe(render(content))
    assert_safe(render_message_html({"msgtype": "markdown", "markdown": {"content": content}}))


def _pathological() -> dict[str, str]:
    return {
        "nested fonts": '<font color="info">' * 400 + "x" + "</font>" * 400,
        "unclosed fonts": '<font color="info">' * 215,
        "brackets": "[" * 4096,
        "link openers": "[a](" * 1024,
        "parenthesised url": "[a](" + "(a)" * 1360,
        "unbalanced url": "[a](" + "a(" * 2046,
        "bold markers": "**" * 2048,
        "bold runs": "**a" * 1365,
        "italic runs": "*a" * 2048,
        "star soup": "* ** *** " * 455,
        "backticks": "`a" * 2048,
        "quotes": ">" * 4096,
        "quote lines": "\n".join(">" * n + " x" for n in range(90)),
        "deep list": "\n".join("  " * n + "- x" for n in range(60)),
        "table pipes": "|" * 2000 + "\n" + "|---" * 500,
        "spaces": " " * 4095 + "x",
        "headings": "####### x\n" * 400,
        "escapes": "\\" * 4096,
        "fences": "```\n" * 1024,
        "mentions": "<@" * 2048,
        "bangs": "![" * 2048,
    }


@pytest.mark.parametrize("name", list(_pathological()))
@pytest.mark.parametrize("render", [render_markdown, render_markdown_v2], ids=["legacy", "v2"])
def test_pathological_inputs_render_fast_and_safe(name: str, render: Callable[[str], str]) -> None:
    content = _pathological()[name]
    started = time.perf_counter()
    html = render(content)
    elapsed = time.perf_counter() - started
    assert_safe(html)
    # Linear-time parsing: even hostile 4 KB inputs stay far from anything a user would notice.
    assert elapsed < 0.05, f"{name}: {elapsed * 1000:.1f} ms"


def _realistic_4k(v2: bool) -> str:
    block = (
        '## 告警 **CPU 使用率过高** <font color="warning">P1</font>\n'
        '> 实例:`web-01` 区域:<font color="comment">华南</font>\n'
        "> 详情:[Grafana](https://grafana.example/d/abc?var=1&from=now-1h)\n"
        "- 当前值 *93.5%*,阈值 90%\n  - 持续 5 分钟\n1. 检查进程\n2. 扩容\n"
        "| 指标 | 值 |\n| :-- | --: |\n| cpu | 93% |\n<@zhangsan> 请处理\n\n"
    )
    if v2:
        block += "```\nkubectl top pod\n```\n---\n![](https://img.example/x.png)\n"
    content = block * (4096 // len(block.encode()) + 1)
    return content.encode()[:4096].decode("utf-8", "ignore")


@pytest.mark.parametrize("v2", [False, True], ids=["legacy", "v2"])
def test_a_full_4k_markdown_renders_well_under_5ms(v2: bool) -> None:
    content = _realistic_4k(v2)
    render = render_markdown_v2 if v2 else render_markdown
    best = min(_timed(render, content) for _ in range(7))
    assert best < 0.005, f"best of 7: {best * 1000:.2f} ms"


def _timed(render: Callable[[str], str], content: str) -> float:
    started = time.perf_counter()
    render(content)
    return time.perf_counter() - started


_TOKENS = [
    "\n",
    " ",
    "  ",
    "#",
    "# ",
    "*",
    "**",
    "`",
    "```",
    "> ",
    ">>",
    "[",
    "]",
    "(",
    ")",
    "![",
    "!",
    "|",
    "| :-- |",
    "---",
    "- ",
    "1. ",
    "\\",
    "<",
    ">",
    '<font color="info">',
    "</font>",
    "<font color='comment'>",
    "<@",
    "<@all>",
    "javascript:",
    "https://a.example/",
    "data:",
    '"',
    "'",
    "&",
    "&amp;",
    "<script>",
    "onerror=",
    "=",
    "\t",
    "\r\n",
    "\x00",
    "中文",
]
markdownish = st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=6)), max_size=60).map(
    "".join
)

FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(markdownish)
def test_fuzz_legacy_markdown_is_always_safe(content: str) -> None:
    assert_safe(render_markdown(content))


@FUZZ
@given(markdownish)
def test_fuzz_markdown_v2_is_always_safe(content: str) -> None:
    assert_safe(render_markdown_v2(content))


@FUZZ
@given(st.text())
def test_fuzz_arbitrary_unicode_text(content: str) -> None:
    assert_safe(render_markdown(content))
    assert_safe(render_markdown_v2(content))
    assert_safe(render_message_html({"msgtype": "text", "text": {"content": content}}))


_FIELD_NAMES = (
    "content mentioned_list mentioned_mobile_list base64 md5 articles title description url "
    "picurl media_id card_type source icon_url desc desc_color main_title emphasis_content "
    "quote_area type appid pagepath quote_text sub_title_text horizontal_content_list keyname "
    "value userid jump_list card_action card_image aspect_ratio image_text_area image_url "
    "vertical_content_list"
).split()
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.sampled_from(["text_notice", "news_notice", "@all", *URL_ATTACKS]),
    markdownish,
)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(_FIELD_NAMES), children, max_size=6),
    ),
    max_leaves=12,
)
_MSGTYPES = ["text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"]


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    msgtype = draw(st.one_of(st.sampled_from(_MSGTYPES), st.text(max_size=8), st.integers()))
    body = draw(st.dictionaries(st.sampled_from(_FIELD_NAMES), _json, max_size=8))
    if draw(st.booleans()) and isinstance(msgtype, str):
        return {"msgtype": msgtype, msgtype: body}
    return draw(st.one_of(st.just({"msgtype": msgtype, "x": body}), _json))


@settings(FUZZ, max_examples=150)
@given(payloads())
def test_fuzz_payloads_render_safely_without_raising(payload: Any) -> None:
    assert_safe(render_message_html(payload, media_names={"a": ("<b>.pdf", 3)}))


@settings(FUZZ, max_examples=100)
@given(
    markdownish,
    st.one_of(markdownish, st.sampled_from(URL_ATTACKS), st.just("https://ok.example/p?q=1")),
)
def test_fuzz_every_field_of_every_message(value: str, url: str) -> None:
    for payload in every_payload(value, url):
        assert_safe(render_message_html(payload, media_names={value: (value, 1)}))


@pytest.mark.parametrize(
    "fragment",
    [
        "<script>x</script>",
        '<a class="wb-link" href="javascript:alert(1)">x</a>',
        '<a class="wb-link" href="//evil.example">x</a>',
        '<img class="wb-x" src="x" onerror="alert(1)">',
        '<img class="wb-x" src="data:image/svg+xml,x">',
        '<div class="wb-x" style="background:url(x)"></div>',
        '<div class="wb-x"></span>',
        '<div class="wb-x">',
        '<div class="other"></div>',
        "<!-- comment -->",
        "<iframe></iframe>",
    ],
)
def test_the_audit_itself_catches_unsafe_markup(fragment: str) -> None:
    assert audit_html(fragment, allow_data_image=True)


def test_the_audit_accepts_what_the_renderer_is_allowed_to_emit() -> None:
    fragment = (
        '<div class="wb-x" style="aspect-ratio: 2.25"><a class="wb-link" '
        'href="https://a.example/?a=1&amp;b=2" target="_blank" rel="noopener">x</a>'
        '<img class="wb-i" src="data:image/png;base64,iVBORw0KGgo=" alt="javascript:"><br></div>'
    )
    assert audit_html(fragment, allow_data_image=True) == []


def test_image_data_url_holds_only_base64_of_a_png_or_jpeg() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    for data in (png, svg):
        payload = {
            "msgtype": "image",
            "image": {
                "base64": base64.b64encode(data).decode(),
                "md5": hashlib.md5(data).hexdigest(),
            },
        }
        html = render_message_html(payload)
        assert_safe(html, allow_data_image=True)
        assert ("data:image/png;base64," in html) is (data is png)
        assert "svg" not in html
